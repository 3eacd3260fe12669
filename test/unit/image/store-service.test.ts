import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tarArchive } from '../../../src/archive/tar-writer.js';
import { BerthError } from '../../../src/common/errors.js';
import { sha256Of } from '../../../src/content/digest.js';
import { ImageService, type ImageEvent } from '../../../src/image/image-service.js';
import { RegistryClient } from '../../../src/image/registry/client.js';
import { chainIdsOf } from '../../../src/image/store/image-store.js';
import type { ImageProgress } from '../../../src/image/store/progress.js';
import type { UnpackTarget } from '../../../src/image/store/unpack.js';
import { MEDIA_TYPE } from '../../../src/oci/image-spec.js';
import { CopySnapshotter } from '../../../src/snapshot/copy.js';
import type { Snapshotter } from '../../../src/snapshot/snapshotter.js';
import { FakeRegistry } from './registry-fake.js';
import { chunks, collect, fileEntry, tempRoot } from './store-fixtures.js';

const client = (): RegistryClient => new RegistryClient({ backoffMs: 1, maxBackoffMs: 5, timeoutMs: 5_000 });

/** Put a gzip-layered image in the fake registry; returns what a pull should find. */
function publish(registry: FakeRegistry, repo: string, tag: string, layers: Array<Record<string, string>>) {
  const tars = layers.map((files) =>
    tarArchive(Object.entries(files).map(([path, text]) => fileEntry(path, text))),
  );
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['sh'] },
      rootfs: { type: 'layers', diff_ids: tars.map(sha256Of) },
    }),
  );
  const zipped = tars.map((tar) => gzipSync(tar));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.ociManifest,
      config: {
        mediaType: MEDIA_TYPE.ociConfig,
        digest: registry.addBlob(repo, config),
        size: config.length,
      },
      layers: zipped.map((blob) => ({
        mediaType: MEDIA_TYPE.ociLayerGzip,
        digest: registry.addBlob(repo, blob),
        size: blob.length,
      })),
    }),
  );
  const manifestDigest = registry.addManifest(repo, tag, MEDIA_TYPE.ociManifest, manifest);
  return {
    id: sha256Of(config),
    manifestDigest,
    layerDigests: zipped.map(sha256Of),
    chainIds: chainIdsOf(tars.map(sha256Of)),
    tars,
  };
}

async function committed(snapshotter: Snapshotter): Promise<string[]> {
  const names: string[] = [];
  await snapshotter.walk((info) => {
    if (info.kind === 'committed') names.push(info.name);
  });
  return names.sort();
}

test('pull stores, unpacks by chain ID and records, with Docker progress; a second pull is up to date', async (t) => {
  const root = await tempRoot(t);
  const registry = await FakeRegistry.start(t);
  const image = publish(registry, 'team/app', 'latest', [{ 'bin/tool': 'v1' }, { 'etc/conf': 'c' }]);
  const snapshotter = await CopySnapshotter.open(root);
  const events: ImageEvent[] = [];
  const service = await ImageService.open({
    dataRoot: root,
    registry: client(),
    snapshotter,
    onEvent: (e) => events.push(e),
  });
  const progress: ImageProgress[] = [];
  const outcome = await service.pull(`${registry.host}/team/app`, { onProgress: (e) => progress.push(e) });

  assert.equal(outcome.id, image.id);
  assert.equal(outcome.digest, image.manifestDigest);
  assert.equal(outcome.upToDate, false);
  assert.deepEqual(outcome.names, [
    `${registry.host}/team/app:latest`,
    `${registry.host}/team/app@${image.manifestDigest}`,
  ]);
  assert.deepEqual(progress[0], { id: 'latest', status: 'Pulling from team/app' });
  for (const digest of image.layerDigests) {
    const statuses = progress.filter((e) => e.id === digest.slice(7, 19)).map((e) => e.status);
    assert.equal(statuses[0], 'Pulling fs layer');
    assert.deepEqual(statuses.slice(-3), ['Download complete', 'Extracting', 'Pull complete']);
  }
  assert.deepEqual(progress.slice(-2), [
    { status: `Digest: ${image.manifestDigest}` },
    { status: `Status: Downloaded newer image for ${registry.host}/team/app:latest` },
  ]);
  assert.deepEqual(events, [{ action: 'pull', id: image.id, name: `${registry.host}/team/app:latest` }]);

  assert.deepEqual(await committed(snapshotter), [...image.chainIds].sort());
  const [view] = await snapshotter.view('check', image.chainIds[1]);
  assert.equal(await readFile(join(view?.source as string, 'bin', 'tool'), 'utf8'), 'v1');
  assert.equal(await readFile(join(view?.source as string, 'etc', 'conf'), 'utf8'), 'c');
  await snapshotter.remove('check');
  const [summary] = await service.list();
  assert.equal(
    summary?.unpackedSize,
    image.tars.reduce((sum, tar) => sum + tar.length, 0),
  );

  const again: ImageProgress[] = [];
  const second = await service.pull(`${registry.host}/team/app:latest`, { onProgress: (e) => again.push(e) });
  assert.equal(second.upToDate, true);
  assert.ok(!again.some((e) => e.status === 'Extracting'));
  assert.deepEqual(again.at(-1), {
    status: `Status: Image is up to date for ${registry.host}/team/app:latest`,
  });
});

