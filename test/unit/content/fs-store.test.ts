import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { BerthError } from '../../../src/common/errors.js';
import { sha256Of } from '../../../src/content/digest.js';
import { ContentVerificationError, FsContentStore } from '../../../src/content/fs-store.js';
import type { BlobSource } from '../../../src/content/store.js';
import { MEDIA_TYPE } from '../../../src/oci/image-spec.js';

async function tempStore(t: TestContext): Promise<{ root: string; store: FsContentStore }> {
  const root = await mkdtemp(join(tmpdir(), 'berth-content-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return { root, store: new FsContentStore(root) };
}

/** A source serving `data` in chunks from the requested offset, recording every offset asked for. */
function bufferSource(data: Buffer, chunk = 1000): { source: BlobSource; offsets: number[] } {
  const offsets: number[] = [];
  const source: BlobSource = async (offset) => {
    offsets.push(offset);
    return {
      offset,
      stream: (async function* () {
        for (let at = offset; at < data.length; at += chunk) yield data.subarray(at, at + chunk);
      })(),
    };
  };
  return { source, offsets };
}

/** A source that delivers `cut` bytes and then fails like a reset connection. */
function cuttingSource(data: Buffer, cut: number): BlobSource {
  return async (offset) => ({
    offset,
    stream: (async function* () {
      yield data.subarray(offset, cut);
      throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    })(),
  });
}

test('writeBlob, info, read, readAll, walk, delete', async (t) => {
  const { store } = await tempStore(t);
  const data = Buffer.from('hello content store');
  const info = await store.writeBlob(data, {}, { 'test.label': 'one' });
  assert.equal(info.digest, sha256Of(data));
  assert.equal(info.size, data.length);
  assert.deepEqual(info.labels, { 'test.label': 'one' });
  assert.deepEqual(await store.readAll(info.digest), data);

  const chunks: Buffer[] = [];
  for await (const chunk of await store.read(info.digest, { offset: 6 })) chunks.push(chunk as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'content store');

  const walked = [];
  for await (const blob of store.walk()) walked.push(blob.digest);
  assert.deepEqual(walked, [info.digest]);

  assert.equal(await store.delete(info.digest), true);
  assert.equal(await store.delete(info.digest), false);
  assert.equal(await store.info(info.digest), undefined);
  await assert.rejects(store.readAll(info.digest), (err: BerthError) => err.kind === 'not-found');
  await assert.rejects(store.read(info.digest), (err: BerthError) => err.kind === 'not-found');
});

test('blobs live under content/blobs/sha256/<hex>, read-only, and the ingest directory is gone', async (t) => {
  const { root, store } = await tempStore(t);
  const data = randomBytes(5000);
  const digest = sha256Of(data);
  const { source } = bufferSource(data);
  const result = await store.ingest({ digest, size: data.length }, source);
  assert.equal(result.outcome, 'written');
  const path = join(root, 'content', 'blobs', 'sha256', digest.slice(7));
  assert.deepEqual(await readFile(path), data);
  assert.equal((await stat(path)).mode & 0o777, 0o444);
  assert.deepEqual(await readdir(join(root, 'content', 'ingest')), []);
  const again = await store.ingest({ digest, size: data.length }, source);
  assert.equal(again.outcome, 'exists');
});

test('a digest mismatch fails and commits nothing', async (t) => {
  const { root, store } = await tempStore(t);
  const data = randomBytes(3000);
  const claimed = sha256Of(Buffer.from('something else'));
  await assert.rejects(
    store.ingest({ digest: claimed, size: data.length }, bufferSource(data).source),
    (err: Error) => err instanceof ContentVerificationError && /digest mismatch/.test(err.message),
  );
  assert.equal(await store.info(claimed), undefined);
  assert.equal(await store.info(sha256Of(data)), undefined);
  assert.deepEqual(await readdir(join(root, 'content', 'ingest')), []);
  await assert.rejects(store.writeBlob(data, { digest: claimed }), ContentVerificationError);
});

test('too many bytes is a size mismatch; too few keeps the partial data and reports it', async (t) => {
  const { store } = await tempStore(t);
  const data = randomBytes(3000);
  const digest = sha256Of(data);
  await assert.rejects(
    store.ingest({ digest, size: 2000 }, bufferSource(data).source),
    (err: Error) => err instanceof ContentVerificationError && /size mismatch/.test(err.message),
  );
  assert.equal(await store.info(digest), undefined);

  const short: BlobSource = async (offset) => ({
    offset,
    stream: (async function* () {
      yield data.subarray(offset, 1200);
    })(),
  });
  await assert.rejects(
    store.ingest({ digest, size: data.length }, short),
    (err: BerthError) => err.kind === 'unavailable' && /1200 of 3000 bytes/.test(err.message),
  );
  const [status] = await store.listIngests();
  assert.equal(status?.offset, 1200);
  assert.deepEqual(status?.expected, { digest, size: data.length });
  assert.equal(await store.info(digest), undefined);
});

test('an interrupted ingest resumes from its offset', async (t) => {
  const { store } = await tempStore(t);
  const data = randomBytes(10_000);
  const digest = sha256Of(data);
  await assert.rejects(store.ingest({ digest, size: data.length }, cuttingSource(data, 4321)), /ECONNRESET/);
  assert.equal(await store.info(digest), undefined);

  // A new store object over the same directory (a restarted daemon) continues the same ingest.
  const { source, offsets } = bufferSource(data);
  const reopened = new FsContentStore(join(store.contentDir, '..'));
  const progress: number[] = [];
  const result = await reopened.ingest({ digest, size: data.length }, source, {
    onProgress: (p) => progress.push(p.current),
  });
  assert.deepEqual(offsets, [4321]);
  assert.equal(result.resumedFrom, 4321);
  assert.equal(progress[0], 4321);
  assert.equal(progress.at(-1), data.length);
  assert.deepEqual(await reopened.readAll(digest), data);
});

test('a source that ignores the offset restarts the ingest from zero', async (t) => {
  const { store } = await tempStore(t);
  const data = randomBytes(8000);
  const digest = sha256Of(data);
  await assert.rejects(store.ingest({ digest, size: data.length }, cuttingSource(data, 3000)));
  const whole: BlobSource = async () => bufferSource(data).source(0);
  const result = await store.ingest({ digest, size: data.length }, whole);
  assert.equal(result.outcome, 'written');
  assert.deepEqual(await store.readAll(digest), data);
});

test('damaged partial data fails verification once and is fetched again from zero', async (t) => {
  const { store } = await tempStore(t);
  const data = randomBytes(6000);
  const digest = sha256Of(data);
  const dir = join(store.contentDir, 'ingest', `sha256-${digest.slice(7)}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'expected.json'), JSON.stringify({ digest, size: data.length }));
  await writeFile(join(dir, 'data'), Buffer.alloc(2000)); // zeros, as after a crash
  const { source, offsets } = bufferSource(data);
  const result = await store.ingest({ digest, size: data.length }, source);
  assert.deepEqual(offsets, [2000, 0]);
  assert.equal(result.resumedFrom, 0);
  assert.deepEqual(await store.readAll(digest), data);
});

test('concurrent ingests of one digest download once', async (t) => {
  const { store } = await tempStore(t);
  const data = randomBytes(50_000);
  const digest = sha256Of(data);
  let opened = 0;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const source: BlobSource = async (offset) => {
    opened++;
    return {
      offset,
      stream: (async function* () {
        yield data.subarray(offset, 100);
        await gate;
        yield data.subarray(100);
      })(),
    };
  };
  const first = store.ingest({ digest, size: data.length }, source);
  const second = store.ingest({ digest, size: data.length }, source, { labels: { second: 'yes' } });
  release();
  // Settle both before asserting, so a failure leaves nothing writing into the removed directory.
  const settled = await Promise.allSettled([first, second]);
  assert.equal(opened, 1);
  assert.deepEqual(settled.map((r) => (r.status === 'fulfilled' ? r.value.outcome : r.reason)).sort(), [
    'shared',
    'written',
  ]);
  assert.equal((await store.info(digest))?.labels.second, 'yes');
});

test('the blob appears only when the ingest commits', async (t) => {
  const { store } = await tempStore(t);
  const data = randomBytes(4000);
  const digest = sha256Of(data);
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let reached: () => void = () => undefined;
  const halfway = new Promise<void>((resolve) => (reached = resolve));
  const source: BlobSource = async (offset) => ({
    offset,
    stream: (async function* () {
      yield data.subarray(0, 3999);
      reached();
      await gate;
      yield data.subarray(3999);
    })(),
  });
  const ingest = store.ingest({ digest, size: data.length }, source);
  await halfway;
  assert.equal(await store.info(digest), undefined);
  const walked = [];
  for await (const blob of store.walk()) walked.push(blob);
  assert.equal(walked.length, 0);
  release();
  await ingest;
  assert.equal((await store.info(digest))?.size, 4000);
});

test('malformed digests and sizes are refused', async (t) => {
  const { store } = await tempStore(t);
  const source = bufferSource(Buffer.from('x')).source;
  for (const digest of ['sha256:abc', 'md5:' + 'a'.repeat(32), 'sha256:' + 'A'.repeat(64), 'nocolon']) {
    await assert.rejects(
      store.ingest({ digest, size: 1 }, source),
      (err: BerthError) => err.kind === 'invalid-argument' && err.message.includes(digest),
    );
  }
  await assert.rejects(
    store.ingest({ digest: sha256Of('x'), size: -1 }, source),
    (err: BerthError) => err.kind === 'invalid-argument',
  );
});

test('gc keeps what the roots reach through indexes and manifests and removes the rest', async (t) => {
  const { store } = await tempStore(t);
  const layer = await store.writeBlob(randomBytes(2000));
  const sharedLayer = await store.writeBlob(randomBytes(1000));
  const config = await store.writeBlob(Buffer.from('{"architecture":"amd64","os":"linux"}'));
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.ociManifest,
      config: { mediaType: MEDIA_TYPE.ociConfig, digest: config.digest, size: config.size },
      layers: [
        { mediaType: MEDIA_TYPE.ociLayerGzip, digest: layer.digest, size: layer.size },
        { mediaType: MEDIA_TYPE.ociLayerGzip, digest: sharedLayer.digest, size: sharedLayer.size },
      ],
    }),
  );
  const manifest = await store.writeBlob(manifestBytes);
  const index = await store.writeBlob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.ociIndex,
        manifests: [{ mediaType: MEDIA_TYPE.ociManifest, digest: manifest.digest, size: manifest.size }],
      }),
    ),
  );
  const orphan = await store.writeBlob(randomBytes(3000));

  const removedSeen: string[] = [];
  const result = await store.gc([index.digest], { onRemove: (digest) => void removedSeen.push(digest) });
  assert.deepEqual(result.removed, [orphan.digest]);
  assert.deepEqual(removedSeen, [orphan.digest]);
  assert.equal(result.reclaimedBytes, 3000);
  for (const kept of [index, manifest, config, layer, sharedLayer]) {
    assert.ok(result.live.has(kept.digest));
    assert.ok(await store.info(kept.digest), `${kept.digest} is kept`);
  }

  const shallow = await store.gc([index.digest], { followReferences: false });
  assert.equal(shallow.removed.length, 4);
  assert.ok(await store.info(index.digest));
  const all = await store.gc([]);
  assert.deepEqual(all.removed, [index.digest]);
});
