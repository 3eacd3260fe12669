/**
 * Structure-aware mutation of tar archives: header fields set to boundary values (octal text,
 * base-256, garbage), type flags, hostile names, pax and GNU long-name headers inserted, entries
 * repeated, dropped or cut, junk after the end marker; then the header checksums are fixed so the
 * reader gets past its first check. gzip inputs are mutated inside and compressed again.
 */
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Rng } from './rng.js';

const BLOCK = 512;

const FIELDS: Array<[offset: number, length: number]> = [
  [100, 8], // mode
  [108, 8], // uid
  [116, 8], // gid
  [124, 12], // size
  [136, 12], // mtime
  [329, 8], // devmajor
  [337, 8], // devminor
];

const NUMBERS = [0, 1, 0o777, 0o7777, 511, 512, 513, 65534, 2 ** 31, 2 ** 33 - 1, 2 ** 53, 2 ** 64];
const TYPES = ['0', '1', '2', '3', '4', '5', '6', '7', 'x', 'g', 'L', 'K', 'S', 'V', 'D', 'A', '\0'];
const NAMES = [
  '',
  '.',
  './',
  '..',
  '../x',
  '/etc/passwd',
  'a/../../b',
  'a//b/./c',
  '.wh.a',
  '.wh..wh..opq',
  'd/.wh..wh..opq',
  'a\\b',
  'x'.repeat(100),
  'dir/',
  '\u{1F600}',
];
const PAX_RECORDS = [
  'path=../../pax-escape',
  'path=/abs',
  `path=${'p/'.repeat(300)}x`,
  'linkpath=/etc/shadow',
  'size=0',
  'size=-1',
  'size=9007199254740993',
  'size=1e3',
  'uid=4294967296',
  'gid=-5',
  'mtime=1.5',
  'mtime=NaN',
  'SCHILY.xattr.user.x=\0\xff',
  'SCHILY.xattr.security.capability=\x01\x00\x00\x02',
  'SCHILY.xattr.trusted.overlay.opaque=y',
  'GNU.sparse.size=100',
  'hdrcharset=BINARY',
];

const octal = (value: number, width: number): string =>
  value
    .toString(8)
    .padStart(width - 1, '0')
    .slice(-(width - 1));

function setField(block: Buffer, offset: number, length: number, rng: Rng): void {
  const value = rng.pick(NUMBERS);
  const field = Buffer.alloc(length, 0);
  switch (rng.int(4)) {
    case 0:
      field.write(octal(value, length), 'latin1');
      break;
    case 1: {
      // GNU base-256: high bit set, big-endian; sometimes 0xff (negative).
      field[0] = rng.chance(0.2) ? 0xff : 0x80;
      let rest = value;
      for (let i = length - 1; i > 0 && rest > 0; i--) {
        field[i] = rest % 256;
        rest = Math.floor(rest / 256);
      }
      break;
    }
    case 2:
      field.write(rng.pick([' 123 ', '8', '-1', '1e3', '0x10', ' ', '7'.repeat(length)]), 'latin1');
      break;
    default:
      field.write(value.toString(8), 'latin1');
  }
  field.copy(block, offset);
}

function setText(block: Buffer, offset: number, length: number, text: string): void {
  block.fill(0, offset, offset + length);
  Buffer.from(text, 'utf8').copy(block, offset, 0, length);
}

export function fixChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i] as number;
  block.write(`${octal(sum, 7)}\0 `, 148, 'latin1');
}

/** A ustar header with a valid checksum (mode 0644, owner 0, mtime 0). */
export function tarHeader(name: string, type: string, size: number): Buffer {
  const block = Buffer.alloc(BLOCK, 0);
  setText(block, 0, 100, name);
  block.write('0000644\0', 100, 'latin1');
  block.write('0000000\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write(`${octal(size, 12)}\0`, 124, 'latin1');
  block.write('00000000000\0', 136, 'latin1');
  block.write(type, 156, 'latin1');
  block.write('ustar\x0000', 257, 'latin1');
  fixChecksum(block);
  return block;
}

/** One pax record, "<length> <key>=<value>\n", its length counting itself. */
export function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body, 'latin1') + 1;
  while (String(length).length + Buffer.byteLength(body, 'latin1') !== length)
    length = String(length).length + Buffer.byteLength(body, 'latin1');
  return Buffer.from(`${length}${body}`, 'latin1');
}

/** `body` followed by the zeros that pad it to a whole block. */
export const padded = (body: Buffer): Buffer =>
  Buffer.concat([body, Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK, 0)]);