test('a layer that cannot be unpacked fails the pull and records nothing', async (t) => {
  const root = await tempRoot(t);
  const registry = await FakeRegistry.start(t);
  publish(registry, 'bad/app', 'latest', [{ '../escape': 'x' }]);
  const service = await ImageService.open({
    dataRoot: root,
    registry: client(),
    snapshotter: await CopySnapshotter.open(root),
  });
  await assert.rejects(
    service.pull(`${registry.host}/bad/app`),
    (err: BerthError) => err.kind === 'invalid-argument',
  );
  assert.deepEqual(await service.list(), []);
});

test('remove drops the blobs and layer snapshots no image or container needs, as gc does', async (t) => {
  const root = await tempRoot(t);
  const registry = await FakeRegistry.start(t);
  const shared = { 'bin/sh': 'shell' };
  const a = publish(registry, 'x/a', 'latest', [shared, { a: '1' }]);
  const b = publish(registry, 'x/b', 'latest', [shared, { b: '2' }]);
  const c = publish(registry, 'x/c', 'latest', [{ c: '3' }]);
  const snapshotter = await CopySnapshotter.open(root);
  const service = await ImageService.open({ dataRoot: root, registry: client(), snapshotter });
  for (const repo of ['x/a', 'x/b', 'x/c']) await service.pull(`${registry.host}/${repo}`);
  // A container's writable layer on image c keeps c's snapshot after c is removed.
  await snapshotter.prepare('container-1', c.chainIds[0]);

  assert.deepEqual(await service.remove(`${registry.host}/x/a`), [
    { untagged: `${registry.host}/x/a:latest` },
    { untagged: `${registry.host}/x/a@${a.manifestDigest}` },
    { deleted: a.id },
  ]);
  // Like dockerd's rmi: a's own layer and blobs go at once; the layer b shares stays.
  assert.deepEqual(await committed(snapshotter), [...b.chainIds, ...c.chainIds].sort());
  assert.equal(await service.content.info(a.manifestDigest), undefined);
  assert.equal(await service.content.info(a.id), undefined);
  assert.ok(await service.content.info(b.layerDigests[0] as string), 'the shared layer stays');

  await service.remove(`${registry.host}/x/c`);
  assert.deepEqual(await committed(snapshotter), [...b.chainIds, c.chainIds[0] as string].sort());
  assert.deepEqual((await service.gc()).snapshotsRemoved, [], 'nothing is left for gc');

  await snapshotter.remove('container-1');
  assert.deepEqual((await service.gc()).snapshotsRemoved, [c.chainIds[0]]);
});

test('remove leaves what another owner holds (the build cache)', async (t) => {
  const root = await tempRoot(t);
  const registry = await FakeRegistry.start(t);
  const a = publish(registry, 'x/a', 'latest', [{ a: '1' }]);
  const snapshotter = await CopySnapshotter.open(root);
  const service = await ImageService.open({
    dataRoot: root,
    registry: client(),
    snapshotter,
    held: async () => ({ manifests: [a.manifestDigest], chainIds: [...a.chainIds] }),
  });
  await service.pull(`${registry.host}/x/a`);
  await service.remove(`${registry.host}/x/a`);
  assert.deepEqual(await committed(snapshotter), [...a.chainIds]);
  assert.ok(await service.content.info(a.layerDigests[0] as string));
  assert.ok(await service.content.info(a.manifestDigest));
});

