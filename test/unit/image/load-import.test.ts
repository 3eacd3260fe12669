import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tarArchive } from '../../../src/archive/tar-writer.js';
import { BerthError } from '../../../src/common/errors.js';
import { sha256Of } from '../../../src/content/digest.js';
import { importImage } from '../../../src/image/import.js';
import { MEDIA_TYPE, type ImageConfig } from '../../../src/oci/image-spec.js';
import { chunks, fileEntry, openStores, zstdStored, type Compression } from './store-fixtures.js';

const rootfs = tarArchive([
  { path: 'bin', type: 'directory', mode: 0o755 },
  fileEntry('bin/hello', '#!/bin/sh\necho hello\n', 0o755),
  fileEntry('etc/os-release', 'ID=test\n'),
]);

const compressed = (compression: Compression): Buffer =>
  compression === 'gzip' ? gzipSync(rootfs) : compression === 'zstd' ? zstdStored(rootfs) : rootfs;

test('import a root filesystem tarball, plain or compressed, as a one-layer image', async (t) => {
  for (const compression of ['none', 'gzip', 'zstd'] as Compression[]) {
    const { root, content, images } = await openStores(t);
    const input = compressed(compression);
    const outcome = await importImage(chunks(input), {
      images,
      tempDir: join(root, 'tmp'),
      tag: 'imported:v1',
      platform: { os: 'linux', architecture: 'arm64' },
      message: 'from a test',
      changes: ['CMD ["/bin/hello"]', 'ENV A=1', 'WORKDIR /bin', 'EXPOSE 8080', 'LABEL k=v'],
    });
    assert.deepEqual(outcome.names, ['docker.io/library/imported:v1']);
    const details = await images.inspect('imported:v1');
    assert.equal(details.id, outcome.id);
    assert.equal(details.architecture, 'arm64');
    assert.deepEqual(details.diffIds, [sha256Of(rootfs)]);
    assert.equal(details.comment, 'from a test');
    assert.deepEqual(details.runConfig.cmd, ['/bin/hello']);
    assert.deepEqual(details.runConfig.env, ['A=1']);
    assert.equal(details.runConfig.workingDir, '/bin');
    assert.deepEqual(details.runConfig.exposedPorts, ['8080/tcp']);
    assert.deepEqual(details.runConfig.labels, { k: 'v' });
    // The tarball is stored as it came; its compression names the layer media type.
    const manifest = await images.blobs.manifest(details.target.manifest.digest);
    assert.deepEqual(manifest.layers, [
      {
        mediaType: {
          none: MEDIA_TYPE.ociLayer,
          gzip: MEDIA_TYPE.ociLayerGzip,
          zstd: MEDIA_TYPE.ociLayerZstd,
        }[compression],
        digest: sha256Of(input),
        size: input.length,
      },
    ]);
    assert.deepEqual(await content.readAll(sha256Of(input)), input);
    assert.equal(details.unpackedSize, rootfs.length);
    const history = (await images.config(outcome.id)).history;
    assert.equal(history?.length, 1);
    assert.equal(history?.[0]?.comment, 'from a test');
    assert.deepEqual(await readdir(join(root, 'tmp')), [], 'the spool file is gone');
  }
});

test('without a tag or message: unnamed, and the comment says where it came from', async (t) => {
  const { root, images } = await openStores(t);
  const outcome = await importImage(chunks(rootfs), {
    images,
    tempDir: join(root, 'tmp'),
    source: 'http://example/rootfs.tar',
  });
  assert.deepEqual(outcome.names, []);
  const config = (await images.config(outcome.id)) as ImageConfig & { comment?: string };
  assert.equal(config.comment, 'Imported from http://example/rootfs.tar');
  assert.equal(config.os, 'linux');
  assert.equal(config.architecture, 'amd64');
});

test('bad input is refused with a clear error and nothing is recorded', async (t) => {
  const { root, images } = await openStores(t);
  const options = { images, tempDir: join(root, 'tmp') };
  const cases: Array<[string, Buffer, Record<string, unknown>, RegExp]> = [
    [
      'not a tar',
      Buffer.from('plain text, not an archive'.repeat(30)),
      {},
      /^invalid tarball to import: it is neither gzip, zstd nor a tar/,
    ],
    ['empty', Buffer.alloc(0), {}, /^invalid tarball to import: it is empty/],
    ['truncated', rootfs.subarray(0, 700), {}, /^invalid tarball to import: archive is truncated/],
    [
      'corrupt gzip',
      gzipSync(rootfs).subarray(0, 60),
      {},
      /^invalid tarball to import: it is not valid gzip data/,
    ],
    ['bad change', rootfs, { changes: ['RUN rm -rf /'] }, /RUN is not supported/],
    ['bad tag', rootfs, { tag: 'Upper:case' }, /must be lowercase/],
    ['digest tag', rootfs, { tag: `x@${sha256Of('x')}` }, /digest reference/],
  ];
  for (const [what, input, extra, message] of cases) {
    await assert.rejects(
      importImage(chunks(input), { ...options, ...extra }),
      (err: BerthError) => err.kind === 'invalid-argument' && message.test(err.message),
      what,
    );
  }
  assert.deepEqual(images.records(), []);
});
