import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ensureFixture } from '../../../fixtures/index.js';
import { tarArchive, type TarEntry } from '../../../src/archive/tar-writer.js';
import { BerthError } from '../../../src/common/errors.js';
import { sha256Of } from '../../../src/content/digest.js';
import { loadImages } from '../../../src/image/load.js';
import type { ImageStore } from '../../../src/image/store/image-store.js';
import type { ImageProgress } from '../../../src/image/store/progress.js';
import { MEDIA_TYPE, type ImageIndex, type ImageManifest } from '../../../src/oci/image-spec.js';
import { chunks, fileEntry, openStores, tarMembers } from './store-fixtures.js';

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const hex = (digest: string): string => digest.slice(7);

async function load(images: ImageStore, root: string, archive: Buffer, baseName?: string) {
  const events: ImageProgress[] = [];
  const outcomes = await loadImages(chunks(archive), {
    images,
    tempDir: join(root, 'tmp'),
    ...(baseName !== undefined ? { baseName } : {}),
    onProgress: (event) => events.push(event),
  });
  return { outcomes, messages: events.map((event) => event.status) };
}

/** A tar of an OCI layout directory, as `skopeo copy ... oci-archive:` writes one. */
async function tarLayout(dir: string, index?: Buffer): Promise<Buffer> {
  const entries: TarEntry[] = [fileEntry('oci-layout', await readFile(join(dir, 'oci-layout')))];
  for (const name of await readdir(join(dir, 'blobs', 'sha256'))) {
    entries.push(fileEntry(`blobs/sha256/${name}`, await readFile(join(dir, 'blobs', 'sha256', name))));
  }
  entries.push(fileEntry('index.json', index ?? (await readFile(join(dir, 'index.json')))));
  return tarArchive(entries);
}

const invalidArchive =
  (message: RegExp) =>
  (err: unknown): boolean => {
    assert.ok(err instanceof BerthError, String(err));
    assert.equal(err.kind, 'invalid-argument');
    assert.match(err.message, /^invalid image archive: /);
    assert.match(err.message, message);
    return true;
  };

test('load the busybox docker-save fixture: names, image ID and the archive manifest', async (t) => {
  const { root, images } = await openStores(t);
  const fixture = await ensureFixture('busybox');
  const archive = await readFile(fixture.dockerArchive);
  const { outcomes, messages } = await load(images, root, archive);
  const layoutManifest = (
    await readFile(join(fixture.ociLayout, 'blobs', 'sha256', hex(fixture.manifestDigest)))
  ).toString();
  const configDigest = (JSON.parse(layoutManifest) as ImageManifest).config.digest;
  assert.equal(outcomes.length, 1);
  assert.equal(outcomes[0]?.id, configDigest);
  assert.deepEqual(messages, ['Loaded image: busybox:latest']);
  // The archive's own OCI manifest (uncompressed layers) is recorded, digest unchanged.
  const members = await tarMembers(archive);
  const archiveIndex = JSON.parse((members.get('index.json') as Buffer).toString()) as ImageIndex;
  const details = await images.inspect('busybox:latest');
  assert.equal(details.target.manifest.mediaType, MEDIA_TYPE.ociManifest);
  assert.equal(details.target.manifest.digest, archiveIndex.manifests[0]?.digest);
  assert.equal(details.unpackedSize, details.size);

  // Loading the same archive again changes nothing.
  const again = await load(images, root, archive);
  assert.deepEqual(again.outcomes[0]?.unchanged, ['docker.io/library/busybox:latest']);
  // A gzip-compressed archive loads the same.
  const { root: root2, images: images2 } = await openStores(t);
  const zipped = await load(images2, root2, gzipSync(archive));
  assert.equal(zipped.outcomes[0]?.id, configDigest);
});

