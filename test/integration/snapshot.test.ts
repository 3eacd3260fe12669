import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { tarArchive } from '../../src/archive/tar-writer.js';
import type { ImageConfig, ImageIndex, ImageManifest } from '../../src/oci/image-spec.js';
import { applyLayer } from '../../src/snapshot/apply-layer.js';
import { MOUNT_DATA_LIMIT, mountAll, unmount } from '../../src/snapshot/mount.js';
import { openSnapshotter } from '../../src/snapshot/open.js';
import type { Mount, SnapshotDriverName, Snapshotter } from '../../src/snapshot/snapshotter.js';
import { ensureFixture } from '../../fixtures/index.js';
import { LAYERS_EXPECTED } from '../../fixtures/layers.js';
import { execOk } from '../helpers/exec.js';
import { createSandbox } from '../helpers/sandbox.js';

interface Layout {
  layers: Array<{ path: string; mediaType: string; diffId: string }>;
}

/** index.json -> manifest -> config and layers of the image in an OCI layout. */
async function readLayout(dir: string): Promise<Layout> {
  const blob = (digest: string): string => join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as ImageIndex;
  const manifest = JSON.parse(
    await readFile(blob(index.manifests[0]?.digest ?? ''), 'utf8'),
  ) as ImageManifest;
  const config = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as ImageConfig;
  return {
    layers: manifest.layers.map((layer, i) => ({
      path: blob(layer.digest),
      mediaType: layer.mediaType,
      diffId: config.rootfs.diff_ids[i] ?? '',
    })),
  };
}

/** Facts about every path below `root`: type, mode, owner, content, link target, xattrs, hardlink groups. */
async function treeFacts(root: string): Promise<{ lines: string[]; hardlinks: string[] }> {
  const paths: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    for (const name of (await readdir(join(root, relative))).sort()) {
      const path = relative === '' ? name : `${relative}/${name}`;
      paths.push(path);
      if ((await lstat(join(root, path))).isDirectory()) await walk(path);
    }
  };
  await walk('');
  const script = [
    'import base64, json, os, sys',
    'print(json.dumps([{n: base64.b64encode(os.getxattr(p, n, follow_symlinks=False)).decode() for n in os.listxattr(p, follow_symlinks=False)} for p in json.load(sys.stdin)]))',
  ].join('\n');
  const xattrs = JSON.parse(
    await execOk('python3', ['-c', script], { input: JSON.stringify(paths.map((path) => join(root, path))) }),
  ) as Array<Record<string, string>>;
  const lines: string[] = [];
  const inodes = new Map<number, string[]>();
  for (const [index, path] of paths.entries()) {
    const full = join(root, path);
    const info = await lstat(full);
    let detail = '';
    if (info.isFile())
      detail = createHash('sha256')
        .update(await readFile(full))
        .digest('hex')
        .slice(0, 16);
    if (info.isSymbolicLink()) detail = `-> ${await readlink(full)}`;
    const time = info.isSymbolicLink() ? '' : ` t=${Math.floor(info.mtimeMs / 1000)}`;
    lines.push(
      `${path} ${info.mode.toString(8)} ${info.uid}:${info.gid}${time} ${detail} ${JSON.stringify(xattrs[index])}`,
    );
    if (!info.isDirectory() && info.nlink > 1) inodes.set(info.ino, [...(inodes.get(info.ino) ?? []), path]);
  }
  return { lines, hardlinks: [...inodes.values()].map((group) => group.sort().join(' = ')).sort() };
}

async function checkExpected(rootfs: string): Promise<void> {
  for (const expected of LAYERS_EXPECTED) {
    const path = join(rootfs, expected.path);
    if (expected.type === 'absent') {
      await assert.rejects(lstat(path), { code: 'ENOENT' }, `${expected.path} must be gone`);
      continue;
    }
    const info = await lstat(path);
    const type = info.isFile()
      ? 'file'
      : info.isDirectory()
        ? 'dir'
        : info.isSymbolicLink()
          ? 'symlink'
          : info.isFIFO()
            ? 'fifo'
            : '?';
    assert.equal(type, expected.type, expected.path);
    if (expected.content !== undefined)
      assert.equal(await readFile(path, 'utf8'), expected.content, expected.path);
    if (expected.mode !== undefined) assert.equal(info.mode & 0o7777, expected.mode, expected.path);
    if (expected.uid !== undefined) assert.equal(info.uid, expected.uid, expected.path);
    if (expected.linkTarget !== undefined)
      assert.equal(await readlink(path), expected.linkTarget, expected.path);
  }
}

async function unpackLayers(snapshotter: Snapshotter, layout: Layout): Promise<string[]> {
  const chain: string[] = [];
  for (const layer of layout.layers) {
    const applied = await applyLayer(snapshotter, createReadStream(layer.path), chain.at(-1), {
      mediaType: layer.mediaType,
      diffId: layer.diffId,
    });
    assert.equal(applied.reused, false);
    chain.push(applied.chainId);
  }
  return chain;
}

