import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import { FsContentStore } from '../../../src/content/fs-store.js';
import { ImageStore, chainIdsOf } from '../../../src/image/store/image-store.js';
import { recordUnpackedSize } from '../../../src/image/store/layer-size.js';
import { MEDIA_TYPE } from '../../../src/oci/image-spec.js';
import { openStores, storeImage } from './store-fixtures.js';

const kind =
  (expected: string, message?: RegExp) =>
  (err: unknown): boolean => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.kind, expected, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };

test('record names, resolve by name, full ID and short ID, and persist across reopening', async (t) => {
  const { root, content, images } = await openStores(t);
  const image = await storeImage(content);
  const outcome = await images.record(image.target, ['busybox', 'localhost:5000/team/app:v1']);
  assert.equal(outcome.id, image.id);
  assert.deepEqual(outcome.names, ['docker.io/library/busybox:latest', 'localhost:5000/team/app:v1']);

  for (const input of [
    'busybox',
    'busybox:latest',
    'docker.io/library/busybox:latest',
    'index.docker.io/library/busybox',
    'localhost:5000/team/app:v1',
    image.id,
    image.id.slice(7),
    image.id.slice(7, 19),
    `sha256:${image.id.slice(7, 11)}`,
  ]) {
    const resolved = images.resolve(input);
    assert.equal(resolved.id, image.id, input);
    assert.equal(resolved.target.manifest.digest, image.target.manifest.digest);
  }
  assert.equal(images.resolve('busybox').name, 'docker.io/library/busybox:latest');
  assert.equal(images.resolve(image.id).name, undefined);

  assert.throws(() => images.resolve('busybox:other'), kind('not-found', /^No such image: busybox:other$/));
  assert.throws(() => images.resolve(`sha256:${'0'.repeat(64)}`), kind('not-found'));
  assert.throws(() => images.resolve('Bad/Name'), kind('invalid-argument', /must be lowercase/));

  const file = JSON.parse(await readFile(join(root, 'images', 'images.json'), 'utf8')) as {
    version: number;
    names: Record<string, { image: string; manifest: string }>;
  };
  assert.equal(file.version, 1);
  assert.deepEqual(file.names['docker.io/library/busybox:latest'], {
    image: image.id,
    manifest: image.target.manifest.digest,
  });

  const reopened = await ImageStore.open(root, new FsContentStore(root));
  assert.equal(reopened.resolve('team/app:v1'.replace('team', 'localhost:5000/team')).id, image.id);
  assert.deepEqual(reopened.namesOf(image.id), outcome.names);
});

test('an ambiguous short ID is a conflict that names the candidates', async (t) => {
  const { content, images } = await openStores(t);
  // 17 images: at least two share their first hex digit.
  const ids: string[] = [];
  for (let i = 0; i < 17; i++) {
    const image = await storeImage(content, { salt: String(i) });
    await images.record(image.target, []);
    ids.push(image.id);
  }
  const first = (id: string): string => id.slice(7, 8);
  const shared = ids.find((id) => ids.filter((other) => first(other) === first(id)).length > 1) as string;
  const matching = ids.filter((id) => first(id) === first(shared));
  assert.throws(
    () => images.resolve(first(shared)),
    kind(
      'conflict',
      new RegExp(`^image ID prefix "${first(shared)}" is ambiguous: it matches ${matching.length} images`),
    ),
  );
  assert.throws(
    () => images.resolve(first(shared)),
    (err: Error) => matching.every((id) => err.message.includes(id.slice(7, 19))),
  );
  assert.equal(images.resolve(shared.slice(7, 30)).id, shared);
});