test('load an OCI archive: names from ref.name with a base name, or unnamed', async (t) => {
  const fixture = await ensureFixture('busybox');
  const archive = await tarLayout(fixture.ociLayout);
  const { root, images } = await openStores(t);
  const unnamed = await load(images, root, archive);
  const id = unnamed.outcomes[0]?.id as string;
  assert.deepEqual(unnamed.messages, [`Loaded image ID: ${id}`]);
  assert.equal(images.resolve(id).target.manifest.digest, fixture.manifestDigest);

  const named = await load(images, root, archive, 'localhost:5000/tools/busybox');
  assert.deepEqual(named.messages, ['Loaded image: localhost:5000/tools/busybox:latest']);
  assert.equal(named.outcomes[0]?.id, id);
  // The gzip layers were decompressed to check their diff IDs; the unpacked size is now known.
  const details = await images.inspect('localhost:5000/tools/busybox');
  assert.ok(details.unpackedSize !== undefined && details.unpackedSize > details.size);

  // A full reference in ref.name (or io.containerd.image.name) names the image by itself.
  const index = JSON.parse((await readFile(join(fixture.ociLayout, 'index.json'))).toString()) as ImageIndex;
  const manifests = index.manifests.map((m) => ({
    ...m,
    annotations: { 'org.opencontainers.image.ref.name': 'example.com/box:2' },
  }));
  const byRef = await load(images, root, await tarLayout(fixture.ociLayout, json({ ...index, manifests })));
  assert.deepEqual(byRef.messages, ['Loaded image: example.com/box:2']);
});

/** Two images in the format Docker wrote before 25: `<id>/layer.tar`, `<config hex>.json`, a symlinked shared layer. */
function legacyArchive(options: { manifestLast?: boolean; wrongDiffId?: boolean } = {}) {
  const layer1 = tarArchive([fileEntry('bin/a', 'a')]);
  const layer2 = tarArchive([fileEntry('etc/b', 'b')]);
  const config = (diffIds: string[], salt: string): Buffer =>
    json({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: [salt] },
      rootfs: { type: 'layers', diff_ids: diffIds },
    });
  const config1 = config([options.wrongDiffId ? sha256Of('other') : sha256Of(layer1)], 'one');
  const config2 = config([sha256Of(layer1), sha256Of(layer2)], 'two');
  const [a, b, c] = ['a', 'b', 'c'].map((ch) => ch.repeat(64)) as [string, string, string];
  const manifest = fileEntry(
    'manifest.json',
    json([
      { Config: `${hex(sha256Of(config1))}.json`, RepoTags: ['one:latest'], Layers: [`${a}/layer.tar`] },
      {
        Config: `${hex(sha256Of(config2))}.json`,
        RepoTags: ['two:v2'],
        Layers: [`${b}/layer.tar`, `${c}/layer.tar`],
      },
    ]),
  );
  const entries: TarEntry[] = [
    { path: `${a}/`, type: 'directory', mode: 0o755 },
    fileEntry(`${a}/VERSION`, '1.0'),
    fileEntry(`${a}/json`, '{}'),
    fileEntry(`${a}/layer.tar`, layer1),
    { path: `${b}/layer.tar`, type: 'symlink', mode: 0o777, linkTarget: `../${a}/layer.tar` },
    fileEntry(`${c}/layer.tar`, layer2),
    fileEntry(`${hex(sha256Of(config1))}.json`, config1),
    fileEntry(`${hex(sha256Of(config2))}.json`, config2),
    fileEntry('repositories', json({ one: { latest: a }, two: { v2: c, extra: c } })),
  ];
  if (options.manifestLast === false) entries.unshift(manifest);
  else entries.push(manifest);
  return { archive: tarArchive(entries), ids: [sha256Of(config1), sha256Of(config2)] };
}

test('load the pre-25 docker save format, manifest.json last, symlinked layers, repositories tags', async (t) => {
  const { root, images } = await openStores(t);
  const { archive, ids } = legacyArchive();
  const { outcomes, messages } = await load(images, root, archive);
  assert.deepEqual(
    outcomes.map((o) => o.id),
    ids,
  );
  // RepoTags first, then what only `repositories` names.
  assert.deepEqual(messages, ['Loaded image: one:latest', 'Loaded image: two:v2', 'Loaded image: two:extra']);
  const two = await images.inspect('two:extra');
  assert.equal(two.id, ids[1]);
  // A manifest is made for each image; its layers are the uncompressed tars.
  const manifest = await images.blobs.manifest(two.target.manifest.digest);
  assert.deepEqual(
    manifest.layers.map((l) => [l.mediaType, l.digest]),
    two.diffIds.map((d) => [MEDIA_TYPE.ociLayer, d]),
  );
  assert.equal((await images.inspect('one')).diffIds[0], two.diffIds[0]);
});

/** Our tar writer strips leading slashes, as it should; write the name by hand and fix the checksum. */
function absolutePathArchive(): Buffer {
  const archive = tarArchive([fileEntry('_etc/passwd', 'x')]);
  archive.write('/', 0, 'latin1');
  archive.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += archive[i] as number;
  archive.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return archive;
}

