import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmod,
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  unlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyTar } from '../../../src/archive/apply.js';
import { ByteSource } from '../../../src/archive/byte-source.js';
import { diffOverlayUpper, diffTrees } from '../../../src/archive/diff.js';
import { readTar, type TarHeader } from '../../../src/archive/tar-reader.js';
import { tarArchive, type TarEntry } from '../../../src/archive/tar-writer.js';

const T = 1_600_000_000;
const dir = (path: string, mode = 0o755): TarEntry => ({ path, type: 'directory', mode, mtime: T });
const file = (path: string, content = path, mode = 0o644): TarEntry => ({
  path,
  type: 'file',
  mode,
  mtime: T,
  content: Buffer.from(content),
});

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}

async function headers(tar: Buffer): Promise<TarHeader[]> {
  const result: TarHeader[] = [];
  for await (const { header } of readTar(new ByteSource(once(tar)))) result.push(header);
  return result;
}

/** Names, types, modes, sizes, times, contents and link targets of a tree (not the root itself). */
async function describe(root: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    for (const name of (await readdir(join(root, relative))).sort()) {
      const path = relative === '' ? name : `${relative}/${name}`;
      const stat = await lstat(join(root, path));
      let detail = '';
      if (stat.isFile()) detail = (await readFile(join(root, path))).toString('base64');
      if (stat.isSymbolicLink()) detail = `-> ${await readlink(join(root, path))}`;
      else
        lines.push(
          `${path} ${stat.mode.toString(8)} ${stat.size} ${stat.nlink} ${Math.floor(stat.mtimeMs / 1000)} ${detail}`,
        );
      if (stat.isSymbolicLink()) lines.push(`${path} ${detail}`);
      if (stat.isDirectory()) await walk(path);
    }
  };
  await walk('');
  return lines;
}

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'berth-diff-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  return base;
}

const flat = { mode: 'flat', preserveOwnership: false } as const;

test('a tree diff holds exactly the changes, and applying it turns the lower tree into the upper', async (t) => {
  const base = await tempDir(t);
  const lower = join(base, 'lower');
  const upper = join(base, 'upper');
  await mkdir(lower);
  await applyTar(
    once(
      tarArchive([
        dir('etc'),
        file('etc/hosts'),
        file('etc/old.conf'),
        file('etc/same-size', 'aaaa'),
        dir('var'),
        dir('var/cache'),
        file('var/cache/junk'),
        dir('tmp', 0o1777),
        dir('usr'),
        dir('usr/share'),
        file('usr/share/readme'),
        file('x'),
        { path: 'link', type: 'symlink', mode: 0o777, linkTarget: 'etc/hosts', mtime: T },
        dir('bin'),
      ]),
    ),
    lower,
    flat,
  );
  execFileSync('cp', ['-a', lower, upper]);

  await writeFile(join(upper, 'etc/hosts'), 'changed content');
  await writeFile(join(upper, 'etc/new.conf'), 'new');
  await unlink(join(upper, 'etc/old.conf'));
  await writeFile(join(upper, 'etc/same-size'), 'bbbb');
  await utimes(join(upper, 'etc/same-size'), T, T); // same size, same second: only the content differs
  await rm(join(upper, 'var/cache'), { recursive: true });
  await chmod(join(upper, 'tmp'), 0o700);
  await writeFile(join(upper, 'bin/a'), 'shared inode');
  await link(join(upper, 'bin/a'), join(upper, 'bin/b'));
  await unlink(join(upper, 'link'));
  await symlink('etc/new.conf', join(upper, 'link'));
  await unlink(join(upper, 'x'));
  await mkdir(join(upper, 'x'));
  await writeFile(join(upper, 'x/y'), 'y');

  const tar = await collect(diffTrees(lower, upper));
  const entries = (await headers(tar)).map(
    (h) => `${h.path} ${h.type}${h.type === 'hardlink' ? ` ${h.linkTarget}` : ''}`,
  );
  assert.deepEqual(entries, [
    'bin/ directory',
    'bin/a file',
    'bin/b hardlink bin/a',
    'etc/ directory',
    'etc/hosts file',
    'etc/new.conf file',
    'etc/.wh.old.conf file',
    'etc/same-size file',
    'link symlink',
    'tmp/ directory',
    'var/ directory',
    'var/.wh.cache file',
    'x/ directory',
    'x/y file',
  ]);

  const check = join(base, 'check');
  execFileSync('cp', ['-a', lower, check]);
  await applyTar(once(tar), check, flat);
  assert.deepEqual(await describe(check), await describe(upper));
});

test('an unchanged tree gives an empty diff', async (t) => {
  const base = await tempDir(t);
  const lower = join(base, 'lower');
  await mkdir(lower);
  await applyTar(once(tarArchive([dir('a'), file('a/b'), file('c')])), lower, flat);
  execFileSync('cp', ['-a', lower, join(base, 'upper')]);
  assert.deepEqual(await headers(await collect(diffTrees(lower, join(base, 'upper')))), []);
});

test('an upper directory diff lists its tree with hardlinks shared', async (t) => {
  const upper = await tempDir(t);
  await mkdir(join(upper, 'etc'));
  await writeFile(join(upper, 'etc/conf'), 'x'.repeat(3000));
  await link(join(upper, 'etc/conf'), join(upper, 'etc/conf2'));
  await symlink('/etc/conf', join(upper, 'abs'));
  const tar = await collect(diffOverlayUpper(upper));
  const list = await headers(tar);
  assert.deepEqual(
    list.map((h) => [h.path, h.type, h.type === 'file' ? h.size : h.linkTarget]),
    [
      ['abs', 'symlink', '/etc/conf'],
      ['etc/', 'directory', ''],
      ['etc/conf', 'file', 3000],
      ['etc/conf2', 'hardlink', 'etc/conf'],
    ],
  );
  const out = await tempDir(t);
  await applyTar(once(tar), out, flat);
  assert.equal(await readFile(join(out, 'etc/conf2'), 'utf8'), 'x'.repeat(3000));
});