test('list shows tags, digests, creation time and sizes; unpacked size where known', async (t) => {
  const { content, images } = await openStores(t);
  const plain = await storeImage(content, {
    layers: [{ a: 'x'.repeat(3000) }, { b: 'y' }],
    created: '2024-05-01T00:00:00Z',
  });
  const zipped = await storeImage(content, {
    compression: 'gzip',
    created: '2023-01-01T00:00:00Z',
    config: { Labels: { team: 'a' } },
  });
  const digestName = `docker.io/library/busybox@${plain.target.manifest.digest}`;
  await images.record(plain.target, ['busybox:1', digestName]);
  await images.record(zipped.target, ['other']);

  const [first, second] = await images.list();
  assert.equal(first?.id, plain.id);
  assert.deepEqual(first?.repoTags, ['busybox:1']);
  assert.deepEqual(first?.repoDigests, [`busybox@${plain.target.manifest.digest}`]);
  assert.equal(first?.created, '2024-05-01T00:00:00Z');
  const layerBytes = plain.layers.reduce((sum, layer) => sum + layer.length, 0);
  assert.equal(first?.size, layerBytes);
  assert.equal(first?.unpackedSize, layerBytes);

  assert.equal(second?.id, zipped.id);
  assert.deepEqual(second?.labels, { team: 'a' });
  assert.equal(second?.size, zipped.manifest.layers[0]?.size);
  assert.equal(second?.unpackedSize, undefined, 'a gzip layer has no known uncompressed size yet');
  await recordUnpackedSize(
    content,
    zipped.manifest.layers[0]?.digest as string,
    zipped.layers[0]?.length as number,
  );
  const again = (await images.list()).find((image) => image.id === zipped.id);
  assert.equal(again?.unpackedSize, zipped.layers[0]?.length);
});

test('recording refuses targets with missing blobs and digest names that do not match', async (t) => {
  const { content, images } = await openStores(t);
  const image = await storeImage(content, { layers: [{ a: '1' }, { b: '2' }] });
  await content.delete(image.manifest.layers[1]?.digest as string);
  await assert.rejects(
    images.record(image.target, ['broken']),
    kind('invalid-argument', /layer sha256:[0-9a-f]{64} is not in the content store/),
  );
  assert.equal(images.records().length, 0);
  assert.equal(images.nameRecord('broken'), undefined);

  const good = await storeImage(content);
  await assert.rejects(
    images.record(good.target, [`busybox@sha256:${'1'.repeat(64)}`]),
    kind('invalid-argument', /does not match manifest/),
  );
  await assert.rejects(
    images.record({ manifest: { ...good.target.manifest, size: 1 } }, []),
    kind('invalid-argument', /descriptor says 1/),
  );
  assert.equal(images.records().length, 0);
});

test('tag adds and moves names; untag leaves the image unnamed; digests cannot be tags', async (t) => {
  const { content, images } = await openStores(t);
  const a = await storeImage(content, { salt: 'a' });
  const b = await storeImage(content, { salt: 'b' });
  await images.record(a.target, ['app:1']);
  await images.record(b.target, ['app:2']);

  const tagged = await images.tag('app:1', 'registry.example/app:stable');
  assert.deepEqual(tagged.names, ['registry.example/app:stable']);
  assert.equal(images.resolve('registry.example/app:stable').id, a.id);

  const moved = await images.tag(b.id.slice(7, 19), 'registry.example/app:stable');
  assert.deepEqual(moved.moved, [{ name: 'registry.example/app:stable', from: a.id }]);
  assert.equal(images.resolve('registry.example/app:stable').id, b.id);
  const same = await images.tag('app:2', 'registry.example/app:stable');
  assert.deepEqual(same.unchanged, ['registry.example/app:stable']);

  await assert.rejects(
    images.tag('app:1', `app@${a.target.manifest.digest}`),
    kind('invalid-argument', /digest reference/),
  );
  await assert.rejects(images.tag('nothing', 'x'), kind('not-found', /No such image: nothing/));

  assert.equal(await images.untag('app:1'), a.id);
  assert.deepEqual(images.namesOf(a.id), []);
  assert.equal(images.resolve(a.id).id, a.id, 'the image stays, unnamed');
  await assert.rejects(images.untag('app:1'), kind('not-found'));
});

