/**
 * Hostile layer tarballs, fuzzed: random archives built from traversal tricks (climbing paths,
 * absolute paths, symlinks and hardlinks leading out, a file written through a planted symlink,
 * long names) plus random byte corruption and truncation, applied into a temporary target with a
 * sibling directory beside it. Every apply must resolve or reject with a BerthError, and the
 * sibling must stay exactly as it was: nothing is ever written outside the target.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import { applyTar } from '../../../src/archive/apply.js';
import { tarArchive, type TarEntry } from '../../../src/archive/tar-writer.js';
import { prng } from '../../helpers/prng.js';

const SEED = Number(process.env.BERTH_FUZZ_SEED ?? 0x7a4);
const ITERATIONS = 400;
const BUDGET_MS = 10_000;

/** Everything below `dir`: relative path -> content (files) or type. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    out.push(
      `${path.slice(dir.length)} ${entry.isFile() ? await readFile(path, 'utf8') : entry.isDirectory() ? 'dir' : 'other'}`,
    );
  }
  return out.sort();
}

function hostileEntries(random: () => number, outside: string): TarEntry[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const names = ['a', 'l', 'd/e', 'l/pwned', 'h', 'd', '.', './a', 'a/..', 'x'.repeat(120) + '/y'.repeat(60)];
  const climbing = [
    '../outside/pwned',
    '../../outside/pwned',
    `${outside}/pwned`,
    'd/../../outside/pwned',
    '/abs-pwned',
  ];
  const links = ['../outside', outside, '/', '..', 'd/../..', '../outside/sentinel', `${outside}/sentinel`];
  const entries: TarEntry[] = [];
  const count = 1 + Math.floor(random() * 6);
  for (let i = 0; i < count; i++) {
    const path = random() < 0.4 ? pick(climbing) : pick(names);
    switch (Math.floor(random() * 5)) {
      case 0:
        entries.push({ path, type: 'file', mode: 0o644, content: Buffer.from('pwned') });
        break;
      case 1:
        entries.push({ path, type: 'directory', mode: 0o755 });
        break;
      case 2:
        entries.push({ path, type: 'symlink', mode: 0o777, linkTarget: pick(links) });
        break;
      case 3:
        entries.push({ path, type: 'hardlink', mode: 0o644, linkTarget: pick([...links, ...names]) });
        break;
      default:
        // The classic: a symlink out, then a file through it.
        entries.push({ path: 'l', type: 'symlink', mode: 0o777, linkTarget: pick(links) });
        entries.push({ path: 'l/pwned', type: 'file', mode: 0o644, content: Buffer.from('pwned') });
    }
  }
  return entries;
}

async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

function corrupt(tar: Buffer, random: () => number): Buffer {
  const copy = Buffer.from(tar);
  const roll = random();
  if (roll < 0.5) return copy;
  if (roll < 0.7) return copy.subarray(0, Math.floor(random() * copy.length));
  for (let i = 0; i < 1 + Math.floor(random() * 8); i++)
    copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
  return copy;
}

test('hostile layer tarballs: a result or a BerthError, and nothing written outside the target', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-fuzz-tar-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const outside = join(root, 'outside');
  await mkdir(outside);
  await writeFile(join(outside, 'sentinel'), 'untouched');
  const before = await listing(outside);
  const random = prng(SEED);
  const started = Date.now();
  const crashes: string[] = [];
  let runs = 0;
  for (; runs < ITERATIONS && Date.now() - started < BUDGET_MS; runs++) {
    const entries = hostileEntries(random, outside);
    const tar = corrupt(tarArchive(entries), random);
    const target = join(root, `target-${runs}`);
    await mkdir(target);
    try {
      await applyTar(once(tar), target, {
        mode: random() < 0.5 ? 'flat' : 'overlay',
        preserveOwnership: false,
      });
    } catch (err) {
      if (!(err instanceof BerthError))
        crashes.push(
          `run ${runs} ${JSON.stringify(entries.map((e) => [e.type, e.path, e.linkTarget]))}: ${String(err)}`,
        );
    }
    const now = await listing(outside);
    assert.deepEqual(now, before, `run ${runs} (seed ${SEED}) wrote outside: ${JSON.stringify(entries)}`);
    assert.ok(
      !(await readdir('/').catch(() => [] as string[])).includes('abs-pwned'),
      `run ${runs}: /abs-pwned`,
    );
    await rm(target, { recursive: true, force: true });
  }
  assert.ok(runs >= 50, `only ${runs} archives in the time budget`);
  assert.deepEqual(crashes.slice(0, 5), [], `seed ${SEED}`);
});
