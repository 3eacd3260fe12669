import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  realpath,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { tarArchive, type TarEntry } from '../../../src/archive/tar-writer.js';
import { applyLayer, chainId } from '../../../src/snapshot/apply-layer.js';
import { CopySnapshotter } from '../../../src/snapshot/copy.js';
import { MOUNT_DATA_LIMIT, overlayMountData } from '../../../src/snapshot/mount.js';
import { openSnapshotter } from '../../../src/snapshot/open.js';
import { OverlaySnapshotter } from '../../../src/snapshot/overlay.js';
import type { Mount, SnapshotInfo, Snapshotter } from '../../../src/snapshot/snapshotter.js';

async function tempRoot(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'berth-snap-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return root;
}

const option = (mount: Mount | undefined, name: string): string | undefined =>
  mount?.options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

const file = (path: string, content: string): TarEntry => ({
  path,
  type: 'file',
  mode: 0o644,
  content: Buffer.from(content),
});

async function names(snapshotter: Snapshotter): Promise<SnapshotInfo[]> {
  const all: SnapshotInfo[] = [];
  await snapshotter.walk((info) => {
    all.push(info);
  });
  return all.sort((a, b) => (a.name < b.name ? -1 : 1));
}

test('overlay snapshots: prepare, commit, view and their mounts', async (t) => {
  const root = await tempRoot(t);
  const snapshotter = await OverlaySnapshotter.open(root);
  const [base] = await snapshotter.prepare('base-key');
  assert.equal(base?.type, 'bind');
  assert.deepEqual(base?.options, ['rbind', 'rw']);
  const baseFs = base?.source ?? '';
  assert.match(baseFs, new RegExp(`^${root}/snapshots/[0-9a-f]{16}/fs$`));
  await writeFile(join(baseFs, 'hello'), 'world');
  await snapshotter.commit('layer-1', 'base-key');
  await assert.rejects(snapshotter.stat('base-key'), { kind: 'not-found' });

  await snapshotter.prepare('second', 'layer-1');
  await snapshotter.commit('layer-2', 'second');
  const [mount] = await snapshotter.prepare('container', 'layer-2');
  assert.equal(mount?.type, 'overlay');
  const lowers = (option(mount, 'lowerdir') ?? '').split(':');
  assert.equal(lowers.length, 2);
  // Short links under snapshots/l, topmost layer first, each resolving to a layer's fs.
  for (const lower of lowers) assert.equal(dirname(lower), join(root, 'snapshots/l'));
  assert.equal(await realpath(lowers[1] ?? ''), await realpath(baseFs));
  assert.match(option(mount, 'upperdir') ?? '', /\/fs$/);
  assert.match(option(mount, 'workdir') ?? '', /\/work$/);
  assert.ok(mount?.options.includes('redirect_dir=off'));
  assert.deepEqual(await snapshotter.mounts('container'), [mount]);

  const target = await snapshotter.layerTarget('container');
  assert.equal(target.mode, 'overlay');
  assert.equal(target.lowers.length, 2);
  assert.equal(target.lowers[1], baseFs);

  const [single] = await snapshotter.view('one-view', 'layer-1');
  assert.deepEqual(single, { type: 'bind', source: baseFs, options: ['rbind', 'ro'] });
  const [multi] = await snapshotter.view('two-view', 'layer-2');
  assert.equal(multi?.type, 'overlay');
  assert.equal(option(multi, 'upperdir'), undefined);

  assert.deepEqual(
    (await names(snapshotter)).map((info) => [info.name, info.kind, info.parent]),
    [
      ['container', 'active', 'layer-2'],
      ['layer-1', 'committed', undefined],
      ['layer-2', 'committed', 'layer-1'],
      ['one-view', 'view', 'layer-1'],
      ['two-view', 'view', 'layer-2'],
    ],
  );
});