async function assertNothingRecorded(images: ImageStore): Promise<void> {
  assert.deepEqual(images.records(), []);
  assert.deepEqual(await images.list(), []);
}

test('hostile or broken archives fail with one clear error and record nothing', async (t) => {
  const fixture = await ensureFixture('busybox');
  const good = await readFile(fixture.dockerArchive);
  const layer = tarArchive([fileEntry('x', 'x')]);
  const cases: Array<[string, Buffer, RegExp]> = [
    [
      'no manifest',
      tarArchive([fileEntry('blobs/sha256/' + hex(sha256Of(layer)), layer)]),
      /neither manifest\.json nor index\.json/,
    ],
    ['empty', Buffer.alloc(1024), /neither manifest\.json nor index\.json/],
    ['not a tar', Buffer.from('hello, this is not an archive'.repeat(40)), /unknown magic bytes/],
    [
      'digest mismatch',
      tarArchive([fileEntry(`blobs/sha256/${'0'.repeat(64)}`, 'not what the name says')]),
      /member "blobs\/sha256\/0{64}" does not match its digest/,
    ],
    [
      'dot-dot',
      tarArchive([fileEntry('blobs/../../etc/passwd', 'x')]),
      /member "blobs\/..\/..\/etc\/passwd" has a path that leaves the archive/,
    ],
    ['absolute', absolutePathArchive(), /member "\/etc\/passwd" has an absolute path/],
    [
      'symlink out',
      tarArchive([{ path: 'a/layer.tar', type: 'symlink', mode: 0o777, linkTarget: '../../etc/shadow' }]),
      /is a link that leaves the archive/,
    ],
    [
      'device',
      tarArchive([{ path: 'dev', type: 'char', mode: 0o600, devMajor: 1, devMinor: 3 }]),
      /is a char, which an image archive never holds/,
    ],
    [
      'truncated',
      good.subarray(0, Math.floor(good.length / 2)),
      /truncated inside "blobs\/sha256\/[0-9a-f]{64}"/,
    ],
    [
      'manifest names a missing member',
      tarArchive([fileEntry('manifest.json', json([{ Config: 'c.json', RepoTags: ['x:1'], Layers: [] }]))]),
      /manifest\.json entry 0 refers to "c\.json", which is not in the archive/,
    ],
    [
      'manifest.json not a list',
      tarArchive([fileEntry('manifest.json', '{}')]),
      /manifest\.json lists no images/,
    ],
    [
      'diff ID mismatch',
      legacyArchive({ wrongDiffId: true }).archive,
      /layer 0 of manifest\.json entry 0 has digest sha256:[0-9a-f]{64}, but the image config gives diff ID/,
    ],
    [
      'bad tag',
      tarArchive([
        ...(await tarMembersOf(good, {
          'manifest.json': (m) => m.replace('busybox:latest', 'Busybox:latest'),
        })),
      ]),
      /names the image "Busybox:latest", which is not a valid reference/,
    ],
  ];
  for (const [what, archive, message] of cases) {
    const { root, images } = await openStores(t);
    await assert.rejects(load(images, root, archive), invalidArchive(message), what);
    await assertNothingRecorded(images);
  }
});

/** The members of an archive as entries, with some files rewritten. */
async function tarMembersOf(
  archive: Buffer,
  rewrite: Record<string, (text: string) => string>,
): Promise<TarEntry[]> {
  return [...(await tarMembers(archive))].map(([path, body]) =>
    fileEntry(path, rewrite[path] ? rewrite[path](body.toString()) : body),
  );
}

test('a bad second image leaves the first one unrecorded too', async (t) => {
  const { root, images } = await openStores(t);
  const { archive } = legacyArchive();
  // Drop the second image's top layer: entry 1 cannot resolve.
  const members = [...(await tarMembers(archive))].filter(([path]) => !path.startsWith('c'.repeat(64)));
  const broken = tarArchive(
    members.map(([path, body]) =>
      body.toString().startsWith('-> ')
        ? { path, type: 'symlink', mode: 0o777, linkTarget: body.toString().slice(3) }
        : fileEntry(path, body),
    ),
  );
  await assert.rejects(
    load(images, root, broken),
    invalidArchive(/manifest\.json entry 1 refers to "c{64}\/layer\.tar"/),
  );
  await assertNothingRecorded(images);
});
