/**
 * A streaming tar reader (ustar, pax, GNU long names and base-256 numbers). Our own rather than
 * tar-stream because layers carry binary pax values (SCHILY.xattr.security.capability) that
 * tar-stream decodes as UTF-8, and pax uid/gid/mtime records that it ignores.
 */
import { invalidArgument } from '../common/errors.js';
import type { ByteSource } from './byte-source.js';
import type { TarEntryType } from './tar-writer.js';

export interface TarHeader {
  /** Path as stored in the archive (pax and GNU long names applied); not yet cleaned. */
  path: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  /** Body size in bytes (0 for everything but files). */
  size: number;
  /** Modification time in seconds since the epoch, fractional when pax gives it. */
  mtime: number;
  linkTarget: string;
  devMajor: number;
  devMinor: number;
  /** Extended attributes from pax SCHILY.xattr.* records, values as raw bytes. */
  xattrs: Map<string, Buffer>;
}

export interface TarReaderEntry {
  header: TarHeader;
  /** The body; what the consumer leaves unread is skipped before the next entry. */
  body: AsyncIterable<Buffer>;
}

const BLOCK = 512;
/**
 * Bounds on metadata a hostile archive could inflate: one pax header's size, and all the pax
 * records in force for one entry (consecutive headers merge, global ones add to every entry),
 * which a chain of headers with distinct keys would otherwise pile up in memory.
 */
const MAX_PAX_SIZE = 1024 * 1024;
const MAX_LONG_NAME = 64 * 1024;

function recordsSize(records: Map<string, Buffer>): number {
  let size = 0;
  for (const [key, value] of records) size += key.length + value.length;
  return size;
}

const fail = (message: string): Error => invalidArgument(`layer tar: ${message}`);

function cString(field: Buffer): string {
  const end = field.indexOf(0);
  return (end === -1 ? field : field.subarray(0, end)).toString('utf8');
}