test('push a tag through the service: every tag of a repository, and the digest name is recorded', async (t) => {
  const root = await tempRoot(t);
  const registry = await FakeRegistry.start(t);
  const image = publish(registry, 'src/app', 'v1', [{ f: '1' }]);
  const service = await ImageService.open({ dataRoot: root, registry: client() });
  await service.pull(`${registry.host}/src/app:v1`);
  await service.tag(`${registry.host}/src/app:v1`, `${registry.host}/dst/app:one`);
  await service.tag(`${registry.host}/src/app:v1`, `${registry.host}/dst/app:two`);
  const progress: string[] = [];
  const pushed = await service.push(`${registry.host}/dst/app`, {
    onProgress: (e) => progress.push(e.status),
  });
  assert.deepEqual(
    pushed.map((p) => [p.name, p.digest]),
    [
      [`${registry.host}/dst/app:one`, image.manifestDigest],
      [`${registry.host}/dst/app:two`, image.manifestDigest],
    ],
  );
  assert.equal(progress[0], `The push refers to repository [${registry.host}/dst/app]`);
  assert.ok(progress.includes(`one: digest: ${image.manifestDigest} size: ${pushed[0]?.size}`));
  assert.ok(registry.manifests.get('dst/app')?.has('two'));
  const details = await service.inspect(`${registry.host}/dst/app:one`);
  assert.ok(details.repoDigests.includes(`${registry.host}/dst/app@${image.manifestDigest}`));
  await assert.rejects(
    service.push(`${registry.host}/dst/app:nope`),
    /An image does not exist locally with the tag/,
  );
});

test('load, import and save through the service unpack with the injected unpacker and report events', async (t) => {
  const root = await tempRoot(t);
  const unpacked: UnpackTarget[] = [];
  const events: ImageEvent[] = [];
  const service = await ImageService.open({
    dataRoot: root,
    unpack: async (image) => {
      unpacked.push(image);
      return undefined;
    },
    onEvent: (e) => events.push(e),
  });
  const rootfs = tarArchive([fileEntry('hello', 'world')]);
  const imported = await service.import(chunks(gzipSync(rootfs)), {
    tag: 'imported:1',
    changes: ['CMD ["/hello"]'],
  });
  assert.equal(unpacked[0]?.id, imported.id);
  assert.deepEqual(unpacked[0]?.config.config?.Cmd, ['/hello']);

  const archive = await collect(await service.save(['imported:1']));
  await service.remove('imported:1');
  const messages: string[] = [];
  const loaded = await service.load(chunks(archive), { onProgress: (e) => messages.push(e.status) });
  assert.equal(loaded[0]?.id, imported.id);
  assert.deepEqual(messages, ['Loaded image: imported:1']);
  assert.equal(unpacked.length, 2);
  assert.deepEqual(
    events.map((e) => e.action),
    ['import', 'save', 'untag', 'delete', 'load'],
  );

  // A failing unpack leaves the load unrecorded.
  const failing = await ImageService.open({
    dataRoot: root,
    unpack: async () => {
      throw new BerthError('internal', 'disk full');
    },
  });
  await failing.remove('imported:1');
  await assert.rejects(failing.load(chunks(archive)), /disk full/);
  assert.deepEqual(await failing.list(), []);
});

test('the exclusive store lock (build-cache prune) waits for storing operations and holds new ones back', async (t) => {
  const root = await tempRoot(t);
  const snapshotter = await CopySnapshotter.open(root);
  const service = await ImageService.open({ dataRoot: root, registry: client(), snapshotter });
  const order: string[] = [];
  let finishStore!: () => void;
  const storing = service.withStoreLock(async () => {
    order.push('store started');
    await new Promise<void>((resolve) => (finishStore = resolve));
    order.push('store done');
  });
  const removing = service.withExclusiveStoreLock(async () => {
    order.push('prune');
  });
  const laterStore = service.withStoreLock(async () => {
    order.push('later store');
  });
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ['store started'], 'the prune waits for the store in progress');
  finishStore();
  await Promise.all([storing, removing, laterStore]);
  assert.deepEqual(order, ['store started', 'store done', 'prune', 'later store']);
});
