import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { applyTar, type ApplyOptions } from '../../src/archive/apply.js';
import { ByteSource } from '../../src/archive/byte-source.js';
import { diffOverlayUpper } from '../../src/archive/diff.js';
import { readTar } from '../../src/archive/tar-reader.js';
import { tarArchive, type TarEntry } from '../../src/archive/tar-writer.js';
import { mountAll, unmount } from '../../src/snapshot/mount.js';
import { OVERLAY_OPTIONS } from '../../src/snapshot/overlay.js';
import { execOk } from '../helpers/exec.js';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';

const T = 1_650_000_000;
const dir = (path: string, mode = 0o755, uid = 0, gid = 0): TarEntry => ({
  path,
  type: 'directory',
  mode,
  uid,
  gid,
  mtime: T,
});
const file = (path: string, content = path, mode = 0o644, uid = 0, gid = 0): TarEntry => ({
  path,
  type: 'file',
  mode,
  uid,
  gid,
  mtime: T,
  content: Buffer.from(content),
});
const link = (path: string, target: string): TarEntry => ({
  path,
  type: 'symlink',
  mode: 0o777,
  linkTarget: target,
  mtime: T,
});
const hard = (path: string, target: string): TarEntry => ({
  path,
  type: 'hardlink',
  mode: 0o644,
  linkTarget: target,
});

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

const apply = (entries: TarEntry[], root: string, options: ApplyOptions) =>
  applyTar(once(tarArchive(entries)), root, options);

/** Every xattr of each path, read by python3 (Node.js has no xattr API), values in base64. */
async function xattrsOf(paths: string[]): Promise<Record<string, string>[]> {
  const script = [
    'import base64, json, os, sys',
    'out = []',
    'for p in json.load(sys.stdin):',
    '    out.append({n: base64.b64encode(os.getxattr(p, n, follow_symlinks=False)).decode() for n in os.listxattr(p, follow_symlinks=False)})',
    'print(json.dumps(out))',
  ].join('\n');
  return JSON.parse(await execOk('python3', ['-c', script], { input: JSON.stringify(paths) })) as Record<
    string,
    string
  >[];
}

/** A comparable description of a tree: one line per path (root excluded), xattrs included. */
async function describe(root: string, withTimes = true): Promise<string[]> {
  const paths: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    for (const name of (await readdir(join(root, relative))).sort()) {
      const path = relative === '' ? name : `${relative}/${name}`;
      paths.push(path);
      if ((await lstat(join(root, path))).isDirectory()) await walk(path);
    }
  };
  await walk('');
  const xattrs = await xattrsOf(paths.map((path) => join(root, path)));
  const lines: string[] = [];
  for (const [index, path] of paths.entries()) {
    const full = join(root, path);
    const stat = await lstat(full);
    let detail = '';
    if (stat.isFile())
      detail = createHash('sha256')
        .update(await readFile(full))
        .digest('hex')
        .slice(0, 16);
    else if (stat.isSymbolicLink()) detail = `-> ${await readlink(full)}`;
    else if (stat.isCharacterDevice() || stat.isBlockDevice()) detail = `dev ${stat.rdev}`;
    const time = withTimes && !stat.isSymbolicLink() ? ` t=${Math.floor(stat.mtimeMs / 1000)}` : '';
    lines.push(
      `${path} ${stat.mode.toString(8)} ${stat.uid}:${stat.gid} n=${stat.isDirectory() ? '-' : stat.nlink}${time} ${detail} ${JSON.stringify(xattrs[index])}`,
    );
  }
  return lines;
}

async function overlay(sandbox: Sandbox, name: string, lowers: string[], upper: string): Promise<string> {
  const work = join(sandbox.root, `${name}-work`);
  const target = join(sandbox.root, `${name}-merged`);
  await mkdir(work);
  await mkdir(target);
  await mountAll(
    [
      {
        type: 'overlay',
        source: 'overlay',
        options: [...OVERLAY_OPTIONS, `lowerdir=${lowers.join(':')}`, `upperdir=${upper}`, `workdir=${work}`],
      },
    ],
    target,
  );
  return target;
}