function numeric(field: Buffer, name: string): number {
  const first = field[0] ?? 0;
  if (first & 0x80) {
    // GNU base-256: the first byte's high bit marks it; 0xff would be negative.
    if (first === 0xff) throw fail(`negative ${name} field`);
    let value = first & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + (field[i] ?? 0);
    if (!Number.isSafeInteger(value)) throw fail(`${name} field is too large`);
    return value;
  }
  const text = cString(field).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw fail(`${name} field is not an octal number: ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function checksumMatches(block: Buffer): boolean {
  const stored = numeric(block.subarray(148, 156), 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : (block[i] as number);
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

/** True when the block is a tar header a reader would accept (magic and checksum). */
export function looksLikeTarHeader(block: Buffer): boolean {
  if (block.length < BLOCK) return false;
  if (block.every((byte) => byte === 0)) return true; // an empty archive
  const magic = block.subarray(257, 265).toString('latin1');
  if (!magic.startsWith('ustar\0') && magic !== 'ustar  \0') return false;
  try {
    return checksumMatches(block);
  } catch {
    return false;
  }
}

/** Parse "<len> <key>=<value>\n" records; values stay bytes. */
function parsePax(body: Buffer): Map<string, Buffer> {
  const records = new Map<string, Buffer>();
  let offset = 0;
  while (offset < body.length) {
    const space = body.indexOf(0x20, offset);
    if (space === -1) break;
    const length = Number(body.subarray(offset, space).toString('latin1'));
    if (!Number.isSafeInteger(length) || length <= space - offset || offset + length > body.length)
      throw fail('malformed pax record');
    const record = body.subarray(space + 1, offset + length - 1);
    const equals = record.indexOf(0x3d);
    if (equals === -1) throw fail('malformed pax record');
    records.set(record.subarray(0, equals).toString('utf8'), record.subarray(equals + 1));
    offset += length;
  }
  return records;
}

function paxNumber(value: Buffer, key: string): number {
  const text = value.toString('latin1');
  const number = Number(text);
  // Only a time may lie before the epoch (pax allows "-5.25" for mtime).
  if (text === '' || !Number.isFinite(number) || (number < 0 && key !== 'mtime'))
    throw fail(`pax ${key} is not a number: ${JSON.stringify(text)}`);
  return number;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
};

const padded = (size: number): number => Math.ceil(size / BLOCK) * BLOCK;

async function readExactly(source: ByteSource, size: number, what: string): Promise<Buffer> {
  const data = await source.read(size);
  if (data.length < size) throw fail(`archive is truncated inside ${what}`);
  return data;
}

/**
 * Entries of the tar stream in `source`, one at a time. Reading stops at the end-of-archive
 * marker; whatever follows it stays in `source` (the caller hashes it for the diff ID).
 */
export async function* readTar(source: ByteSource): AsyncGenerator<TarReaderEntry> {
  let globalPax = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;

  while (true) {
    const block = await source.read(BLOCK);
    if (block.length === 0) {
      if (pax !== undefined || longName !== undefined || longLink !== undefined)
        throw fail('archive ends after an extended header');
      return;
    }
    if (block.length < BLOCK) throw fail('archive is truncated inside a header');
    if (block.every((byte) => byte === 0)) {
      // End of archive: a second zero block normally follows; it and any padding are left over.
      return;
    }
    if (!checksumMatches(block)) throw fail('header checksum mismatch (corrupt or not a tar archive)');

    const flag = String.fromCharCode(block[156] as number);
    const size = numeric(block.subarray(124, 136), 'size');
    if (flag === 'x' || flag === 'g') {
      if (size > MAX_PAX_SIZE) throw fail(`pax header of ${size} bytes is too large`);
      const records = parsePax(await readExactly(source, size, 'a pax header'));
      await source.skip(padded(size) - size);
      if (flag === 'g') globalPax = new Map([...globalPax, ...records]);
      else pax = new Map([...(pax ?? []), ...records]);
      if (recordsSize(globalPax) + recordsSize(pax ?? new Map()) > MAX_PAX_SIZE)
        throw fail(`pax headers of more than ${MAX_PAX_SIZE} bytes in force for one entry`);
      continue;
    }
    if (flag === 'L' || flag === 'K') {
      if (size > MAX_LONG_NAME) throw fail(`GNU long name of ${size} bytes is too large`);
      const name = cString(await readExactly(source, size, 'a GNU long name'));
      await source.skip(padded(size) - size);
      if (flag === 'L') longName = name;
      else longLink = name;
      continue;
    }

    const magic = block.subarray(257, 265).toString('latin1');
    let path = cString(block.subarray(0, 100));
    if (magic.startsWith('ustar\0')) {
      const prefix = cString(block.subarray(345, 500));
      if (prefix !== '') path = `${prefix}/${path}`;
    }
    let type = TYPES[flag];
    if (type === undefined) throw fail(`unsupported entry type '${flag}' for ${JSON.stringify(path)}`);
    if (flag === '\0' && path.endsWith('/')) type = 'directory'; // pre-POSIX directories

    const records = new Map([...globalPax, ...(pax ?? [])]);
    const header: TarHeader = {
      path: longName ?? path,
      type,
      mode: numeric(block.subarray(100, 108), 'mode') & 0o7777,
      uid: numeric(block.subarray(108, 116), 'uid'),
      gid: numeric(block.subarray(116, 124), 'gid'),
      size,
      mtime: numeric(block.subarray(136, 148), 'mtime'),
      linkTarget: longLink ?? cString(block.subarray(157, 257)),
      devMajor: numeric(block.subarray(329, 337), 'devmajor'),
      devMinor: numeric(block.subarray(337, 345), 'devminor'),
      xattrs: new Map(),
    };
    for (const [key, value] of records) {
      if (key === 'path') header.path = value.toString('utf8');
      else if (key === 'linkpath') header.linkTarget = value.toString('utf8');
      else if (key === 'size') header.size = paxNumber(value, key);
      else if (key === 'uid') header.uid = paxNumber(value, key);
      else if (key === 'gid') header.gid = paxNumber(value, key);
      else if (key === 'mtime') header.mtime = paxNumber(value, key);
      else if (key.startsWith('SCHILY.xattr.')) header.xattrs.set(key.slice('SCHILY.xattr.'.length), value);
    }
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    if (
      !Number.isSafeInteger(header.size) ||
      !Number.isSafeInteger(header.uid) ||
      !Number.isSafeInteger(header.gid)
    )
      throw fail(`bad size or owner for ${JSON.stringify(header.path)}`);
    // Only files carry data; other types' size fields are ignored, as Go's archive/tar does.
    const dataSize = header.type === 'file' ? header.size : 0;
    if (header.type !== 'file') header.size = 0;

    let remaining = dataSize;
    const body = async function* (): AsyncGenerator<Buffer> {
      while (remaining > 0) {
        const chunk = await source.readSome(remaining);
        if (chunk.length === 0) throw fail(`archive is truncated inside ${JSON.stringify(header.path)}`);
        remaining -= chunk.length;
        yield chunk;
      }
    };
    yield { header, body: body() };
    if (remaining > 0 && (await source.skip(remaining)) < remaining)
      throw fail(`archive is truncated inside ${JSON.stringify(header.path)}`);
    remaining = 0;
    await source.skip(padded(dataSize) - dataSize);
  }
}