test('snapshot operations refuse what does not make sense', async (t) => {
  const root = await tempRoot(t);
  const snapshotter = await openSnapshotter(root);
  await snapshotter.prepare('a');
  await assert.rejects(snapshotter.prepare('a'), { kind: 'conflict', message: /"a" already exists/ });
  await assert.rejects(snapshotter.prepare('b', 'a'), {
    kind: 'invalid-argument',
    message: /is active, not committed/,
  });
  await assert.rejects(snapshotter.prepare('b', 'missing'), { kind: 'not-found' });
  await assert.rejects(snapshotter.prepare(''), { kind: 'invalid-argument' });
  await snapshotter.commit('committed-a', 'a');
  await assert.rejects(snapshotter.mounts('committed-a'), {
    kind: 'invalid-argument',
    message: /is committed/,
  });
  await assert.rejects(snapshotter.commit('x', 'committed-a'), {
    kind: 'invalid-argument',
    message: /not active/,
  });
  await snapshotter.prepare('child', 'committed-a');
  await assert.rejects(snapshotter.commit('committed-a', 'child'), { kind: 'conflict' });
  await assert.rejects(snapshotter.remove('committed-a'), { kind: 'conflict', message: /parent of "child"/ });
  await assert.rejects(CopySnapshotter.open(root), {
    kind: 'invalid-argument',
    message: /holds overlayfs snapshots/,
  });
  await assert.rejects(OverlaySnapshotter.open('/tmp/a:b'), {
    kind: 'invalid-argument',
    message: /must not contain/,
  });
});

test('remove deletes the record, the directory and the lower link', async (t) => {
  const root = await tempRoot(t);
  const snapshotter = await OverlaySnapshotter.open(root);
  await snapshotter.prepare('k');
  await snapshotter.commit('c', 'k');
  const before = await readdir(join(root, 'snapshots'));
  assert.equal((await readdir(join(root, 'snapshots/l'))).length, 1);
  await snapshotter.remove('c');
  await assert.rejects(snapshotter.stat('c'), { kind: 'not-found' });
  assert.deepEqual(await readdir(join(root, 'snapshots/l')), []);
  assert.equal((await readdir(join(root, 'snapshots'))).length, before.length - 1);
});

test('snapshot records survive a restart; half-made leftovers are cleaned up', async (t) => {
  const root = await tempRoot(t);
  const first = await OverlaySnapshotter.open(root);
  const [base] = await first.prepare('k');
  await writeFile(join(base?.source ?? '', 'data'), 'x'.repeat(10_000));
  await first.commit('layer', 'k');
  await first.prepare('active', 'layer');
  // What a crash could leave: a directory without its record, a link without its snapshot.
  await mkdir(join(root, 'snapshots/0123456789abcdef/fs'), { recursive: true });
  await symlink('../0123456789abcdef/fs', join(root, 'snapshots/l/ORPHANLINK'));

  const second = await OverlaySnapshotter.open(root);
  assert.deepEqual(await names(second), await names(first));
  assert.deepEqual(await second.mounts('active'), await first.mounts('active'));
  const usage = await second.usage('layer');
  assert.ok(usage.size >= 10_000, `usage ${usage.size} counts the file`);
  assert.equal(usage.inodes, 2);
  await assert.rejects(stat(join(root, 'snapshots/0123456789abcdef')), { code: 'ENOENT' });
  assert.equal((await readdir(join(root, 'snapshots/l'))).length, 1);
  const record = JSON.parse(await readFile(join(dirname(base?.source ?? ''), 'info.json'), 'utf8')) as {
    name: string;
  };
  assert.equal(record.name, 'layer');
});

test('copy snapshots copy the parent tree; views mount the parent read-only', async (t) => {
  const root = await tempRoot(t);
  const snapshotter = await openSnapshotter(root, 'copy');
  const [base] = await snapshotter.prepare('k');
  await mkdir(join(base?.source ?? '', 'dir'));
  await writeFile(join(base?.source ?? '', 'dir/file'), 'content');
  await symlink('dir/file', join(base?.source ?? '', 'link'));
  await snapshotter.commit('layer', 'k');
  const [child] = await snapshotter.prepare('child', 'layer');
  assert.equal(child?.type, 'bind');
  assert.notEqual(child?.source, base?.source);
  assert.equal(await readFile(join(child?.source ?? '', 'dir/file'), 'utf8'), 'content');
  assert.equal(await readlink(join(child?.source ?? '', 'link')), 'dir/file');
  assert.deepEqual(await snapshotter.layerTarget('child'), { mode: 'flat', root: child?.source, lowers: [] });
  assert.deepEqual(await snapshotter.view('v', 'layer'), [
    { type: 'bind', source: base?.source, options: ['rbind', 'ro'] },
  ]);
});

