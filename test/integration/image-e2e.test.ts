/**
 * Images that third-party tools wrote, end to end: umoci builds an image from a directory tree
 * (two layers, the second with a deletion), skopeo pushes it to the registry fixture, berth pulls
 * it, unpacks it into overlay snapshots and mounts a container root — which must match the source
 * tree file by file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  chmod,
  chown,
  cp,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
  link,
} from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox } from '../helpers/sandbox.js';
import { startRegistry, skopeoCopy } from '../helpers/registry.js';
import { execOk } from '../helpers/exec.js';
import { ImageService } from '../../src/image/image-service.js';
import { openSnapshotter } from '../../src/snapshot/open.js';
import { mountAll, unmount } from '../../src/snapshot/mount.js';

/** type, mode, owner, size and content hash (or link target) of every entry, by relative path. */
async function describeTree(root: string): Promise<Map<string, string>> {
  const result = new Map<string, string>();
  const walk = async (relative: string): Promise<void> => {
    for (const name of (await readdir(join(root, relative))).sort()) {
      const path = relative === '' ? name : `${relative}/${name}`;
      const full = join(root, path);
      const stat = await lstat(full);
      const owner = `${stat.uid}:${stat.gid} ${(stat.mode & 0o7777).toString(8)}`;
      if (stat.isDirectory()) {
        result.set(path, `dir ${owner}`);
        await walk(path);
      } else if (stat.isSymbolicLink()) {
        result.set(path, `symlink -> ${await readlink(full)}`);
      } else if (stat.isFile()) {
        const hash = createHash('sha256')
          .update(await readFile(full))
          .digest('hex')
          .slice(0, 16);
        result.set(path, `file ${owner} ${stat.size} ${hash} links=${stat.nlink}`);
      } else {
        result.set(path, `other ${owner} ${stat.mode.toString(8)}`);
      }
    }
  };
  await walk('');
  return result;
}