const lowerLayer: TarEntry[] = [
  dir('usr'),
  dir('usr/lib', 0o750),
  link('lib', 'usr/lib'),
  dir('etc'),
  file('etc/passwd', 'root:x:0:0\n'),
  file('etc/shadow', 'root:*:1::::::\n', 0o600),
  dir('data'),
  dir('data/dir'),
  file('data/dir/old'),
  dir('data/dir/old-sub'),
  file('data/dir/old-sub/deep'),
  file('data/file'),
  dir('srv', 0o700),
  file('srv/old'),
];

const upperLayer: TarEntry[] = [
  file('lib/extra.so', 'a library through the lower symlink'),
  file('etc/.wh.shadow'),
  file('data/dir/.wh..wh..opq'),
  file('data/dir/new'),
  hard('etc/passwd-link', 'etc/passwd'),
  file('.wh.srv'),
  dir('srv', 0o755),
  file('srv/fresh'),
  file('data/.wh.file'),
];

test('overlay mode: the mounted result equals flat mode, with whiteout devices, opaque xattrs and copy-up', async (t) => {
  const sandbox = await createSandbox(t);
  const lower = join(sandbox.root, 'lower');
  const upper = join(sandbox.root, 'upper');
  const flat = join(sandbox.root, 'flat');
  await Promise.all([mkdir(lower), mkdir(upper), mkdir(flat)]);
  await apply(lowerLayer, lower, { mode: 'flat' });
  await apply(upperLayer, upper, { mode: 'overlay', lowers: [lower] });
  await apply(lowerLayer, flat, { mode: 'flat' });
  await apply(upperLayer, flat, { mode: 'flat' });

  // The upper directory holds what the kernel expects.
  const shadow = await lstat(join(upper, 'etc/shadow'));
  assert.ok(shadow.isCharacterDevice() && shadow.rdev === 0, 'whiteout is a 0/0 character device');
  const [opaque, srv] = await xattrsOf([join(upper, 'data/dir'), join(upper, 'srv')]);
  assert.equal(opaque?.['trusted.overlay.opaque'], Buffer.from('y').toString('base64'));
  assert.equal(
    srv?.['trusted.overlay.opaque'],
    Buffer.from('y').toString('base64'),
    'a directory re-created after its whiteout is opaque',
  );
  assert.equal(
    (await lstat(join(upper, 'usr/lib'))).mode & 0o7777,
    0o750,
    'copied-up parent keeps the lower mode',
  );
  assert.equal((await lstat(join(upper, 'usr/lib'))).mtimeMs, T * 1000, 'and the lower mtime');
  assert.equal(
    (await lstat(join(upper, 'etc/passwd'))).ino,
    (await lstat(join(upper, 'etc/passwd-link'))).ino,
  );

  const merged = await overlay(sandbox, 'o', [lower], upper);
  t.after(() => unmount(merged).catch(() => undefined));
  assert.deepEqual(await describe(merged, false), await describe(flat, false));
  assert.deepEqual((await readdir(join(merged, 'data/dir'))).sort(), ['new']);
  assert.deepEqual(await readdir(join(merged, 'srv')), ['fresh']);
  assert.equal(
    await readFile(join(merged, 'usr/lib/extra.so'), 'utf8'),
    'a library through the lower symlink',
  );
});