/** A pax header (records with their own length prefix, sometimes wrong) and its body. */
function paxHeader(rng: Rng): Buffer {
  const records = Array.from({ length: rng.between(1, 3) }, () => {
    const [key = '', value = ''] = rng.pick(PAX_RECORDS).split(/=(.*)/s);
    const record = paxRecord(key, value);
    // Now and then a length that does not match the record.
    return rng.chance(0.9)
      ? record
      : Buffer.concat([Buffer.from(String(rng.pick([0, 1, 99999]))), record.subarray(record.indexOf(0x20))]);
  });
  const body = Buffer.concat(records);
  return Buffer.concat([tarHeader('PaxHeaders/x', rng.chance(0.8) ? 'x' : 'g', body.length), padded(body)]);
}

function longName(rng: Rng): Buffer {
  const body = Buffer.from(`${rng.pick(NAMES)}${'/n'.repeat(rng.int(200))}\0`, 'utf8');
  return Buffer.concat([tarHeader('././@LongLink', rng.chance(0.7) ? 'L' : 'K', body.length), padded(body)]);
}

interface Entry {
  offset: number;
  /** Header plus padded body. */
  length: number;
}

/** Headers found by walking sizes from the start; stops at the end marker or at a size it cannot read. */
function entries(tar: Buffer): Entry[] {
  const found: Entry[] = [];
  for (let offset = 0; offset + BLOCK <= tar.length && found.length < 1000;) {
    const block = tar.subarray(offset, offset + BLOCK);
    if (block.every((byte) => byte === 0)) break;
    const text = block.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim();
    const size = /^[0-7]+$/.test(text) ? parseInt(text, 8) : 0;
    const length = BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    found.push({ offset, length: Math.min(length, tar.length - offset) });
    offset += length;
  }
  return found;
}

function mutatePlain(tar: Buffer, rng: Rng): Buffer | undefined {
  let result = Buffer.from(tar);
  for (let round = rng.between(1, 3); round > 0; round--) {
    const list = entries(result);
    if (list.length === 0) return undefined;
    const entry = rng.pick(list);
    const block = result.subarray(entry.offset, entry.offset + BLOCK);
    const piece = (e: Entry): Buffer => result.subarray(e.offset, e.offset + e.length);
    const before = result.subarray(0, entry.offset);
    const after = result.subarray(entry.offset);
    switch (rng.int(10)) {
      case 0:
      case 1: {
        const [offset, length] = rng.pick(FIELDS);
        setField(block, offset, length, rng);
        break;
      }
      case 2:
        block.write(rng.pick(TYPES), 156, 'latin1');
        break;
      case 3: {
        const [offset, length] = rng.pick<[number, number]>([
          [0, 100],
          [157, 100],
          [345, 155],
        ]);
        setText(block, offset, length, rng.pick(NAMES));
        break;
      }
      case 4:
        block.write(rng.pick(['ustar\x0000', 'ustar  \0', '\0\0\0\0\0\0\0\0']), 257, 'latin1');
        break;
      case 5:
        result = Buffer.concat([before, paxHeader(rng), after]);
        break;
      case 6:
        result = Buffer.concat([before, longName(rng), after]);
        break;
      case 7: {
        // An entry repeated (the same path twice, a hardlink to itself) or dropped.
        const copies = rng.chance(0.7) ? rng.between(1, 3) : 0;
        result = Buffer.concat([
          before,
          ...Array.from({ length: copies }, () => piece(entry)),
          result.subarray(entry.offset + entry.length),
        ]);
        if (copies === 0 && rng.chance(0.5)) result = Buffer.concat([result, piece(rng.pick(list))]);
        break;
      }
      case 8:
        result = result.subarray(0, entry.offset + rng.int(entry.length + 1));
        break;
      default:
        result = Buffer.concat([
          result,
          rng.chance(0.5) ? Buffer.alloc(rng.between(1, 4096), 0) : Buffer.from('junk after the end'),
        ]);
    }
  }
  if (rng.chance(0.9))
    for (const entry of entries(result)) fixChecksum(result.subarray(entry.offset, entry.offset + BLOCK));
  return result;
}

/** A structural mutation of a plain or gzip tar; undefined for anything else. */
export function mutateTar(input: Buffer, rng: Rng): Buffer | undefined {
  if (input[0] === 0x1f && input[1] === 0x8b) {
    let plain: Buffer;
    try {
      // Large archives (a bomb from the corpus) are left to the byte mutators: re-compressing them is slow.
      plain = gunzipSync(input, { maxOutputLength: 256 * 1024 });
    } catch {
      return undefined;
    }
    const mutated = mutatePlain(plain, rng);
    return mutated === undefined ? undefined : gzipSync(mutated, { level: 1 });
  }
  const mutated = mutatePlain(input, rng);
  // Now and then compressed, so the gzip path sees structured content too.
  return mutated !== undefined && rng.chance(0.05) ? gzipSync(mutated, { level: 1 }) : mutated;
}
