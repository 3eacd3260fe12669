import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import {
  compressionOfMediaType,
  openLayerStream,
  sniffCompression,
  type LayerStreamOptions,
} from '../../../src/archive/layer-format.js';
import { tarArchive } from '../../../src/archive/tar-writer.js';
import { MEDIA_TYPE } from '../../../src/oci/image-spec.js';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const BLOCK_MAX = 128 * 1024;

const blockHeader = (last: boolean, type: number, size: number): Buffer => {
  const value = (last ? 1 : 0) | (type << 1) | (size << 3);
  return Buffer.from([value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff]);
};

/** A zstd frame of raw (stored) blocks with a 128 KiB window: valid zstd without a compressor. */
function zstdRaw(data: Buffer, windowByte = 0x38): Buffer {
  const parts: Buffer[] = [ZSTD_MAGIC, Buffer.from([0x00, windowByte])];
  for (let offset = 0; offset < data.length || offset === 0; offset += BLOCK_MAX) {
    const block = data.subarray(offset, offset + BLOCK_MAX);
    parts.push(blockHeader(offset + BLOCK_MAX >= data.length, 0, block.length), block);
    if (data.length === 0) break;
  }
  return Buffer.concat(parts);
}

/** A zstd frame of `count` RLE blocks of 128 KiB zeros: 4 bytes each, a decompression bomb. */
function zstdRleBomb(count: number): Buffer {
  const parts: Buffer[] = [ZSTD_MAGIC, Buffer.from([0x00, 0x38])];
  for (let i = 0; i < count; i++) parts.push(blockHeader(i === count - 1, 1, BLOCK_MAX), Buffer.from([0]));
  return Buffer.concat(parts);
}

async function* chunks(data: Buffer, size = 4096): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

async function readLayer(data: Buffer, options: LayerStreamOptions = {}) {
  const layer = await openLayerStream(chunks(data), options);
  const parts: Buffer[] = [];
  for await (const chunk of layer.source.rest()) parts.push(chunk);
  return {
    compression: layer.compression,
    bytes: Buffer.concat(parts),
    diffId: layer.diffId,
    size: layer.size,
  };
}

const tar = tarArchive([
  { path: 'etc', type: 'directory', mode: 0o755 },
  { path: 'etc/motd', type: 'file', mode: 0o644, content: Buffer.from('hello\n'.repeat(50_000)) },
]);
const tarDigest = `sha256:${createHash('sha256').update(tar).digest('hex')}`;

test('media types map to their compression; unknown ones are refused', () => {
  assert.equal(compressionOfMediaType(MEDIA_TYPE.ociLayer), 'none');
  assert.equal(compressionOfMediaType(MEDIA_TYPE.ociLayerGzip), 'gzip');
  assert.equal(compressionOfMediaType(MEDIA_TYPE.ociLayerZstd), 'zstd');
  assert.equal(compressionOfMediaType(MEDIA_TYPE.dockerLayerGzip), 'gzip');
  assert.equal(compressionOfMediaType('application/vnd.docker.image.rootfs.diff.tar'), 'none');
  assert.throws(() => compressionOfMediaType('application/vnd.oci.image.layer.v1.tar+bzip2'), {
    kind: 'invalid-argument',
    message: /unsupported layer media type "application\/vnd.oci.image.layer.v1.tar\+bzip2"/,
  });
});

test('magic bytes identify gzip, zstd and tar', () => {
  assert.equal(sniffCompression(gzipSync(tar)), 'gzip');
  assert.equal(sniffCompression(zstdRaw(tar)), 'zstd');
  assert.equal(sniffCompression(tar.subarray(0, 512)), 'none');
  assert.equal(sniffCompression(Buffer.from('PK\x03\x04 a zip file, not a layer'.padEnd(600))), undefined);
});

test('gzip, zstd and plain layers give the same tar and diff ID', async () => {
  for (const [data, mediaType, compression] of [
    [tar, MEDIA_TYPE.ociLayer, 'none'],
    [gzipSync(tar), MEDIA_TYPE.ociLayerGzip, 'gzip'],
    [zstdRaw(tar), MEDIA_TYPE.ociLayerZstd, 'zstd'],
    [execFileSync('zstd', ['-c', '-q', '-19'], { input: tar }), MEDIA_TYPE.ociLayerZstd, 'zstd'],
    [
      Buffer.concat([zstdRaw(tar.subarray(0, 1000)), zstdRaw(tar.subarray(1000))]),
      MEDIA_TYPE.ociLayerZstd,
      'zstd',
    ],
  ] as const) {
    const layer = await readLayer(data, { mediaType });
    assert.equal(layer.compression, compression);
    assert.ok(layer.bytes.equals(tar), `${compression} content`);
    assert.equal(layer.diffId, tarDigest);
    assert.equal(layer.size, tar.length);
  }
  // Without a media type the magic bytes decide.
  assert.equal((await readLayer(gzipSync(tar))).diffId, tarDigest);
});