test('devices, owners, setuid after chown, binary security.capability and other xattrs, uid mapping', async (t) => {
  const sandbox = await createSandbox(t);
  const root = join(sandbox.root, 'root');
  await mkdir(root);
  // VFS_CAP_REVISION_2 with the effective flag, permitted = CAP_NET_BIND_SERVICE (bit 10).
  const capability = Buffer.from([
    0x01,
    0x00,
    0x00,
    0x02,
    0x00,
    0x04,
    0x00,
    0x00,
    ...Array<number>(12).fill(0),
  ]);
  const entries: TarEntry[] = [
    dir('dev'),
    { path: 'dev/null', type: 'char', mode: 0o666, devMajor: 1, devMinor: 3, mtime: T },
    { path: 'dev/loop9', type: 'block', mode: 0o660, gid: 6, devMajor: 7, devMinor: 9, mtime: T },
    { path: 'dev/pipe', type: 'fifo', mode: 0o620, uid: 1000, gid: 5, mtime: T },
    dir('home/user', 0o750, 1000, 1000),
    file('home/user/tool', '#!/bin/sh\n', 0o6755, 1000, 1000),
    {
      ...file('bin/ping', 'ping', 0o755),
      xattrs: { 'security.capability': capability, 'user.note': 'hello' },
    },
    { ...dir('secure', 0o700), xattrs: { 'trusted.berth': 'dir-xattr' } },
    link('home/user/link', '/nowhere'),
  ];
  const result = await apply(entries, root, { mode: 'flat', allowDevices: true });
  assert.deepEqual(result.skipped, []);
  const devNull = await lstat(join(root, 'dev/null'));
  assert.ok(devNull.isCharacterDevice());
  assert.equal(devNull.rdev, (1 << 8) | 3);
  assert.equal(devNull.mode & 0o7777, 0o666);
  const loop = await lstat(join(root, 'dev/loop9'));
  assert.ok(loop.isBlockDevice());
  assert.equal(loop.rdev, (7 << 8) | 9);
  assert.equal(loop.gid, 6);
  assert.ok((await lstat(join(root, 'dev/pipe'))).isFIFO());
  assert.equal((await lstat(join(root, 'dev/pipe'))).uid, 1000);
  const tool = await lstat(join(root, 'home/user/tool'));
  assert.deepEqual([tool.uid, tool.gid, tool.mode & 0o7777], [1000, 1000, 0o6755]);
  const home = await lstat(join(root, 'home/user'));
  assert.deepEqual([home.uid, home.mode & 0o7777, home.mtimeMs], [1000, 0o750, T * 1000]);
  const [ping, secure] = await xattrsOf([join(root, 'bin/ping'), join(root, 'secure')]);
  assert.equal(ping?.['security.capability'], capability.toString('base64'));
  assert.equal(ping?.['user.note'], Buffer.from('hello').toString('base64'));
  assert.equal(secure?.['trusted.berth'], Buffer.from('dir-xattr').toString('base64'));
  assert.equal(
    (await lstat(join(root, 'home/user/link'))).mtimeMs,
    T * 1000,
    'lutimes on the symlink itself',
  );

  const mapped = join(sandbox.root, 'mapped');
  await mkdir(mapped);
  await apply(entries, mapped, {
    mode: 'flat',
    allowDevices: true,
    idMap: {
      uids: [{ containerID: 0, hostID: 100_000, size: 65_536 }],
      gids: [{ containerID: 0, hostID: 100_000, size: 65_536 }],
    },
  });
  const shifted = await lstat(join(mapped, 'home/user/tool'));
  assert.deepEqual([shifted.uid, shifted.gid, shifted.mode & 0o7777], [101_000, 101_000, 0o6755]);
  assert.equal((await lstat(join(mapped, 'bin/ping'))).uid, 100_000);
  assert.equal((await lstat(join(mapped, 'home/user/link'))).uid, 100_000, 'lchown on the symlink itself');
});

