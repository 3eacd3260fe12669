import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { encodeTarEntry, tarArchive, type TarEntry } from '../../../src/archive/tar-writer.js';
import { readTar, type TarHeader } from '../../../src/archive/tar-reader.js';
import { ByteSource } from '../../../src/archive/byte-source.js';

async function* chunks(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

async function listWithGnuTar(archive: Buffer, extra: string[] = []): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-unit-'));
  try {
    const path = join(dir, 'a.tar');
    await writeFile(path, archive);
    return execFileSync('tar', ['--numeric-owner', '-tvf', path, ...extra], { encoding: 'utf8' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const sample: TarEntry[] = [
  { path: 'dir', type: 'directory', mode: 0o755, mtime: 1_700_000_000 },
  { path: 'dir/file.txt', type: 'file', mode: 0o4755, uid: 1000, gid: 1000, content: Buffer.from('hello\n') },
  { path: 'dir/link', type: 'symlink', mode: 0o777, linkTarget: 'file.txt' },
  { path: 'dir/hard', type: 'hardlink', mode: 0o644, linkTarget: 'dir/file.txt' },
  { path: 'dir/fifo', type: 'fifo', mode: 0o600 },
  { path: 'dir/null', type: 'char', mode: 0o666, devMajor: 1, devMinor: 3 },
  { path: `dir/${'long-name-'.repeat(20)}`, type: 'file', mode: 0o644, content: Buffer.from('x') },
];

test('GNU tar reads every entry type with its metadata', async () => {
  const listing = await listWithGnuTar(tarArchive(sample));
  const lines = listing.trim().split('\n');
  assert.equal(lines.length, sample.length);
  assert.match(lines[0] ?? '', /^drwxr-xr-x 0\/0\s+0 2023-11-14 \S+ dir\/$/);
  assert.match(lines[1] ?? '', /^-rwsr-xr-x 1000\/1000\s+6 .* dir\/file\.txt$/);
  assert.match(lines[2] ?? '', /^lrwxrwxrwx .* dir\/link -> file\.txt$/);
  assert.match(lines[3] ?? '', /^hrw-r--r-- .* dir\/hard link to dir\/file\.txt$/);
  assert.match(lines[4] ?? '', /^prw------- .* dir\/fifo$/);
  assert.match(lines[5] ?? '', /^crw-rw-rw- 0\/0\s+1,3 .* dir\/null$/);
  assert.ok(lines[6]?.endsWith(`dir/${'long-name-'.repeat(20)}`), 'long names go through a pax header');
});

test('xattrs are written as SCHILY.xattr pax records', async () => {
  const archive = tarArchive([
    { path: 'f', type: 'file', mode: 0o644, content: Buffer.from('x'), xattrs: { 'user.k': 'v' } },
  ]);
  assert.ok(archive.includes(Buffer.from('SCHILY.xattr.user.k=v\n')));
  const listing = await listWithGnuTar(archive, ['--xattrs']);
  assert.match(listing, /f$/m);
});

test('pax record lengths count themselves', () => {
  // A 93-byte value makes the record cross from two to three length digits.
  for (const size of [1, 90, 93, 94, 95, 990, 995]) {
    const [pax] = encodeTarEntry({
      path: 'f',
      type: 'file',
      mode: 0o644,
      xattrs: { 'user.x': 'v'.repeat(size) },
    });
    const body = encodeTarEntry({
      path: 'f',
      type: 'file',
      mode: 0o644,
      xattrs: { 'user.x': 'v'.repeat(size) },
    })[1];
    assert.ok(pax && body);
    const text = body.toString('utf8');
    const length = Number(text.slice(0, text.indexOf(' ')));
    assert.equal(Buffer.from(text).length, length, `record of value size ${size}`);
  }
});

test('the same entries always give the same bytes', () => {
  assert.deepEqual(tarArchive(sample), tarArchive(sample));
  assert.equal(tarArchive(sample).length % 512, 0);
});

test('times and device numbers beyond ustar fields survive: pax mtime, base-256 devices', async () => {
  const entries: TarEntry[] = [
    { path: 'future', type: 'file', mode: 0o644, mtime: 2 ** 34, content: Buffer.from('x') },
    { path: 'past', type: 'file', mode: 0o644, mtime: -86_400 },
    { path: 'dev', type: 'char', mode: 0o600, devMajor: 2 ** 21, devMinor: 2 ** 30 + 7 },
  ];
  const archive = tarArchive(entries);
  const read: TarHeader[] = [];
  for await (const { header, body } of readTar(new ByteSource(chunks(archive)))) {
    for await (const chunk of body) void chunk;
    read.push(header);
  }
  assert.deepEqual(
    read.map((header) => [header.path, header.mtime, header.devMajor, header.devMinor]),
    [
      ['future', 2 ** 34, 0, 0],
      ['past', -86_400, 0, 0],
      ['dev', 0, 2 ** 21, 2 ** 30 + 7],
    ],
  );
  // GNU tar agrees (its listing shows the date of the pax time and the base-256 numbers).
  const listing = await listWithGnuTar(archive, ['--utc']);
  assert.match(listing, /2514-05-30 \S+ future/);
  assert.match(listing, /1969-12-31 00:00 past/);
  assert.match(listing, /2097152,1073741831 .* dev/);
});