for (const driver of ['overlayfs', 'copy'] as SnapshotDriverName[]) {
  test(`${driver}: the layers fixture unpacks to what umoci unpacks`, async (t) => {
    const sandbox = await createSandbox(t);
    const fixture = await ensureFixture('layers');
    const layout = await readLayout(fixture.ociLayout);
    const snapshotter = await openSnapshotter(sandbox.dataRoot, driver);
    const chain = await unpackLayers(snapshotter, layout);

    // Unpacked once: applying the same image again reuses every snapshot without reading it.
    let parent: string | undefined;
    for (const layer of layout.layers) {
      const again = await applyLayer(snapshotter, createReadStream(layer.path), parent, {
        diffId: layer.diffId,
      });
      assert.equal(again.reused, true);
      parent = again.chainId;
    }
    assert.equal(parent, chain.at(-1));

    const mounts = await snapshotter.prepare('container', chain.at(-1));
    const rootfs = join(sandbox.root, 'rootfs');
    await mkdir(rootfs);
    await mountAll(mounts, rootfs);
    t.after(() => unmount(rootfs).catch(() => undefined));
    await checkExpected(rootfs);
    assert.equal(await execOk(join(rootfs, 'bin/busybox'), ['echo', 'works']), 'works\n');

    const bundle = join(sandbox.root, 'umoci');
    await execOk('umoci', ['unpack', '--image', `${fixture.ociLayout}:latest`, bundle]);
    const ours = await treeFacts(rootfs);
    const theirs = await treeFacts(join(bundle, 'rootfs'));
    assert.deepEqual(ours.lines, theirs.lines);
    assert.deepEqual(ours.hardlinks, theirs.hardlinks);
    assert.deepEqual(ours.hardlinks, ['data/hardlink-copy.txt = data/hardlink-source.txt']);

    // A write in the container lands in its own snapshot, not in the shared layers.
    await execOk(join(rootfs, 'bin/busybox'), ['sh', '-c', `echo changed > ${join(rootfs, 'data/a.txt')}`]);
    const usage = await snapshotter.usage('container');
    assert.ok(usage.inodes >= 1 && usage.size > 0);
    const view = await snapshotter.view('check', chain.at(-1));
    const viewTarget = join(sandbox.root, 'view');
    await mkdir(viewTarget);
    await mountAll(view, viewTarget);
    assert.equal(await readFile(join(viewTarget, 'data/a.txt'), 'utf8'), 'second version of a\n');
    await assert.rejects(execOk('touch', [join(viewTarget, 'data/new')]), /Read-only file system/);
    await unmount(viewTarget);

    await assert.rejects(snapshotter.remove('container'), { kind: 'conflict', message: /still mounted/ });
    await unmount(rootfs);
    await snapshotter.remove('container');
    await assert.rejects(snapshotter.stat('container'), { kind: 'not-found' });
  });
}

test('overlayfs: usage of a layer, and snapshots that survive a restart', async (t) => {
  const sandbox = await createSandbox(t);
  const fixture = await ensureFixture('layers');
  const layout = await readLayout(fixture.ociLayout);
  const first = await openSnapshotter(sandbox.dataRoot);
  const chain = await unpackLayers(first, layout);
  const busybox = await stat('/bin/busybox');
  const base = await first.usage(chain[0] ?? '');
  assert.ok(base.size >= busybox.size, `usage ${base.size} includes busybox (${busybox.size} bytes)`);
  assert.ok(base.inodes > 100, 'one inode per applet link, directory and file');
  await first.prepare('container', chain.at(-1));

  const second = await openSnapshotter(sandbox.dataRoot);
  for (const name of [...chain, 'container'])
    assert.deepEqual(await second.stat(name), await first.stat(name));
  const rootfs = join(sandbox.root, 'rootfs');
  await mkdir(rootfs);
  await mountAll(await second.mounts('container'), rootfs);
  t.after(() => unmount(rootfs).catch(() => undefined));
  await checkExpected(rootfs);
});

test('overlayfs: a 130-layer chain mounts through shortened lowerdirs', async (t) => {
  const sandbox = await createSandbox(t);
  const snapshotter = await openSnapshotter(sandbox.dataRoot);
  let parent: string | undefined;
  const count = 130;
  for (let i = 0; i < count; i++) {
    const layer = tarArchive([
      { path: `layer-${i}`, type: 'file', mode: 0o644, content: Buffer.from(`from layer ${i}\n`) },
    ]);
    parent = (
      await applyLayer(
        snapshotter,
        (async function* () {
          yield layer;
        })(),
        parent,
      )
    ).chainId;
  }
  const mounts: Mount[] = await snapshotter.prepare('container', parent);
  const [overlay] = mounts;
  const lowerdir = overlay?.options.find((option) => option.startsWith('lowerdir=')) ?? '';
  assert.equal(lowerdir.split(':').length, count);
  assert.ok(
    overlay !== undefined && overlay.options.join(',').length > MOUNT_DATA_LIMIT,
    'too long for one mount(2) call as it is',
  );
  const rootfs = join(sandbox.root, 'rootfs');
  await mkdir(rootfs);
  await mountAll(mounts, rootfs);
  t.after(() => unmount(rootfs).catch(() => undefined));
  assert.equal(await readFile(join(rootfs, 'layer-0'), 'utf8'), 'from layer 0\n');
  assert.equal(await readFile(join(rootfs, `layer-${count - 1}`), 'utf8'), `from layer ${count - 1}\n`);
  assert.equal((await readdir(rootfs)).length, count);

  const view = await snapshotter.view('view', parent);
  const viewTarget = join(sandbox.root, 'view');
  await mkdir(viewTarget);
  await mountAll(view, viewTarget);
  t.after(() => unmount(viewTarget).catch(() => undefined));
  assert.equal((await readdir(viewTarget)).length, count);
});