test('an image written by umoci and pushed by skopeo is pulled and unpacked exactly', async (t) => {
  const sandbox = await createSandbox(t);
  const registry = await startRegistry();
  t.after(() => registry.stop());

  // The source tree: busybox plus entries with varied modes and owners.
  const layout = join(sandbox.root, 'layout');
  const bundle = join(sandbox.root, 'umoci-bundle');
  await execOk('umoci', ['init', '--layout', layout]);
  await execOk('umoci', ['new', '--image', `${layout}:img`]);
  await execOk('umoci', ['unpack', '--image', `${layout}:img`, bundle]);
  const source = join(bundle, 'rootfs');
  await mkdir(join(source, 'bin'), { recursive: true });
  await cp('/bin/busybox', join(source, 'bin/busybox'));
  await symlink('busybox', join(source, 'bin/sh'));
  await mkdir(join(source, 'srv/data/nested'), { recursive: true });
  await writeFile(join(source, 'srv/data/config.txt'), 'key=value\n');
  await writeFile(join(source, 'srv/data/nested/secret'), 'only for uid 1000\n', { mode: 0o600 });
  await chown(join(source, 'srv/data/nested/secret'), 1000, 1000);
  await writeFile(join(source, 'srv/data/remove-later'), 'gone in layer two\n');
  await writeFile(join(source, 'srv/data/setuid'), '#!/bin/sh\n');
  await chmod(join(source, 'srv/data/setuid'), 0o4755);
  await link(join(source, 'srv/data/config.txt'), join(source, 'srv/data/config-hardlink'));
  await execOk('mknod', ['-m', '0666', join(source, 'srv/data/null-device'), 'c', '1', '3']);
  await mkdir(join(source, 'tmp'));
  await chmod(join(source, 'tmp'), 0o1777);
  await execOk('umoci', ['repack', '--refresh-bundle', '--image', `${layout}:img`, bundle]);
  // Second layer: a deletion (whiteout) and a changed file.
  await rm(join(source, 'srv/data/remove-later'));
  await writeFile(join(source, 'srv/data/config.txt'), 'key=changed\n');
  await execOk('umoci', ['repack', '--refresh-bundle', '--image', `${layout}:img`, bundle]);
  await execOk('umoci', ['config', '--image', `${layout}:img`, '--config.cmd', 'sh']);

  await skopeoCopy(`oci:${layout}:img`, `docker://${registry.host}/third-party/umoci:v1`);

  const snapshotter = await openSnapshotter(sandbox.dataRoot, 'overlayfs');
  const images = await ImageService.open({ dataRoot: sandbox.dataRoot, snapshotter });
  const statuses: string[] = [];
  await images.pull(`${registry.host}/third-party/umoci:v1`, {
    onProgress: (event) => statuses.push(event.status),
  });
  assert.ok(
    statuses.some((s) => s.startsWith('Status: Downloaded newer image')),
    statuses.join('\n'),
  );
  const details = await images.inspect(`${registry.host}/third-party/umoci:v1`);
  assert.ok(details.chainIds.length >= 2, 'umoci wrote at least two layers');

  const expected = await describeTree(source);
  const compareRoot = async (
    which: string,
    layers: typeof snapshotter,
    chainId: string | undefined,
  ): Promise<void> => {
    const mounts = await layers.prepare(`container-${which}`, chainId);
    const target = join(sandbox.root, `mnt-${which}`);
    await mkdir(target);
    await mountAll(mounts, target);
    sandbox.trackMount(target);
    try {
      const actual = await describeTree(target);
      assert.deepEqual([...actual.keys()], [...expected.keys()], `${which}: the same paths`);
      for (const [path, description] of expected) assert.equal(actual.get(path), description, path);
      assert.equal(actual.has('srv/data/remove-later'), false);
    } finally {
      await unmount(target);
    }
  };
  await compareRoot('gzip', snapshotter, details.chainIds.at(-1));

  // The same image with zstd layers. skopeo keeps compressed layers as they are, so: decompress
  // into a dir: copy, compress with zstd into an OCI layout, push that keeping the OCI manifest
  // (a Docker schema 2 manifest cannot carry zstd layers), to a registry of its own (skopeo would
  // reuse the gzip blobs it already pushed to the first one for the same content).
  const plain = join(sandbox.root, 'plain-layers');
  const zstdLayout = join(sandbox.root, 'zstd-layout');
  const skopeo = (...args: string[]) =>
    execOk('skopeo', ['--insecure-policy', 'copy', '--quiet', ...args], { timeoutMs: 120_000 });
  await skopeo('--dest-decompress', `oci:${layout}:img`, `dir:${plain}`);
  await skopeo(
    '--format',
    'oci',
    '--dest-compress',
    '--dest-compress-format',
    'zstd',
    `dir:${plain}`,
    `oci:${zstdLayout}:img`,
  );
  const zstdRegistry = await startRegistry();
  t.after(() => zstdRegistry.stop());
  const zstdName = `${zstdRegistry.host}/third-party/umoci:zstd`;
  await skopeo(
    '--format',
    'oci',
    '--dest-compress-format',
    'zstd',
    '--dest-tls-verify=false',
    `oci:${zstdLayout}:img`,
    `docker://${zstdName}`,
  );
  // A data root of its own, so every layer is unpacked again (from zstd).
  const zstdRoot = join(sandbox.root, 'zstd-data');
  const zstdSnapshotter = await openSnapshotter(zstdRoot, 'overlayfs');
  const zstdImages = await ImageService.open({ dataRoot: zstdRoot, snapshotter: zstdSnapshotter });
  await zstdImages.pull(zstdName);
  const zstdDetails = await zstdImages.inspect(zstdName);
  assert.deepEqual(zstdDetails.chainIds, details.chainIds, 'the same diff IDs from zstd layers');
  const manifest = JSON.parse(
    await execOk('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${zstdName}`]),
  ) as { layers: Array<{ mediaType: string }> };
  assert.ok(
    manifest.layers.every((layer) => layer.mediaType.endsWith('+zstd')),
    JSON.stringify(manifest),
  );
  await compareRoot('zstd', zstdSnapshotter, zstdDetails.chainIds.at(-1));

  // A second pull has nothing to do.
  const again: string[] = [];
  await images.pull(`${registry.host}/third-party/umoci:v1`, {
    onProgress: (event) => again.push(event.status),
  });
  assert.ok(
    again.some((s) => s.startsWith('Status: Image is up to date')),
    again.join('\n'),
  );
});