test('chain IDs follow the OCI image spec', () => {
  const diffs = ['sha256:' + 'a'.repeat(64), 'sha256:' + 'b'.repeat(64), 'sha256:' + 'c'.repeat(64)];
  const first = chainId(undefined, diffs[0] as string);
  assert.equal(first, diffs[0]);
  const second = chainId(first, diffs[1] as string);
  assert.equal(second, `sha256:${createHash('sha256').update(`${diffs[0]} ${diffs[1]}`).digest('hex')}`);
  assert.notEqual(chainId(second, diffs[2] as string), chainId(first, diffs[2] as string));
});

test('applyLayer commits by chain ID and reuses a chain unpacked before', async (t) => {
  const root = await tempRoot(t);
  const snapshotter = await openSnapshotter(root, 'copy');
  const one = tarArchive([file('one', '1')]);
  const two = tarArchive([file('two', '2')]);
  const first = await applyLayer(snapshotter, once(one), undefined, { preserveOwnership: false });
  assert.equal(first.reused, false);
  assert.equal(first.chainId, first.diffId);
  const second = await applyLayer(snapshotter, once(two), first.chainId, { preserveOwnership: false });
  assert.equal(second.chainId, chainId(first.chainId, second.diffId));

  // Known diff ID: the stream is not even read.
  let read = false;
  const untouched = (async function* () {
    read = true;
    yield two;
  })();
  const again = await applyLayer(snapshotter, untouched, first.chainId, { diffId: second.diffId });
  assert.deepEqual(again, { chainId: second.chainId, diffId: second.diffId, reused: true });
  assert.equal(read, false);
  // Unknown diff ID: unpacked, found to exist, and the extra snapshot removed.
  const third = await applyLayer(snapshotter, once(two), first.chainId, { preserveOwnership: false });
  assert.equal(third.reused, true);
  assert.deepEqual(
    (await names(snapshotter)).map((info) => info.name).sort(),
    [first.chainId, second.chainId].sort(),
  );

  // A diff ID that does not match the content: an error, and nothing left behind.
  await assert.rejects(
    applyLayer(snapshotter, once(tarArchive([file('three', '3')])), second.chainId, {
      diffId: first.diffId,
      preserveOwnership: false,
    }),
    { kind: 'invalid-argument', message: /diff ID/ },
  );
  assert.equal((await names(snapshotter)).length, 2);

  const view = await snapshotter.view('top', second.chainId);
  assert.equal(await readFile(join(view[0]?.source ?? '', 'one'), 'utf8'), '1');
  assert.equal(await readFile(join(view[0]?.source ?? '', 'two'), 'utf8'), '2');
});

test('long overlay options are shortened to relative lowerdirs run from their directory', () => {
  const dir = '/var/lib/berth/snapshots/l';
  const lowers = Array.from({ length: 200 }, (_, i) => `${dir}/${String(i).padStart(10, 'A')}`);
  const mount: Mount = {
    type: 'overlay',
    source: 'overlay',
    options: ['index=off', `lowerdir=${lowers.join(':')}`, 'upperdir=/u', 'workdir=/w'],
  };
  assert.ok(mount.options.join(',').length > MOUNT_DATA_LIMIT);
  const { data, cwd } = overlayMountData(mount);
  assert.equal(cwd, dir);
  assert.ok(data.length < MOUNT_DATA_LIMIT);
  const relative = (data.split(',').find((o) => o.startsWith('lowerdir=')) ?? '').slice(9).split(':');
  assert.deepEqual(
    relative.map((name) => resolve(dir, name)),
    lowers,
  );
  // Short enough already: unchanged, no working directory.
  const short: Mount = { ...mount, options: ['lowerdir=/a:/b', 'upperdir=/u', 'workdir=/w'] };
  assert.deepEqual(overlayMountData(short), { data: 'lowerdir=/a:/b,upperdir=/u,workdir=/w' });
  assert.throws(() => overlayMountData({ ...mount, options: [`lowerdir=/x/a:${lowers.join(':')}`] }), {
    kind: 'invalid-argument',
    message: /do not share one parent/,
  });
  const tooMany = Array.from({ length: 600 }, (_, i) => `${dir}/${String(i).padStart(10, 'A')}`);
  assert.throws(() => overlayMountData({ ...mount, options: [`lowerdir=${tooMany.join(':')}`] }), {
    message: /even with relative paths/,
  });
});