test('hostile layers in overlay mode cannot reach outside through lower-layer symlinks', async (t) => {
  const sandbox = await createSandbox(t);
  const sentinel = join(sandbox.root, 'sentinel');
  await mkdir(join(sentinel, 'sub'), { recursive: true });
  await writeFile(join(sentinel, 'passwd'), 'precious');
  const snapshot = async (): Promise<string[]> => describe(sentinel);
  const before = await snapshot();
  const lower = join(sandbox.root, 'lower');
  await mkdir(lower);
  await apply([link('etc', sentinel), link('up', '../../../..'), dir('real')], lower, { mode: 'flat' });

  const attempts: Array<{ entries: TarEntry[]; refused?: RegExp }> = [
    { entries: [file('etc/passwd', 'owned'), dir('etc/sub', 0o777)] },
    { entries: [file('etc/.wh.passwd'), file('etc/sub/.wh..wh..opq'), file('up/.wh.sentinel')] },
    { entries: [hard('real/h', 'etc/passwd')], refused: /does not exist/ },
    { entries: [hard('real/h', `${sentinel}/passwd`)], refused: /does not exist/ },
    { entries: [hard('real/h', '../sentinel/passwd')], refused: /climbs above the root/ },
    {
      entries: [{ path: 'real/kmem', type: 'char', mode: 0o600, devMajor: 1, devMinor: 2 }],
      refused: /not allowed/,
    },
    { entries: [dir('etc', 0o777), file('etc/passwd', 'owned')] },
  ];
  for (const [index, { entries, refused }] of attempts.entries()) {
    const upper = join(sandbox.root, `upper-${index}`);
    await mkdir(upper);
    const applying = apply(entries, upper, { mode: 'overlay', lowers: [lower] });
    if (refused) await assert.rejects(applying, { kind: 'invalid-argument', message: refused });
    else await applying;
    const merged = await overlay(sandbox, `m${index}`, [lower], upper);
    // Reading through the mount shows what the layer wrote, inside the root.
    const seen = await readdir(merged);
    await unmount(merged);
    assert.ok(seen.includes('real'), `attempt ${index}`);
    assert.deepEqual(await snapshot(), before, `attempt ${index} left the sentinel alone`);
  }
  assert.equal(await readFile(join(sandbox.root, 'upper-0', sentinel, 'passwd'), 'utf8'), 'owned');
});

test('the diff of a used overlay recreates it: whiteouts, opaque directories, copied-up files', async (t) => {
  const sandbox = await createSandbox(t);
  const lower = join(sandbox.root, 'lower');
  const upper = join(sandbox.root, 'upper');
  await Promise.all([mkdir(lower), mkdir(upper)]);
  await apply(lowerLayer, lower, { mode: 'flat' });
  const merged = await overlay(sandbox, 'used', [lower], upper);
  t.after(() => unmount(merged).catch(() => undefined));
  // What a container might do.
  await rm(join(merged, 'etc/shadow'));
  await rm(join(merged, 'data/dir'), { recursive: true });
  await mkdir(join(merged, 'data/dir'));
  await writeFile(join(merged, 'data/dir/fresh'), 'fresh');
  await writeFile(join(merged, 'etc/passwd'), 'root:x:0:0:changed\n');
  await symlink('passwd', join(merged, 'etc/alias'));
  await writeFile(join(merged, 'new-file'), 'new');

  const parts: Buffer[] = [];
  for await (const chunk of diffOverlayUpper(upper)) parts.push(chunk);
  const tar = Buffer.concat(parts);
  const names: string[] = [];
  for await (const { header } of readTar(new ByteSource(once(tar)))) names.push(header.path);
  assert.ok(names.includes('etc/.wh.shadow'), names.join(' '));
  assert.ok(names.includes('data/dir/.wh..wh..opq'), names.join(' '));
  assert.ok(names.includes('etc/passwd'));
  assert.ok(!names.includes('usr/lib/'), 'untouched lower content is not in the diff');

  // Applied on the same lower, in either mode, the diff gives what the container saw.
  const replay = join(sandbox.root, 'replay');
  await mkdir(replay);
  await applyTar(once(tar), replay, { mode: 'overlay', lowers: [lower] });
  const replayed = await overlay(sandbox, 'replayed', [lower], replay);
  t.after(() => unmount(replayed).catch(() => undefined));
  assert.deepEqual(await describe(replayed, false), await describe(merged, false));
  const flat = join(sandbox.root, 'flat');
  await mkdir(flat);
  await apply(lowerLayer, flat, { mode: 'flat' });
  await applyTar(once(tar), flat, { mode: 'flat' });
  assert.deepEqual(await describe(flat, false), await describe(merged, false));
});
