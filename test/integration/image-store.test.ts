/**
 * The image service against Debian's docker-registry and the overlay snapshotter: pull what
 * skopeo pushed, unpack it by chain ID, list and inspect it, push it elsewhere, remove it and
 * collect what is left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureFixture } from '../../fixtures/index.js';
import { BerthError } from '../../src/common/errors.js';
import { ImageService } from '../../src/image/image-service.js';
import type { ImageProgress } from '../../src/image/store/progress.js';
import type { ImageManifest } from '../../src/oci/image-spec.js';
import { openSnapshotter } from '../../src/snapshot/open.js';
import type { Snapshotter } from '../../src/snapshot/snapshotter.js';
import { execOk } from '../helpers/exec.js';
import { skopeoCopy, startRegistry } from '../helpers/registry.js';
import { createSandbox } from '../helpers/sandbox.js';

async function committed(snapshotter: Snapshotter): Promise<string[]> {
  const names: string[] = [];
  await snapshotter.walk((info) => {
    if (info.kind === 'committed') names.push(info.name);
  });
  return names.sort();
}

test('pull through the service into overlay snapshots; push, remove and gc', async (t) => {
  const sandbox = await createSandbox(t);
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const busybox = await ensureFixture('busybox');
  const layers = await ensureFixture('layers');
  await skopeoCopy(`oci:${busybox.ociLayout}:latest`, `docker://${registry.host}/lib/busybox:latest`);
  await skopeoCopy(`oci:${layers.ociLayout}:latest`, `docker://${registry.host}/lib/layers:1`);
  const snapshotter = await openSnapshotter(sandbox.dataRoot, 'overlayfs');
  // Which image a (pretend) container uses: removal consults it.
  const container: { image?: string } = {};
  const service = await ImageService.open({
    dataRoot: sandbox.dataRoot,
    snapshotter,
    containerUsing: (id) => (id === container.image ? { id: 'f'.repeat(64), running: false } : undefined),
  });

  const progress: ImageProgress[] = [];
  const first = await service.pull(`${registry.host}/lib/busybox`, { onProgress: (e) => progress.push(e) });
  assert.equal(first.digest, busybox.manifestDigest);
  assert.deepEqual(progress[0], { id: 'latest', status: 'Pulling from lib/busybox' });
  assert.ok(progress.some((e) => e.status === 'Extracting'));
  assert.deepEqual(progress.at(-1), {
    status: `Status: Downloaded newer image for ${registry.host}/lib/busybox:latest`,
  });

  // The layers image is built on busybox: its base layer exists and its chain is not unpacked again.
  const second: ImageProgress[] = [];
  await service.pull(`${registry.host}/lib/layers:1`, { onProgress: (e) => second.push(e) });
  const busyboxDetails = await service.inspect(`${registry.host}/lib/busybox`);
  const layersDetails = await service.inspect(`${registry.host}/lib/layers:1`);
  const baseLayer = (
    JSON.parse(
      await readFile(join(busybox.ociLayout, 'blobs', 'sha256', busybox.manifestDigest.slice(7)), 'utf8'),
    ) as ImageManifest
  ).layers[0]?.digest as string;
  const baseId = baseLayer.slice(7, 19);
  assert.deepEqual(
    second.filter((e) => e.id === baseId).map((e) => e.status),
    ['Already exists'],
  );
  assert.equal(layersDetails.chainIds[0], busyboxDetails.chainIds[0]);
  assert.deepEqual(await committed(snapshotter), [...new Set([...layersDetails.chainIds])].sort());

  const list = await service.list();
  assert.deepEqual(list.map((image) => image.repoTags).sort(), [
    [`${registry.host}/lib/busybox:latest`],
    [`${registry.host}/lib/layers:1`],
  ]);
  assert.deepEqual(busyboxDetails.repoDigests, [`${registry.host}/lib/busybox@${busybox.manifestDigest}`]);
  assert.ok(list.every((image) => image.unpackedSize !== undefined && image.unpackedSize > image.size));

  // Push under another name; skopeo sees the same manifest.
  await service.tag(`${registry.host}/lib/layers:1`, `${registry.host}/other/layers:copy`);
  const [pushed] = await service.push(`${registry.host}/other/layers:copy`);
  assert.equal(pushed?.digest, layers.manifestDigest);
  const inspected = JSON.parse(
    await execOk('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/other/layers:copy`]),
  ) as { Digest: string };
  assert.equal(inspected.Digest, layers.manifestDigest);

  // A container on the layers image keeps it from being removed without force.
  container.image = layersDetails.id;
  await assert.rejects(
    service.remove(layersDetails.id.slice(7, 19)),
    (err: BerthError) =>
      err.kind === 'conflict' && /being used by stopped container ffffffffffff/.test(err.message),
  );

  // The removal takes the image's own layers and blobs (as dockerd's rmi); the base layer that
  // busybox shares stays, and nothing is left for gc.
  await service.remove(layersDetails.id, { force: true });
  assert.deepEqual(await committed(snapshotter), busyboxDetails.chainIds);
  assert.equal(await service.content.info(layers.manifestDigest), undefined);
  assert.ok(await service.content.info(baseLayer));
  const collected = await service.gc();
  assert.deepEqual(collected.snapshotsRemoved, []);
  assert.ok(!collected.removed.includes(baseLayer));
});
