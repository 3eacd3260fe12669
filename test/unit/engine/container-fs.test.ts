/** Path resolution inside a container's tree, stat, archives out and in, and overlay changes, on temporary directories. */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ByteSource } from '../../../src/archive/byte-source.js';
import { readTar } from '../../../src/archive/tar-reader.js';
import { tarArchive, type TarEntry } from '../../../src/archive/tar-writer.js';
import {
  ChangeKind,
  RootView,
  archivePath,
  extractArchive,
  goFileMode,
  overlayChanges,
  statPath,
  type FsMount,
} from '../../../src/engine/container-fs.js';
import { rejectsMessage } from './assert-message.js';

const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-cfs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A container root with a symlink to an absolute host path and one that climbs with `..`. */
async function fixture(t: TestContext): Promise<{ root: string; outside: string; volume: string }> {
  const base = await tempDir(t);
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  const volume = join(base, 'volume');
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'data'));
  await mkdir(join(root, outside), { recursive: true });
  await mkdir(outside);
  await mkdir(volume);
  await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0\n');
  await writeFile(join(outside, 'host-secret'), 'secret\n');
  await writeFile(join(root, outside, 'inside'), 'inside\n');
  await writeFile(join(volume, 'v.txt'), 'volume\n');
  await symlink(outside, join(root, 'abs'));
  await symlink('../../../../../../..' + outside, join(root, 'etc', 'rel'));
  await symlink('passwd', join(root, 'etc', 'pw'));
  return { root, outside, volume };
}

async function withView<T>(root: string, mounts: FsMount[], fn: (view: RootView) => Promise<T>): Promise<T> {
  const view = await RootView.open(root, mounts);
  try {
    return await fn(view);
  } finally {
    await view.close();
  }
}

async function entriesOf(tar: AsyncIterable<Buffer>): Promise<Map<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of tar) chunks.push(chunk);
  const entries = new Map<string, string>();
  for await (const { header, body } of readTar(new ByteSource(Readable.from([Buffer.concat(chunks)])))) {
    const parts: Buffer[] = [];
    for await (const part of body) parts.push(part);
    entries.set(header.path, header.type === 'file' ? Buffer.concat(parts).toString() : header.type);
  }
  return entries;
}

const archiveOf = (entries: TarEntry[]): AsyncIterable<Uint8Array> => Readable.from([tarArchive(entries)]);
const file = (path: string, content: string, mode = 0o644): TarEntry => ({
  path,
  type: 'file',
  mode,
  uid,
  gid,
  content: Buffer.from(content),
});

test('symlinks resolve inside the root: absolute targets restart there, .. stops there', async (t) => {
  const { root, outside } = await fixture(t);
  await withView(root, [], async (view) => {
    for (const path of ['/abs', '/etc/rel', '/etc/rel/.', '/etc/../../../abs/']) {
      const components = await view.resolve(
        path.endsWith('/') ? path : `${path}/`,
        true,
        async (r) => r.components,
      );
      assert.deepEqual(components, outside.split('/').filter(Boolean), path);
    }
    const names = await view.resolve('/abs/', true, async (r) => readdir(r.hostPath));
    assert.deepEqual(names, ['inside'], 'the container directory, not the host one');
    await rejectsMessage(
      view.resolve('/no/such', false, async () => undefined),
      /Could not find the file \/no\/such/,
    );
    await rejectsMessage(
      view.resolve('/etc/passwd/x', false, async () => undefined),
      /not a directory/,
    );
  });
});

test('statPath: Go file modes, the base name, symlink targets resolved in the container', async (t) => {
  const { root, outside } = await fixture(t);
  await withView(root, [], async (view) => {
    const passwd = await statPath(view, '/etc/passwd');
    assert.equal(passwd.name, 'passwd');
    assert.equal(passwd.size, 11);
    assert.equal(passwd.mode, (await lstat(join(root, 'etc', 'passwd'))).mode & 0o777);
    const dir = await statPath(view, '/etc');
    assert.equal(dir.mode >>> 31, 1, 'ModeDir');
    const link = await statPath(view, '/etc/pw');
    assert.notEqual(link.mode & (2 ** 27), 0, 'ModeSymlink');
    assert.equal(link.linkTarget, '/etc/passwd');
    assert.equal((await statPath(view, '/etc/rel')).linkTarget, outside);
    await symlink('../gone', join(root, 'etc', 'dangling'));
    assert.equal((await statPath(view, '/etc/dangling')).linkTarget, '/gone');
    assert.equal((await statPath(view, '/')).name, '/');
    assert.equal((await statPath(view, '/etc/.')).name, '.');
  });
  const stats = await lstat(root);
  assert.equal(goFileMode(stats), (2 ** 31 + (stats.mode & 0o777)) >>> 0);
});

test('archivePath names entries from the base name and descends into mounts', async (t) => {
  const { root, volume } = await fixture(t);
  await mkdir(join(root, 'data', 'mnt'));
  await writeFile(join(root, 'data', 'mnt', 'hidden'), 'under the mount\n');
  await withView(root, [{ destination: '/data/mnt', source: volume, readOnly: false }], async (view) => {
    let entries = new Map<string, string>();
    await archivePath(view, '/data', async (stat, tar) => {
      assert.equal(stat.name, 'data');
      entries = await entriesOf(tar);
    });
    assert.deepEqual([...entries.keys()], ['data/', 'data/mnt/', 'data/mnt/v.txt']);
    assert.equal(entries.get('data/mnt/v.txt'), 'volume\n');
    await archivePath(view, '/etc/.', async (_stat, tar) => {
      entries = await entriesOf(tar);
    });
    assert.equal(entries.get('./passwd'), 'root:x:0:0\n');
    assert.equal(entries.get('./pw'), 'symlink');
    await archivePath(view, '/abs/', async (_stat, tar) => {
      entries = await entriesOf(tar);
    });
    assert.deepEqual([...entries.keys()].sort(), ['abs/', 'abs/inside'], 'never the host directory');
  });
});