test('remove by name: untag while other names remain, delete with the last one', async (t) => {
  const { content, images } = await openStores(t);
  const image = await storeImage(content);
  const digestName = `docker.io/library/app@${image.target.manifest.digest}`;
  await images.record(image.target, ['app:1', 'app:2', 'other:1', digestName]);

  assert.deepEqual(await images.remove('app:1'), [{ untagged: 'app:1' }]);
  // The repository's last tag takes its digest names with it.
  assert.deepEqual(await images.remove('app:2'), [
    { untagged: 'app:2' },
    { untagged: `app@${image.target.manifest.digest}` },
  ]);
  assert.deepEqual(images.namesOf(image.id), ['docker.io/library/other:1']);
  assert.deepEqual(await images.remove('other:1'), [{ untagged: 'other:1' }, { deleted: image.id }]);
  assert.equal(images.records().length, 0);
  assert.throws(() => images.resolve(image.id), kind('not-found'));
});

test('remove refuses what a container uses unless forced, and never while one runs', async (t) => {
  const { content, images } = await openStores(t);
  const image = await storeImage(content);
  const short = image.id.slice(7, 19);
  const container = 'c'.repeat(64);
  await images.record(image.target, ['app:1']);
  const stopped = () => ({ id: container, running: false });
  const running = () => ({ id: container, running: true });

  await assert.rejects(
    images.remove('app:1', { containerUsing: stopped }),
    kind(
      'conflict',
      new RegExp(
        `^unable to remove repository reference "app:1" \\(must force\\) - container cccccccccccc is using its referenced image ${short}$`,
      ),
    ),
  );
  await assert.rejects(
    images.remove(short, { containerUsing: stopped }),
    kind(
      'conflict',
      new RegExp(
        `^unable to delete ${short} \\(must be forced\\) - image is being used by stopped container cccccccccccc$`,
      ),
    ),
  );
  await assert.rejects(
    images.remove(image.id, { containerUsing: running, force: true }),
    kind('conflict', /\(cannot be forced\) - image is being used by running container cccccccccccc$/),
  );
  assert.deepEqual(images.namesOf(image.id), ['docker.io/library/app:1'], 'refusals change nothing');

  // Forced by name while a container runs: the name goes, the image stays for the container.
  assert.deepEqual(await images.remove('app:1', { containerUsing: running, force: true }), [
    { untagged: 'app:1' },
  ]);
  assert.equal(images.resolve(image.id).id, image.id);
  // Forced by ID with a stopped container: gone.
  assert.deepEqual(await images.remove(image.id, { containerUsing: stopped, force: true }), [
    { deleted: image.id },
  ]);
});

test('remove by ID refuses names in several repositories unless forced', async (t) => {
  const { content, images } = await openStores(t);
  const image = await storeImage(content);
  const short = image.id.slice(7, 19);
  await images.record(image.target, ['one:1', 'two:1']);
  await assert.rejects(
    images.remove(short),
    kind(
      'conflict',
      new RegExp(
        `^unable to delete ${short} \\(must be forced\\) - image is referenced in multiple repositories$`,
      ),
    ),
  );
  assert.deepEqual(await images.remove(short, { force: true }), [
    { untagged: 'one:1' },
    { untagged: 'two:1' },
    { deleted: image.id },
  ]);

  // One tag plus digests of the same repository is a single reference: no force needed.
  const again = await storeImage(content, { salt: 'again' });
  await images.record(again.target, ['one:1', `one@${again.target.manifest.digest}`]);
  assert.deepEqual(await images.remove(again.id), [
    { untagged: 'one:1' },
    { untagged: `one@${again.target.manifest.digest}` },
    { deleted: again.id },
  ]);
});

test('prune removes unnamed images, or every unused one with all', async (t) => {
  const { content, images } = await openStores(t);
  const named = await storeImage(content, { salt: 'named' });
  const unnamed = await storeImage(content, { salt: 'unnamed' });
  const used = await storeImage(content, { salt: 'used' });
  await images.record(named.target, ['named']);
  await images.record(unnamed.target, []);
  await images.record(used.target, []);
  const containerUsing = (id: string) => (id === used.id ? { id: 'c1', running: false } : undefined);
  assert.deepEqual(await images.prune({ containerUsing }), [{ deleted: unnamed.id }]);
  assert.deepEqual(await images.prune({ all: true, containerUsing }), [
    { untagged: 'named:latest' },
    { deleted: named.id },
  ]);
  assert.deepEqual(
    images.records().map((r) => r.id),
    [used.id],
  );
});

