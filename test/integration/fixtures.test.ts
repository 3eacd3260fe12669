import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureFixture } from '../../fixtures/index.js';
import { LAYERS_EXPECTED } from '../../fixtures/layers.js';
import { createSandbox } from '../helpers/sandbox.js';
import { execOk } from '../helpers/exec.js';

interface SkopeoInspect {
  Digest: string;
  Layers: string[];
  Env: string[];
  Labels: Record<string, string> | null;
}

test('skopeo reads the busybox fixture from the OCI layout and the docker-save tarball', async () => {
  const busybox = await ensureFixture('busybox');
  const fromLayout = JSON.parse(
    await execOk('skopeo', ['inspect', `oci:${busybox.ociLayout}:latest`]),
  ) as SkopeoInspect;
  assert.equal(fromLayout.Digest, busybox.manifestDigest);
  assert.equal(fromLayout.Layers.length, 1);
  assert.ok(fromLayout.Env.some((e) => e.startsWith('PATH=')));
  const fromArchive = JSON.parse(
    await execOk('skopeo', ['inspect', `docker-archive:${busybox.dockerArchive}`]),
  ) as SkopeoInspect;
  assert.equal(fromArchive.Layers.length, 1);
});

test('umoci lists and unpacks the layers fixture with whiteouts, links, modes, owners and xattrs applied', async (t) => {
  const sandbox = await createSandbox(t);
  const layers = await ensureFixture('layers');
  assert.equal((await execOk('umoci', ['ls', '--layout', layers.ociLayout])).trim(), 'latest');
  const bundle = join(sandbox.root, 'bundle');
  await execOk('umoci', ['unpack', '--image', `${layers.ociLayout}:latest`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  for (const expected of LAYERS_EXPECTED) {
    const path = join(rootfs, expected.path);
    if (expected.type === 'absent') {
      await assert.rejects(lstat(path), { code: 'ENOENT' }, `${expected.path} must be gone`);
      continue;
    }
    const stat = await lstat(path);
    const actualType = stat.isFile()
      ? 'file'
      : stat.isDirectory()
        ? 'dir'
        : stat.isSymbolicLink()
          ? 'symlink'
          : stat.isFIFO()
            ? 'fifo'
            : '?';
    assert.equal(actualType, expected.type, expected.path);
    if (expected.content !== undefined)
      assert.equal(await readFile(path, 'utf8'), expected.content, expected.path);
    if (expected.mode !== undefined) assert.equal(stat.mode & 0o7777, expected.mode, expected.path);
    if (expected.uid !== undefined) assert.equal(stat.uid, expected.uid, expected.path);
    if (expected.linkTarget !== undefined)
      assert.equal(await readlink(path), expected.linkTarget, expected.path);
    if (expected.xattr !== undefined) {
      const [name, value] = expected.xattr;
      const read = await execOk('python3', [
        '-c',
        'import os,sys; sys.stdout.write(os.getxattr(sys.argv[1], sys.argv[2]).decode())',
        path,
        name,
      ]);
      assert.equal(read, value, `${expected.path} xattr ${name}`);
    }
  }
  const source = await lstat(join(rootfs, 'data/hardlink-source.txt'));
  const copy = await lstat(join(rootfs, 'data/hardlink-copy.txt'));
  assert.equal(source.ino, copy.ino, 'the hardlink shares its inode');
  // The busybox layer underneath is intact: the shell runs.
  assert.equal(await execOk(join(rootfs, 'bin/busybox'), ['echo', 'works']), 'works\n');
});

test('fixture builds are deterministic', async () => {
  const first = await ensureFixture('busybox');
  const again = await ensureFixture('busybox');
  assert.equal(first.manifestDigest, again.manifestDigest);
  assert.match(first.manifestDigest, /^sha256:[0-9a-f]{64}$/);
});
