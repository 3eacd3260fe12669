import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { applyTar } from '../../../src/archive/apply.js';
import { tarArchive, type TarEntry } from '../../../src/archive/tar-writer.js';
import { BerthError } from '../../../src/common/errors.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-apply-worker-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const file = (path: string, content: string): TarEntry => ({
  path,
  type: 'file',
  mode: 0o644,
  content: Buffer.from(content),
});

/** `data` in chunks of `size` bytes. */
async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

test('a layer arriving in many small chunks is applied whole, and the caller keeps its buffers', async (t) => {
  const dir = await tempDir(t);
  const entries = Array.from({ length: 40 }, (_, i) => file(`d${i % 4}/f${i}`, `content ${i}\n`.repeat(50)));
  const layer = gzipSync(tarArchive(entries));
  const copy = Buffer.from(layer);
  const result = await applyTar(chunks(layer, 333), dir, { mode: 'flat' });
  assert.equal(result.compression, 'gzip');
  assert.equal(result.entries, 40);
  assert.equal(await readFile(join(dir, 'd3/f39'), 'utf8'), 'content 39\n'.repeat(50));
  assert.deepEqual(layer, copy, 'the input buffers are copied to the worker, not taken from the caller');
});

test('an error of the input is the error of the apply, and the input is not read further', async (t) => {
  const dir = await tempDir(t);
  const tar = tarArchive([file('a', 'x'.repeat(100_000)), file('b', 'y')]);
  let pulled = 0;
  const failing = (async function* (): AsyncGenerator<Buffer> {
    yield tar.subarray(0, 2048);
    pulled++;
    throw new Error('connection reset by the registry');
  })();
  await assert.rejects(applyTar(failing, dir, { mode: 'flat' }), /connection reset by the registry/);
  assert.equal(pulled, 1);
  assert.deepEqual(await readdir(dir), ['a'], 'the worker stopped at the failure; nothing came after');
});

test('errors from the worker keep their kind; a bad layer leaves the worker usable', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(
    applyTar(chunks(Buffer.from('this is not a layer at all, in any format'.repeat(20)), 64), dir, {
      mode: 'flat',
    }),
    (err: unknown) =>
      err instanceof BerthError && err.kind === 'invalid-argument' && /unknown magic/.test(err.message),
  );
  const result = await applyTar(chunks(tarArchive([file('after', 'ok')]), 512), dir, { mode: 'flat' });
  assert.equal(result.entries, 1);
  assert.equal(await readFile(join(dir, 'after'), 'utf8'), 'ok');
});

test('applies run side by side, each into its own target', async (t) => {
  const dirs = await Promise.all([tempDir(t), tempDir(t), tempDir(t)]);
  const results = await Promise.all(
    dirs.map((dir, i) =>
      applyTar(chunks(tarArchive([file(`only-${i}`, `${i}`)]), 700), dir, { mode: 'flat' }),
    ),
  );
  for (const [i, dir] of dirs.entries()) {
    assert.deepEqual(await readdir(dir), [`only-${i}`]);
    assert.match(results[i]?.diffId ?? '', /^sha256:[0-9a-f]{64}$/);
  }
});

test('an apply that stops early (a refused entry) closes its input', async (t) => {
  const dir = await tempDir(t);
  const tar = tarArchive([file('../escape', 'no'), file('later', 'never read')]);
  let closed = false;
  const input = (async function* (): AsyncGenerator<Buffer> {
    try {
      yield* chunks(tar, 512);
    } finally {
      closed = true;
    }
  })();
  await assert.rejects(applyTar(input, dir, { mode: 'flat' }), /climbs above the root/);
  assert.ok(closed, 'the input generator was returned');
  assert.deepEqual(await readdir(dir), []);
});

test('a layer in an open file is read by the worker itself, with progress up to its size', async (t) => {
  const dir = await tempDir(t);
  const entries = Array.from({ length: 30 }, (_, i) => file(`d${i % 3}/f${i}`, `${i}`.repeat(70_000)));
  const layer = gzipSync(tarArchive(entries), { level: 1 });
  const path = join(dir, 'layer.tar.gz');
  await writeFile(path, layer);
  await mkdir(join(dir, 'a'));
  await mkdir(join(dir, 'b'));
  const fromStream = await applyTar(chunks(layer, 4096), join(dir, 'a'), { mode: 'flat' });
  const handle = await open(path, 'r');
  const seen: number[] = [];
  try {
    const fromFile = await applyTar({ fd: handle.fd, onBytes: (n) => seen.push(n) }, join(dir, 'b'), {
      mode: 'flat',
    });
    assert.equal(fromFile.diffId, fromStream.diffId);
    assert.equal(fromFile.entries, 30);
  } finally {
    await handle.close();
  }
  assert.equal(await readFile(join(dir, 'b/d2/f29'), 'utf8'), '29'.repeat(70_000));
  assert.equal(seen.at(-1), layer.length, 'the last progress report is the whole file');
  assert.deepEqual(
    seen,
    [...seen].sort((x, y) => x - y),
    'progress only grows',
  );
});

test('zstd layers are decoded in the worker, from a stream and from an open file', async (t) => {
  const dir = await tempDir(t);
  const entries = Array.from({ length: 12 }, (_, i) => file(`z${i % 2}/f${i}`, `${i}`.repeat(90_000)));
  const layer = execFileSync('zstd', ['-c', '-q'], { input: tarArchive(entries) });
  const path = join(dir, 'layer.tar.zst');
  await writeFile(path, layer);
  await mkdir(join(dir, 'a'));
  await mkdir(join(dir, 'b'));
  const fromStream = await applyTar(chunks(layer, 1000), join(dir, 'a'), { mode: 'flat' });
  assert.equal(fromStream.compression, 'zstd');
  const handle = await open(path, 'r');
  try {
    const fromFile = await applyTar({ fd: handle.fd }, join(dir, 'b'), { mode: 'flat' });
    assert.equal(fromFile.diffId, fromStream.diffId);
  } finally {
    await handle.close();
  }
  assert.equal(await readFile(join(dir, 'b/z1/f11'), 'utf8'), '11'.repeat(90_000));
  // Corrupt data is the apply's error, with its kind, and the worker stays usable.
  const bad = Buffer.from(layer);
  bad[bad.length >> 1] = (bad[bad.length >> 1] as number) ^ 0xff;
  await mkdir(join(dir, 'c'));
  await assert.rejects(applyTar(chunks(bad, 1000), join(dir, 'c'), { mode: 'flat' }), {
    kind: 'invalid-argument',
    message: /not valid zstd data/,
  });
});
