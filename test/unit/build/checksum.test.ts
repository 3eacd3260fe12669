import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  downloadName,
  downloadSum,
  OwnerNames,
  SourceHasher,
  sourcesHash,
  tarsumHash,
} from '../../../src/build/checksum.js';
import { unpackContext } from '../../../src/build/context.js';
import { packContext } from '../../../src/build/context-tar.js';

// Every expected hash below was written by dockerd 20.10.24 (Debian's docker.io, classic builder,
// DOCKER_BUILDKIT=0) for the same files, the context sent by the docker CLI 28.

const asRoot = process.getuid?.() === 0 ? false : 'needs root to give files other owners';

const DOCKERFILE =
  'FROM busybox\nCOPY a.txt /t/\nCOPY link.txt /t/\nCOPY dir /t/dir\nCOPY linkdir /t/ld\n' +
  'COPY *.conf /t/conf/\nCOPY h1 /t/\nCOPY h2 /t/\nCOPY suid /t/\nCOPY empty /t/empty\n' +
  'COPY a.txt dir /t/m/\nCOPY . /t/all\n' +
  'HEALTHCHECK --interval=90s --timeout=1500ms --retries=65 CMD echo "hi there"\n' +
  'HEALTHCHECK NONE\nHEALTHCHECK CMD ["a","b\\tc"]\n';

async function file(path: string, content: string, mode: number): Promise<void> {
  await writeFile(path, content);
  await chmod(path, mode);
}

/** The context dockerd hashed: files, a symlink to a file and to a directory, a hardlink, setuid, an empty dir. */
async function makeContext(dir: string): Promise<void> {
  await mkdir(join(dir, 'dir', 'sub'), { recursive: true });
  await mkdir(join(dir, 'empty'));
  for (const sub of ['dir', 'dir/sub', 'empty']) await chmod(join(dir, sub), 0o755);
  await file(join(dir, 'Dockerfile'), DOCKERFILE, 0o644);
  await file(join(dir, 'a.txt'), 'hello\n', 0o640);
  await file(join(dir, 'b.conf'), 'world\n', 0o644);
  await file(join(dir, 'c.conf'), 'c\n', 0o644);
  await file(join(dir, 'dir', 'sub', 'f'), 'sub\n', 0o644);
  await file(join(dir, 'dir', 'x'), 'x\n', 0o644);
  await symlink('a.txt', join(dir, 'link.txt'));
  await symlink('dir', join(dir, 'linkdir'));
  await file(join(dir, 'h1'), 'hl\n', 0o644);
  await link(join(dir, 'h1'), join(dir, 'h2'));
  await file(join(dir, 'suid'), 'suid\n', 0o4755);
}

const CONTEXT_HASHES: Record<string, string> = {
  'a.txt': 'file:a10103ec36c554758b02d1b0877f01c5256d69d9b4e9f767b9c8035b1dcade19',
  // A symlink is followed: the target's sum.
  'link.txt': 'file:a10103ec36c554758b02d1b0877f01c5256d69d9b4e9f767b9c8035b1dcade19',
  dir: 'dir:d27538a272eb1630c30d3803cadf792ac2661ae65f6c047041de1edbfdc53b96',
  linkdir: 'dir:d27538a272eb1630c30d3803cadf792ac2661ae65f6c047041de1edbfdc53b96',
  h1: 'file:b37f3aa14845d4ea20b49c3e42bd8175b66db33996ef8d3decee7f5f6cc9fb56',
  // The CLI sends the second name as a hardlink (typeflag 1, size 0, linkname h1).
  h2: 'file:c88cd226a465eb3c7a0e6b5df2e8ef85b9c21e092064a4202b3ead354762f279',
  suid: 'file:818c7998f66dabb065602a8efba9e1edd89993419a19aa288318c44e88393a65',
  empty: 'dir:15a6c147bbd6ab912dbf1e5d10ba2c281b84d271a89eca59998579b447331c75',
  // The root itself is not part of `COPY .`; symlinks inside count as their targets.
  '.': 'dir:2f08f6b58ff5e8c183346e093790c4dbe1ea930076872e143fe8a5783ec53d20',
};

test('context sources hash as dockerd does, from the directory and after berth packs and unpacks it', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-tarsum-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const source = join(root, 'src');
  await mkdir(source);
  await makeContext(source);
  const unpacked = join(root, 'unpacked');
  await unpackContext(packContext(source), unpacked);
  for (const dir of [source, unpacked]) {
    const hasher = new SourceHasher(dir, 'context');
    for (const [path, expected] of Object.entries(CONTEXT_HASHES))
      assert.equal(await hasher.source(path), expected, `${path} in ${dir}`);
    // A wildcard's matches and several sources: multi: over the single hashes in order.
    assert.equal(
      sourcesHash([await hasher.source('b.conf'), await hasher.source('c.conf')]),
      'multi:4f054e79bdbabc436c564b2e03c37f349424cb65f763660576b1690f840e87e2',
    );
    assert.equal(
      sourcesHash([await hasher.source('a.txt'), await hasher.source('dir')]),
      'multi:014cd7f840428b382650f2ed3d45d707a8b3545fe008efd674927f8178bca4e9',
    );
  }
});

