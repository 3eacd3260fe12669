import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureFixture } from '../../../fixtures/index.js';
import { BerthError } from '../../../src/common/errors.js';
import { sha256Of } from '../../../src/content/digest.js';
import { loadImages } from '../../../src/image/load.js';
import { saveImages } from '../../../src/image/save.js';
import type { ImageStore } from '../../../src/image/store/image-store.js';
import { MEDIA_TYPE, type ImageIndex, type ImageManifest } from '../../../src/oci/image-spec.js';
import { chunks, collect, openStores, storeImage, tarMembers, type Compression } from './store-fixtures.js';

const parse = <T>(data: Buffer | undefined): T => JSON.parse((data as Buffer).toString()) as T;

async function save(images: ImageStore, inputs: string[]): Promise<Buffer> {
  return collect(await saveImages(images, inputs));
}

interface LegacyItem {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

test('save writes an OCI layout plus manifest.json and repositories, layers uncompressed', async (t) => {
  for (const compression of ['none', 'gzip', 'zstd'] as Compression[]) {
    const { content, images } = await openStores(t);
    const image = await storeImage(content, {
      compression,
      layers: [{ a: 'a'.repeat(200_000) }, { b: 'b' }],
    });
    await images.record(image.target, ['app:1', 'registry.example/team/app:2']);
    const members = await tarMembers(await save(images, ['app:1', 'registry.example/team/app:2']));

    assert.equal(members.get('oci-layout')?.toString(), '{"imageLayoutVersion":"1.0.0"}');
    const diffIds = image.config.rootfs.diff_ids;
    // Every layer is there uncompressed, named by its diff ID.
    image.layers.forEach((layer, i) =>
      assert.deepEqual(members.get(`blobs/sha256/${diffIds[i]?.slice(7)}`), layer),
    );
    assert.deepEqual(members.get(`blobs/sha256/${image.id.slice(7)}`), await content.readAll(image.id));

    const index = parse<ImageIndex>(members.get('index.json'));
    assert.equal(index.manifests.length, 2);
    assert.deepEqual(
      index.manifests.map((m) => m.annotations),
      [
        { 'io.containerd.image.name': 'docker.io/library/app:1', 'org.opencontainers.image.ref.name': '1' },
        {
          'io.containerd.image.name': 'registry.example/team/app:2',
          'org.opencontainers.image.ref.name': '2',
        },
      ],
    );
    const descriptor = index.manifests[0];
    const manifestBytes = members.get(`blobs/sha256/${descriptor?.digest.slice(7)}`) as Buffer;
    assert.equal(sha256Of(manifestBytes), descriptor?.digest);
    const manifest = JSON.parse(manifestBytes.toString()) as ImageManifest;
    assert.equal(manifest.config.digest, image.id);
    assert.deepEqual(
      manifest.layers.map((l) => [l.mediaType, l.digest, l.size]),
      image.layers.map((layer, i) => [MEDIA_TYPE.ociLayer, diffIds[i], layer.length]),
    );
    // An uncompressed image keeps its manifest byte for byte; others get a new one.
    assert.equal(descriptor?.digest === image.target.manifest.digest, compression === 'none', compression);

    assert.deepEqual(parse<LegacyItem[]>(members.get('manifest.json')), [
      {
        Config: `blobs/sha256/${image.id.slice(7)}`,
        RepoTags: ['app:1', 'registry.example/team/app:2'],
        Layers: diffIds.map((d) => `blobs/sha256/${d.slice(7)}`),
      },
    ]);
    assert.deepEqual(parse(members.get('repositories')), {
      app: { '1': diffIds[1]?.slice(7) },
      'registry.example/team/app': { '2': diffIds[1]?.slice(7) },
    });
  }
});

test('save then load into another root keeps image IDs, manifests and tags', async (t) => {
  const from = await openStores(t);
  const plain = await storeImage(from.content, { salt: 'plain', layers: [{ base: '1' }, { top: '2' }] });
  const zipped = await storeImage(from.content, {
    salt: 'zipped',
    compression: 'gzip',
    layers: [{ base: '1' }],
  });
  const unnamed = await storeImage(from.content, { salt: 'unnamed' });
  await from.images.record(plain.target, ['plain:1', 'plain:2', 'other/repo:x']);
  await from.images.record(zipped.target, ['zipped']);
  await from.images.record(unnamed.target, []);

  // `plain` alone means every tag of the repository; an ID saves the image without names.
  const archive = await save(from.images, ['plain', 'zipped:latest', unnamed.id.slice(7, 19)]);
  const to = await openStores(t);
  const messages: string[] = [];
  await loadImages(chunks(archive), {
    images: to.images,
    tempDir: join(to.root, 'tmp'),
    onProgress: (event) => messages.push(event.status),
  });
  assert.deepEqual(messages, [
    'Loaded image: plain:1',
    'Loaded image: plain:2',
    'Loaded image: zipped:latest',
    `Loaded image ID: ${unnamed.id}`,
  ]);
  assert.equal(to.images.resolve('plain:2').target.manifest.digest, plain.target.manifest.digest);
  assert.equal(to.images.resolve('zipped').id, zipped.id);
  assert.notEqual(to.images.resolve('zipped').target.manifest.digest, zipped.target.manifest.digest);
  assert.deepEqual((await to.images.inspect('zipped')).diffIds, zipped.config.rootfs.diff_ids);
  assert.equal(to.images.resolve(unnamed.id).id, unnamed.id);
  assert.throws(() => to.images.resolve('other/repo:x'), /No such image/);

  // And once more: what berth saved, berth saves the same way.
  const again = await save(to.images, ['plain:1', 'plain:2', 'zipped', unnamed.id]);
  assert.deepEqual(
    parse<ImageIndex>((await tarMembers(again)).get('index.json')).manifests.map((m) => m.digest),
    parse<ImageIndex>((await tarMembers(archive)).get('index.json')).manifests.map((m) => m.digest),
  );
});

test('save of the busybox fixture loaded from its docker-save archive gives the same archive', async (t) => {
  const { root, images } = await openStores(t);
  const fixture = await ensureFixture('busybox');
  const original = await readFile(fixture.dockerArchive);
  await loadImages(chunks(original), { images, tempDir: join(root, 'tmp') });
  const saved = await tarMembers(await save(images, ['busybox:latest']));
  const expected = await tarMembers(original);
  assert.deepEqual([...saved.keys()].sort(), [...expected.keys()].sort());
  for (const [path, body] of expected) assert.deepEqual(saved.get(path), body, path);
});

test('unknown names fail before any byte is written; a saved stream can be stopped early', async (t) => {
  const { content, images } = await openStores(t);
  const image = await storeImage(content, { layers: [{ big: 'z'.repeat(1_000_000) }] });
  await images.record(image.target, ['app']);
  await assert.rejects(
    saveImages(images, ['app', 'missing:1']),
    (err: BerthError) => err.kind === 'not-found' && /missing:1/.test(err.message),
  );
  await assert.rejects(saveImages(images, []), (err: BerthError) => err.kind === 'invalid-argument');

  const stream = await saveImages(images, ['app']);
  const first = await stream.next();
  assert.equal(first.done, false);
  await stream.return(undefined);
  assert.equal((await stream.next()).done, true);
});
