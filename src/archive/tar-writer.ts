/**
 * A POSIX tar (ustar + pax) writer. It writes exactly what it is given — ownership, modes,
 * mtimes, device numbers, xattrs — so the same entries always give the same bytes.
 */

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  /** Path inside the archive, relative, with '/' separators; directories may end in '/'. */
  path: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky. */
  mode: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Modification time in seconds since the epoch. */
  mtime?: number;
  /** File content (type 'file' only). */
  content?: Uint8Array;
  /** Target of a symlink, or the archive path of a hardlink's original. */
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  /** Extended attributes, written as pax SCHILY.xattr records. */
  xattrs?: Record<string, Uint8Array | string>;
  /**
   * Keep the path's leading '/' (stripped otherwise): Docker's archive of a container's root
   * names its entries `/`, `/bin`, ..., which the docker CLI rebases by prefixing its target.
   */
  rooted?: boolean;
}

const BLOCK = 512;
const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  directory: '5',
  fifo: '6',
};

/** Octal field of `width` bytes: digits, then a NUL. Returns undefined when the value does not fit. */
function octalField(value: number, width: number): string | undefined {
  if (value < 0) return undefined;
  const digits = value.toString(8);
  if (digits.length > width - 1) return undefined;
  return digits.padStart(width - 1, '0') + '\0';
}

/**
 * GNU base-256 for a non-negative number too large for its octal field (pax has no record for
 * device numbers): the first byte's high bit marks the encoding, the rest is big-endian.
 */
function base256Field(value: number, width: number): Buffer {
  const field = Buffer.alloc(width);
  let rest = value;
  for (let i = width - 1; i > 0; i--) {
    field[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  field[0] = 0x80;
  return field;
}

function paxRecord(key: string, value: Uint8Array): Buffer {
  // A record is "<len> <key>=<value>\n" where <len> counts the whole record, itself included.
  const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return Buffer.alloc(rest === 0 ? 0 : BLOCK - rest);
}

interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  uname: string;
  gname: string;
  devMajor: number;
  devMinor: number;
}

function encodeHeader(fields: HeaderFields): Buffer {
  const header = Buffer.alloc(BLOCK);
  const put = (offset: number, width: number, text: string): void => {
    header.write(text, offset, width, 'utf8');
  };
  put(0, 100, fields.name);
  put(100, 8, octalField(fields.mode & 0o7777, 8) ?? '0000000\0');
  put(108, 8, octalField(fields.uid, 8) ?? '0000000\0');
  put(116, 8, octalField(fields.gid, 8) ?? '0000000\0');
  put(124, 12, octalField(fields.size, 12) ?? '00000000000\0');
  put(136, 12, octalField(fields.mtime, 12) ?? '00000000000\0');
  put(148, 8, '        ');
  put(156, 1, fields.typeflag);
  put(157, 100, fields.linkname);
  put(257, 6, 'ustar\0');
  put(263, 2, '00');
  put(265, 32, fields.uname);
  put(297, 32, fields.gname);
  const device = (offset: number, value: number): void => {
    const octal = octalField(value, 8);
    if (octal === undefined) base256Field(value, 8).copy(header, offset);
    else put(offset, 8, octal);
  };
  device(329, fields.devMajor);
  device(337, fields.devMinor);
  let sum = 0;
  for (const byte of header) sum += byte;
  put(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return header;
}

/**
 * The header blocks of one entry (a pax header first when ustar cannot hold it). For a file whose
 * content is streamed, `contentLength` gives its size; the content and tarPadding() follow.
 */
export function encodeTarHeader(entry: TarEntry, contentLength?: number): Buffer[] {
  let name = entry.rooted ? entry.path.replace(/^\/+/, '/') : entry.path.replace(/^\/+/, '');
  if (entry.type === 'directory' && !name.endsWith('/')) name += '/';
  const size = entry.type === 'file' ? (contentLength ?? entry.content?.length ?? 0) : 0;
  const linkname = entry.linkTarget ?? '';
  const uid = entry.uid ?? 0;
  const gid = entry.gid ?? 0;
  const mtime = Math.floor(entry.mtime ?? 0);

  const pax: Buffer[] = [];
  const fitsUstar = (text: string, width: number): boolean => Buffer.byteLength(text) < width;
  if (!fitsUstar(name, 100)) pax.push(paxRecord('path', Buffer.from(name)));
  if (!fitsUstar(linkname, 100)) pax.push(paxRecord('linkpath', Buffer.from(linkname)));
  if (octalField(uid, 8) === undefined) pax.push(paxRecord('uid', Buffer.from(String(uid))));
  if (octalField(gid, 8) === undefined) pax.push(paxRecord('gid', Buffer.from(String(gid))));
  if (octalField(size, 12) === undefined) pax.push(paxRecord('size', Buffer.from(String(size))));
  if (octalField(mtime, 12) === undefined) pax.push(paxRecord('mtime', Buffer.from(String(mtime))));
  for (const [key, value] of Object.entries(entry.xattrs ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) {
    pax.push(paxRecord(`SCHILY.xattr.${key}`, typeof value === 'string' ? Buffer.from(value) : value));
  }

  const blocks: Buffer[] = [];
  if (pax.length > 0) {
    const body = Buffer.concat(pax);
    blocks.push(
      encodeHeader({
        name: `PaxHeaders/${name}`.slice(0, 99),
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: body.length,
        mtime,
        typeflag: 'x',
        linkname: '',
        uname: '',
        gname: '',
        devMajor: 0,
        devMinor: 0,
      }),
      body,
      padding(body.length),
    );
  }
  blocks.push(
    encodeHeader({
      name: fitsUstar(name, 100) ? name : name.slice(0, 99),
      mode: entry.mode,
      uid: octalField(uid, 8) === undefined ? 0 : uid,
      gid: octalField(gid, 8) === undefined ? 0 : gid,
      size: octalField(size, 12) === undefined ? 0 : size,
      mtime,
      typeflag: TYPEFLAG[entry.type],
      linkname: fitsUstar(linkname, 100) ? linkname : linkname.slice(0, 99),
      uname: entry.uname ?? '',
      gname: entry.gname ?? '',
      devMajor: entry.devMajor ?? 0,
      devMinor: entry.devMinor ?? 0,
    }),
  );
  return blocks;
}

/** Zero bytes that pad `size` bytes of content to a whole block. */
export function tarPadding(size: number): Buffer {
  return padding(size);
}

/** Encode one entry (with a pax header before it when ustar cannot hold it) as tar blocks. */
export function encodeTarEntry(entry: TarEntry): Buffer[] {
  const content = entry.type === 'file' ? (entry.content ?? new Uint8Array()) : new Uint8Array();
  const blocks = encodeTarHeader(entry, content.length);
  if (content.length > 0) blocks.push(Buffer.from(content), padding(content.length));
  return blocks;
}

/** The two zero blocks that end an archive. */
export function tarTrailer(): Buffer {
  return Buffer.alloc(BLOCK * 2);
}

/** A whole archive in memory; for small archives such as test fixtures. */
export function tarArchive(entries: Iterable<TarEntry>): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) parts.push(...encodeTarEntry(entry));
  parts.push(tarTrailer());
  return Buffer.concat(parts);
}