test('a media type that does not match the content is an error', async () => {
  await assert.rejects(readLayer(gzipSync(tar), { mediaType: MEDIA_TYPE.ociLayer }), {
    kind: 'invalid-argument',
    message: /announces an uncompressed tar but the content is gzip/,
  });
  await assert.rejects(readLayer(tar, { mediaType: MEDIA_TYPE.ociLayerGzip }), {
    message: /announces gzip but the content is an uncompressed tar/,
  });
  await assert.rejects(readLayer(zstdRaw(tar), { mediaType: MEDIA_TYPE.dockerLayerGzip }), {
    message: /announces gzip but the content is zstd/,
  });
  await assert.rejects(readLayer(Buffer.alloc(2048, 0x41)), { message: /neither gzip, zstd nor a tar/ });
  await assert.rejects(readLayer(Buffer.alloc(0)), { message: /layer is empty/ });
});

test('a gzip bomb stops at the size limit', async () => {
  const bomb = gzipSync(Buffer.alloc(256 * 1024 * 1024));
  assert.ok(bomb.length < 1024 * 1024, 'the bomb is small');
  await assert.rejects(readLayer(bomb, { maxSize: 4 * 1024 * 1024 }), {
    kind: 'invalid-argument',
    message: /larger than the limit of 4194304 bytes/,
  });
});

test('a zstd bomb stops at the size limit', async () => {
  const bomb = zstdRleBomb(2048); // 256 MiB from 8 KiB
  await assert.rejects(readLayer(bomb, { maxSize: 4 * 1024 * 1024 }), {
    kind: 'invalid-argument',
    message: /larger than the limit/,
  });
});

test('zstd frames with oversized windows, bad data or a missing end are refused', async () => {
  // Window descriptor exponent 21: a 2 GiB window, over the decoder's 128 MiB limit.
  await assert.rejects(readLayer(zstdRaw(tar, 21 << 3)), {
    message: /window, more than the 134217728-byte limit/,
  });
  const truncated = zstdRaw(tar).subarray(0, 5000);
  await assert.rejects(readLayer(truncated), { kind: 'invalid-argument', message: /truncated/ });
  const reserved = zstdRaw(tar);
  reserved[6] = (reserved[6] as number) | 0x06; // block type 3 is reserved
  await assert.rejects(readLayer(reserved), { kind: 'invalid-argument', message: /not valid zstd/ });
});

test('a frame that kept the old JavaScript decoder busy for 87 s is refused at once', async () => {
  // Found by the fuzzer (target tar): a compressed block whose sequences write far beyond the block.
  const frame = Buffer.from(
    '28b52ffd640019d50700c0ca809b01b0c2ea4bbd011883a989c04da761002b52a082cfec4a5420058c9231018227bc07' +
      '4441a24a6f691256d91cef7283406431d2d3ab925bff4ed3c4a64da5329f9963949835bd631898b2eebec2c0b88ce8a9' +
      'caa6ab0ac5045ca29ac478c00a84ab74ae31b609947f3e440449e954b6fefafcf7ddcbdc6a3e9debe762601130a04129' +
      '84aa4a26d366204f8a0ad401534165bd15923a5cc4aac7064cfddd3530d6820fd549c10628f5695e09a505d52f9412b2' +
      '9b9aa294654c2f38094de926ae94322873f95a0c68263ba545957522d84773f61f18806d0e008060711d0c2114c50522' +
      '57f696b439d41c54970144fbd93653d7fabf0891f53c485a',
    'hex',
  );
  await assert.rejects(readLayer(frame), {
    kind: 'invalid-argument',
    message: /not valid zstd data: Data corruption/,
  });
});

test('a consumer that stops early ends the decoder', async () => {
  const big = Buffer.alloc(8 * 1024 * 1024, 0x61);
  const layer = await openLayerStream(chunks(execFileSync('zstd', ['-c', '-q'], { input: big })));
  const first = await layer.source.read(1024);
  assert.equal(first.length, 1024);
  await layer.source.close();
});

test('corrupt gzip data is a clear error', async () => {
  const gz = gzipSync(tar);
  gz[gz.length - 20] = (gz[gz.length - 20] as number) ^ 0xff;
  await assert.rejects(readLayer(gz), { kind: 'invalid-argument', message: /not valid gzip data/ });
});
