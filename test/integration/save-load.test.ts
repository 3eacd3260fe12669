/**
 * docker save / load against third-party tools: archives skopeo wrote (docker-archive and
 * oci-archive) load with berth's code; what berth saves, skopeo and umoci read back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ensureFixture, type BuiltFixture } from '../../fixtures/index.js';
import { ImageService } from '../../src/image/image-service.js';
import type { ImageConfig, ImageIndex, ImageManifest } from '../../src/oci/image-spec.js';
import { execOk } from '../helpers/exec.js';
import { skopeoCopy } from '../helpers/registry.js';
import { createSandbox } from '../helpers/sandbox.js';

const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, 'utf8')) as T;
const blob = (layout: string, digest: string): string => join(layout, 'blobs', 'sha256', digest.slice(7));

/** The fixture's image ID and diff IDs, from its OCI layout. */
async function fixtureImage(fixture: BuiltFixture): Promise<{ id: string; diffIds: string[] }> {
  const manifest = await readJson<ImageManifest>(blob(fixture.ociLayout, fixture.manifestDigest));
  const config = await readJson<ImageConfig>(blob(fixture.ociLayout, manifest.config.digest));
  return { id: manifest.config.digest, diffIds: config.rootfs.diff_ids };
}

async function load(service: ImageService, file: string, baseName?: string): Promise<string[]> {
  const messages: string[] = [];
  await service.load(createReadStream(file), {
    ...(baseName !== undefined ? { baseName } : {}),
    onProgress: (event) => messages.push(event.status),
  });
  return messages;
}

test('load archives that skopeo wrote: docker-archive and oci-archive', async (t) => {
  const sandbox = await createSandbox(t);
  const fixture = await ensureFixture('busybox');
  const expected = await fixtureImage(fixture);
  const dockerArchive = join(sandbox.root, 'docker-archive.tar');
  const ociArchive = join(sandbox.root, 'oci-archive.tar');
  const namedArchive = join(sandbox.root, 'oci-named.tar');
  await skopeoCopy(`oci:${fixture.ociLayout}:latest`, `docker-archive:${dockerArchive}:busybox:latest`);
  await skopeoCopy(`oci:${fixture.ociLayout}:latest`, `oci-archive:${ociArchive}:latest`);
  await skopeoCopy(`oci:${fixture.ociLayout}:latest`, `oci-archive:${namedArchive}:example.com/box:2`);
  const service = await ImageService.open({ dataRoot: sandbox.dataRoot });

  // skopeo's docker-archive: `<diff id>.tar` layers, `<v1 id>/layer.tar` symlinks, no OCI layout.
  assert.deepEqual(await load(service, dockerArchive), ['Loaded image: busybox:latest']);
  const fromDocker = await service.inspect('busybox:latest');
  assert.equal(fromDocker.id, expected.id);
  assert.deepEqual(fromDocker.diffIds, expected.diffIds);

  assert.deepEqual(await load(service, ociArchive, 'skopeo/busybox'), [
    'Loaded image: skopeo/busybox:latest',
  ]);
  const fromOci = await service.inspect('skopeo/busybox');
  assert.equal(fromOci.id, expected.id);
  assert.equal(fromOci.target.manifest.digest, fixture.manifestDigest, 'the OCI manifest is kept as it is');

  assert.deepEqual(await load(service, namedArchive), ['Loaded image: example.com/box:2']);
  assert.equal((await service.inspect('example.com/box:2')).id, expected.id);
});

test('what berth saves, skopeo and umoci read', async (t) => {
  const sandbox = await createSandbox(t);
  const busybox = await ensureFixture('busybox');
  const layers = await ensureFixture('layers');
  const service = await ImageService.open({ dataRoot: sandbox.dataRoot });
  // busybox from its OCI layout (gzip layers: save decompresses them), layers from its docker-save archive.
  const ociArchive = join(sandbox.root, 'busybox-oci.tar');
  await skopeoCopy(`oci:${busybox.ociLayout}:latest`, `oci-archive:${ociArchive}:latest`);
  await load(service, ociArchive, 'busybox');
  await load(service, layers.dockerArchive);
  const busyboxImage = await fixtureImage(busybox);
  const layersImage = await fixtureImage(layers);

  const saved = join(sandbox.root, 'saved.tar');
  await pipeline(
    Readable.from(await service.save(['busybox:latest', 'layers:latest'])),
    createWriteStream(saved),
  );

  for (const [name, image] of [
    ['busybox:latest', busyboxImage],
    ['layers:latest', layersImage],
  ] as const) {
    const inspected = JSON.parse(await execOk('skopeo', ['inspect', `docker-archive:${saved}:${name}`])) as {
      RepoTags: string[];
      Layers: string[];
    };
    assert.deepEqual(inspected.Layers, image.diffIds, `${name}: layers are the uncompressed diff IDs`);

    const layout = join(sandbox.root, `copy-${name.split(':')[0]}`);
    await skopeoCopy(`docker-archive:${saved}:${name}`, `oci:${layout}:x`);
    const index = await readJson<ImageIndex>(join(layout, 'index.json'));
    const manifest = await readJson<ImageManifest>(blob(layout, index.manifests[0]?.digest as string));
    assert.equal(manifest.config.digest, image.id, `${name}: the image ID survives`);
    assert.deepEqual((await execOk('umoci', ['ls', '--layout', layout])).trim().split('\n'), ['x']);
  }

  // A single-image save is also an OCI archive skopeo reads as such, manifest digest and all.
  const single = join(sandbox.root, 'single.tar');
  await pipeline(Readable.from(await service.save(['layers:latest'])), createWriteStream(single));
  const asOci = JSON.parse(await execOk('skopeo', ['inspect', `oci-archive:${single}:latest`])) as {
    Digest: string;
  };
  assert.equal(asOci.Digest, (await service.inspect('layers:latest')).target.manifest.digest);
});