test('a changed mode or content changes the hash, a changed mtime does not', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-tarsum-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await file(join(root, 'a'), 'one', 0o644);
  const first = await new SourceHasher(root, 'context').source('a');
  await file(join(root, 'a'), 'one', 0o644);
  assert.equal(await new SourceHasher(root, 'context').source('a'), first);
  await chmod(join(root, 'a'), 0o755);
  const chmodded = await new SourceHasher(root, 'context').source('a');
  assert.notEqual(chmodded, first);
  await file(join(root, 'a'), 'two', 0o755);
  assert.notEqual(await new SourceHasher(root, 'context').source('a'), chmodded);
});

test('headers of files in an image: file-type bits in the mode, owner names from the host', () => {
  const base = { typeflag: '0', linkname: '', devmajor: 0, devminor: 0 };
  // /o/f: mode 0644, owned by 1000:1000, which the host's /etc/passwd and /etc/group name cloudsdk.
  const f = tarsumHash({
    ...base,
    name: 'o/f',
    mode: 0o100644,
    uid: 1000,
    gid: 1000,
    size: 4,
    uname: 'cloudsdk',
    gname: 'cloudsdk',
  });
  assert.equal(
    f.update('one\n').digest('hex'),
    '93dcc3ab926e98356752542a6ee1bea10a33ecd874250e6df69483982e10c263',
  );
  const r = tarsumHash({
    ...base,
    name: 'o/r',
    mode: 0o104700,
    uid: 0,
    gid: 0,
    size: 2,
    uname: 'root',
    gname: 'root',
  });
  assert.equal(
    r.update('r\n').digest('hex'),
    '97d7f121088ffd2ee407bfa02a0a46cd1f70699ddc79f29332dde2bf5e91c2d8',
  );
});

test('COPY --from sources hash as dockerd does', { skip: asRoot }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-tarsum-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const tree = join(root, 'tree');
  const o = join(tree, 'o');
  await mkdir(join(o, 'sub'), { recursive: true });
  await chmod(o, 0o755);
  await file(join(o, 'f'), 'one\n', 0o644);
  await chown(join(o, 'f'), 1000, 1000);
  // g before the setgid bit, which would give it the directory's group.
  await file(join(o, 'sub', 'g'), 'two\n', 0o644);
  await chown(join(o, 'sub'), 123, 456);
  await chmod(join(o, 'sub'), 0o2750);
  await symlink('f', join(o, 'l'));
  await symlink('/nowhere', join(o, 'dangle'));
  await file(join(o, 'r'), 'r\n', 0o4700);
  await link(join(o, 'r'), join(o, 'rh'));
  await writeFile(
    join(root, 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\ncloudsdk:x:1000:1000::/home/c:/bin/sh\n',
  );
  await writeFile(join(root, 'group'), 'root:x:0:\ncloudsdk:x:1000:\n');
  const hasher = new SourceHasher(
    tree,
    'filesystem',
    new OwnerNames(join(root, 'passwd'), join(root, 'group')),
  );
  const expected: Record<string, string> = {
    'o/f': 'file:93dcc3ab926e98356752542a6ee1bea10a33ecd874250e6df69483982e10c263',
    'o/r': 'file:97d7f121088ffd2ee407bfa02a0a46cd1f70699ddc79f29332dde2bf5e91c2d8',
    // Owners without a name (123, 456) hash with empty names.
    'o/sub': 'dir:22fb19678484e7c6006134f7b7a7f279e752525bc6c7ea66ce4f219b4270981c',
    'o/l': 'file:93dcc3ab926e98356752542a6ee1bea10a33ecd874250e6df69483982e10c263',
    // The dangling symlink counts as its resolved path ("nowhere"), the hardlink as a plain file.
    o: 'dir:d5a77b1c57abc8e2feb3cd80a02cee221c64d5d898a9267c40b3568e44a39657',
  };
  for (const [path, hash] of Object.entries(expected)) assert.equal(await hasher.source(path), hash, path);
});

test(
  'ADD <url>: the download is hashed as a 0600 file named after the URL, without a prefix',
  { skip: asRoot },
  async (t) => {
    const root = await mkdtemp(join(tmpdir(), 'berth-tarsum-'));
    t.after(() => rm(root, { recursive: true, force: true }));
    await writeFile(join(root, 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await writeFile(join(root, 'group'), 'root:x:0:\n');
    const owners = new OwnerNames(join(root, 'passwd'), join(root, 'group'));
    await file(join(root, 'a'), 'downloaded\n', 0o644);
    await chown(join(root, 'a'), 0, 0);
    assert.equal(downloadName('http://127.0.0.1:18999/dl/file.bin'), 'file.bin');
    assert.equal(
      await downloadSum(join(root, 'a'), 'file.bin', owners),
      '4bc67880a3e1060929c373ba3919ea379c02eb8d1fd3676eefbdff2a137f0304',
    );
    // A URL path ending in '/' names nothing: dockerd hashes the file as __unnamed__.
    assert.equal(downloadName('http://127.0.0.1:18999/dl/'), '__unnamed__');
    await file(join(root, 'b'), 'idx\n', 0o600);
    await chown(join(root, 'b'), 0, 0);
    assert.equal(
      await downloadSum(join(root, 'b'), '__unnamed__', owners),
      'd4608a25735faaa39695096960b799f9e35c4985c8ae26ce2c332d66e65558bf',
    );
  },
);