test('gc keeps every blob an image references and reports the chain IDs in use', async (t) => {
  const { content, images } = await openStores(t);
  const base = { 'bin/sh': 'shell' };
  const kept = await storeImage(content, { layers: [base, { app: '1' }], salt: 'kept' });
  const dropped = await storeImage(content, { layers: [base, { other: '2' }], salt: 'dropped' });
  await images.record(kept.target, ['kept']);
  await images.record(dropped.target, ['dropped']);
  const stray = await content.writeBlob(Buffer.from('not referenced by anything'));

  await images.remove('dropped');
  const result = await images.gc();
  const keptBlobs = [kept.target.manifest.digest, kept.id, ...kept.manifest.layers.map((l) => l.digest)];
  const droppedOnly = [
    dropped.target.manifest.digest,
    dropped.id,
    dropped.manifest.layers[1]?.digest as string,
  ];
  assert.deepEqual([...result.removed].sort(), [...droppedOnly, stray.digest].sort());
  for (const digest of keptBlobs) assert.ok(await content.info(digest), `${digest} kept`);
  assert.deepEqual([...result.chainIds].sort(), chainIdsOf(kept.config.rootfs.diff_ids).sort());
  assert.equal(result.chainIds.size, 2);
});

test('concurrent changes are serialised: every name lands and the records stay valid', async (t) => {
  const { root, content, images } = await openStores(t);
  const a = await storeImage(content, { salt: 'a' });
  const b = await storeImage(content, { salt: 'b' });
  await images.record(a.target, ['base']);
  await images.record(b.target, ['other']);
  const operations: Array<Promise<unknown>> = [];
  for (let i = 0; i < 20; i++) {
    operations.push(images.tag('base', `app:${i}`));
    // The same name, back and forth between two images: the last call wins.
    operations.push(images.tag(i % 2 === 0 ? 'base' : 'other', 'app:contested'));
  }
  await Promise.all(operations);
  assert.equal(images.namesOf(a.id).filter((name) => /app:\d+$/.test(name)).length, 20);
  assert.equal(images.resolve('app:contested').id, b.id);
  const reopened = await ImageStore.open(root, content);
  assert.deepEqual(reopened.namesOf(a.id), images.namesOf(a.id));
  assert.deepEqual(reopened.namesOf(b.id), images.namesOf(b.id));
});

test('a pulled-by-index target records the index; the name resolves to its manifest', async (t) => {
  const { content, images } = await openStores(t);
  const image = await storeImage(content);
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.ociIndex,
      manifests: [{ ...image.target.manifest, platform: { os: 'linux', architecture: 'amd64' } }],
    }),
  );
  const info = await content.writeBlob(index);
  const target = {
    manifest: image.target.manifest,
    index: { mediaType: MEDIA_TYPE.ociIndex, digest: info.digest, size: info.size },
  };
  await images.record(target, ['multi:1', `multi@${info.digest}`]);
  assert.equal(images.nameRecord('multi:1')?.index, info.digest);
  assert.equal(images.resolve(`multi@${info.digest}`).target.index?.digest, info.digest);
  const [summary] = await images.list();
  assert.deepEqual(summary?.repoDigests, [`multi@${info.digest}`]);
  // The index is a GC root: it and the manifest it lists survive.
  const result = await images.gc();
  assert.deepEqual(result.removed, []);
});

test('a missing image is named as dockerd names it: familiar, with :latest when untagged', async (t) => {
  const { images } = await openStores(t);
  assert.throws(() => images.resolve('nosuch'), kind('not-found', /^No such image: nosuch:latest$/));
  assert.throws(
    () => images.resolve('docker.io/library/nosuch:1'),
    kind('not-found', /^No such image: nosuch:1$/),
  );
  assert.throws(
    () => images.resolve('localhost:5000/a/b'),
    kind('not-found', /^No such image: localhost:5000\/a\/b:latest$/),
  );
  const id = `sha256:${'e'.repeat(64)}`;
  assert.throws(() => images.resolve(id), kind('not-found', new RegExp(`^No such image: ${id}$`)));
});