test('extractArchive writes inside the root through symlinks that point out of it', async (t) => {
  const { root, outside } = await fixture(t);
  const options = { noOverwriteDirNonDir: true, readOnlyRootfs: false };
  await withView(root, [], async (view) => {
    await extractArchive(view, '/abs', archiveOf([file('a.txt', 'A\n')]), options);
    await extractArchive(view, '/etc/rel', archiveOf([file('b.txt', 'B\n')]), options);
    await extractArchive(view, '/', archiveOf([file('abs/c.txt', 'C\n')]), options);
  });
  assert.deepEqual(await readdir(outside), ['host-secret'], 'nothing written on the host');
  assert.deepEqual((await readdir(join(root, outside))).sort(), ['a.txt', 'b.txt', 'c.txt', 'inside']);
  assert.equal(await readFile(join(root, outside, 'a.txt'), 'utf8'), 'A\n');
});

test('extractArchive refuses what Docker refuses and what would leave the target', async (t) => {
  const { root, volume } = await fixture(t);
  const options = { noOverwriteDirNonDir: true, readOnlyRootfs: false };
  const mounts = [
    { destination: '/data/vol', source: volume, readOnly: false },
    { destination: '/data/ro', source: volume, readOnly: true },
  ];
  await mkdir(join(root, 'data', 'vol'));
  await withView(root, mounts, async (view) => {
    await rejectsMessage(extractArchive(view, '/etc', archiveOf([file('passwd/x', 'x')]), options), /passwd/);
    await rejectsMessage(
      extractArchive(view, '/', archiveOf([file('etc', 'not a dir')]), options),
      /cannot overwrite directory "etc" with non-directory/,
    );
    await rejectsMessage(
      extractArchive(view, '/etc', archiveOf([{ path: 'passwd', type: 'directory', mode: 0o755 }]), options),
      /cannot overwrite non-directory "passwd" with directory/,
    );
    await rejectsMessage(
      extractArchive(view, '/missing', archiveOf([file('x', 'x')]), options),
      /Could not find/,
    );
    await rejectsMessage(
      extractArchive(view, '/etc/passwd', archiveOf([file('x', 'x')]), options),
      /extraction point \/etc\/passwd is not a directory/,
    );
    await rejectsMessage(
      extractArchive(view, '/etc', archiveOf([file('../../x', 'x')]), options),
      /climbs above the root/,
    );
    await rejectsMessage(
      extractArchive(view, '/etc', archiveOf([file('.wh.passwd', '')]), options),
      /whiteouts/,
    );
    await rejectsMessage(
      extractArchive(view, '/data', archiveOf([file('vol/x', 'x')]), options),
      /lies in \/data\/vol, a different mount than \/data/,
    );
    await rejectsMessage(
      extractArchive(view, '/data/ro', archiveOf([file('x', 'x')]), options),
      /mounted volume is marked read-only: \/data\/ro/,
    );
    await rejectsMessage(
      extractArchive(view, '/etc', archiveOf([file('x', 'x')]), { ...options, readOnlyRootfs: true }),
      /container rootfs is marked read-only/,
    );
    await extractArchive(view, '/data/vol', archiveOf([file('in-volume.txt', 'V\n')]), options);
  });
  assert.equal(await readFile(join(volume, 'in-volume.txt'), 'utf8'), 'V\n');
  assert.deepEqual(await readdir(join(root, 'data', 'vol')), [], 'the rootfs under the mount is untouched');
  assert.equal(await readlink(join(root, 'etc', 'pw')), 'passwd');
});

test('overlayChanges: added, modified, deleted (opaque), parents, engine mount points ignored', async (t) => {
  const base = await tempDir(t);
  const lower = join(base, 'lower');
  const upper = join(base, 'upper');
  await mkdir(join(lower, 'etc'), { recursive: true });
  await mkdir(join(lower, 'opt', 'old'), { recursive: true });
  await writeFile(join(lower, 'etc', 'passwd'), 'a\n');
  await mkdir(join(upper, 'etc'), { recursive: true });
  await mkdir(join(upper, 'opt', 'old'), { recursive: true });
  await mkdir(join(upper, 'new', 'deep'), { recursive: true });
  await mkdir(join(upper, 'proc'));
  await writeFile(join(upper, 'etc', 'passwd'), 'b\n');
  await writeFile(join(upper, 'etc', 'hosts'), '');
  await writeFile(join(upper, 'new', 'deep', 'f'), 'f\n');
  await writeFile(join(upper, 'opt', 'old', 'fresh'), 'x\n');
  const opaque = new Set([join(upper, 'opt', 'old')]);
  const changes = await overlayChanges(upper, [lower], new Set(['/proc', '/etc/hosts']), async (path) =>
    opaque.has(path),
  );
  assert.deepEqual(changes, [
    { Path: '/etc', Kind: ChangeKind.Modified },
    { Path: '/etc/passwd', Kind: ChangeKind.Modified },
    { Path: '/new', Kind: ChangeKind.Added },
    { Path: '/new/deep', Kind: ChangeKind.Added },
    { Path: '/new/deep/f', Kind: ChangeKind.Added },
    { Path: '/opt', Kind: ChangeKind.Modified },
    { Path: '/opt/old', Kind: ChangeKind.Deleted },
    { Path: '/opt/old/fresh', Kind: ChangeKind.Added },
  ]);
});
