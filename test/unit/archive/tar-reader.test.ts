import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteSource } from '../../../src/archive/byte-source.js';
import { readTar, looksLikeTarHeader, type TarHeader } from '../../../src/archive/tar-reader.js';
import { encodeTarEntry, tarArchive, tarTrailer } from '../../../src/archive/tar-writer.js';

/** Feed bytes in small uneven chunks so entries straddle chunk boundaries. */
async function* chunked(data: Buffer, size = 333): AsyncGenerator<Buffer> {
  for (let offset = 0; offset < data.length; offset += size) yield data.subarray(offset, offset + size);
}

async function readAll(data: Buffer): Promise<Array<{ header: TarHeader; content: Buffer }>> {
  const result: Array<{ header: TarHeader; content: Buffer }> = [];
  for await (const { header, body } of readTar(new ByteSource(chunked(data)))) {
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk);
    result.push({ header, content: Buffer.concat(parts) });
  }
  return result;
}

/** Rewrite a header block's checksum after patching it. */
function fixChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
}

test('reads every entry type with its metadata, pax long names, large ids and binary xattrs', async () => {
  const capability = Buffer.from([0x01, 0x00, 0x00, 0x02, 0xff, 0x80, 0x00, 0x00, 0xc3, 0x28]);
  const longPath = `${'deep/'.repeat(30)}file.txt`;
  const archive = tarArchive([
    { path: 'dir', type: 'directory', mode: 0o1755, uid: 1, gid: 2, mtime: 1234 },
    {
      path: 'dir/file',
      type: 'file',
      mode: 0o4755,
      uid: 3_000_000,
      gid: 7,
      mtime: 99,
      content: Buffer.from('hello'),
    },
    { path: longPath, type: 'file', mode: 0o644, content: Buffer.alloc(70_000, 7) },
    { path: 'dir/link', type: 'symlink', mode: 0o777, linkTarget: `/${'x'.repeat(150)}` },
    { path: 'dir/hard', type: 'hardlink', mode: 0o644, linkTarget: 'dir/file' },
    { path: 'dev', type: 'char', mode: 0o600, devMajor: 1, devMinor: 3 },
    { path: 'blk', type: 'block', mode: 0o600, devMajor: 8, devMinor: 1 },
    { path: 'fifo', type: 'fifo', mode: 0o644 },
    {
      path: 'cap',
      type: 'file',
      mode: 0o755,
      content: Buffer.from('x'),
      xattrs: { 'security.capability': capability },
    },
  ]);
  const entries = await readAll(archive);
  assert.deepEqual(
    entries.map((e) => [e.header.path, e.header.type]),
    [
      ['dir/', 'directory'],
      ['dir/file', 'file'],
      [longPath, 'file'],
      ['dir/link', 'symlink'],
      ['dir/hard', 'hardlink'],
      ['dev', 'char'],
      ['blk', 'block'],
      ['fifo', 'fifo'],
      ['cap', 'file'],
    ],
  );
  const [dir, file, long, link, hard, dev, blk, , cap] = entries;
  assert.deepEqual(
    [dir?.header.mode, dir?.header.uid, dir?.header.gid, dir?.header.mtime],
    [0o1755, 1, 2, 1234],
  );
  assert.deepEqual([file?.header.mode, file?.header.uid, file?.header.gid], [0o4755, 3_000_000, 7]);
  assert.equal(file?.content.toString(), 'hello');
  assert.deepEqual(long?.content, Buffer.alloc(70_000, 7));
  assert.equal(link?.header.linkTarget, `/${'x'.repeat(150)}`);
  assert.equal(hard?.header.linkTarget, 'dir/file');
  assert.deepEqual([dev?.header.devMajor, dev?.header.devMinor], [1, 3]);
  assert.deepEqual([blk?.header.devMajor, blk?.header.devMinor], [8, 1]);
  assert.deepEqual(cap?.header.xattrs.get('security.capability'), capability);
});

test('reads GNU long names and base-256 numbers', async () => {
  const name = `${'n'.repeat(200)}/file`;
  const longName = encodeTarEntry({
    path: '././@LongLink',
    type: 'file',
    mode: 0,
    content: Buffer.from(name + '\0'),
  });
  (longName[0] as Buffer)[156] = 'L'.charCodeAt(0);
  fixChecksum(longName[0] as Buffer);
  const entry = encodeTarEntry({ path: 'short', type: 'file', mode: 0o600, content: Buffer.from('data') });
  const header = entry[0] as Buffer;
  // uid 2^40 in base-256: high bit set in the first byte of the field.
  header.fill(0, 108, 116);
  header[108] = 0x80;
  header[110] = 0x01;
  fixChecksum(header);
  const [read] = await readAll(Buffer.concat([...longName, ...entry, tarTrailer()]));
  assert.equal(read?.header.path, name);
  assert.equal(read?.header.uid, 2 ** 40);
  assert.equal(read?.content.toString(), 'data');
});

test('skips bodies the consumer leaves unread', async () => {
  const archive = tarArchive([
    { path: 'a', type: 'file', mode: 0o644, content: Buffer.alloc(5000, 1) },
    { path: 'b', type: 'file', mode: 0o644, content: Buffer.from('second') },
  ]);
  const seen: string[] = [];
  for await (const { header, body } of readTar(new ByteSource(chunked(archive, 100)))) {
    seen.push(header.path);
    if (header.path === 'b') for await (const chunk of body) seen.push(chunk.toString());
  }
  assert.deepEqual(seen, ['a', 'b', 'second']);
});

test('refuses corrupt, truncated and unsupported archives with a clear error', async () => {
  const archive = tarArchive([{ path: 'a', type: 'file', mode: 0o644, content: Buffer.alloc(2000, 1) }]);
  const corrupt = Buffer.from(archive);
  corrupt[10] = 0x41;
  await assert.rejects(readAll(corrupt), { kind: 'invalid-argument', message: /checksum/ });
  await assert.rejects(readAll(archive.subarray(0, 1024)), {
    kind: 'invalid-argument',
    message: /truncated/,
  });
  await assert.rejects(readAll(archive.subarray(0, 300)), { kind: 'invalid-argument', message: /truncated/ });
  const sparse = Buffer.from(archive);
  sparse[156] = 'S'.charCodeAt(0);
  fixChecksum(sparse.subarray(0, 512));
  await assert.rejects(readAll(sparse), { kind: 'invalid-argument', message: /unsupported entry type 'S'/ });
});

test('recognises tar headers by ustar magic and checksum', () => {
  const [header] = encodeTarEntry({ path: 'a', type: 'file', mode: 0o644 });
  assert.equal(looksLikeTarHeader(header as Buffer), true);
  assert.equal(looksLikeTarHeader(Buffer.alloc(512)), true, 'an empty archive');
  const broken = Buffer.from(header as Buffer);
  broken[0] = 0x7a;
  assert.equal(looksLikeTarHeader(broken), false);
  assert.equal(looksLikeTarHeader(Buffer.alloc(512, 0x41)), false);
});
