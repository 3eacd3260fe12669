/**
 * Layer tars from changes, streamed entry by entry (file contents are read as the consumer pulls):
 * - diffOverlayUpper: an overlayfs upper directory is already the change set; its whiteout
 *   devices become `.wh.<name>` entries and opaque directories get a `.wh..wh..opq` entry.
 *   The overlay must be mounted without redirect_dir and metacopy (the snapshotter does so),
 *   else the upper directory would not hold whole files and renamed directories.
 * - diffTrees: two full trees (the copy snapshotter): walked side by side in name order.
 *   A file counts as changed when its type, mode, owner, size, mtime (to the nanosecond), device
 *   number, symlink target or xattrs differ, and, when both mtimes have no sub-second part (a
 *   copy that lost precision), when its content differs.
 * Both walks never follow a symlink. Directories that contain a change are emitted before it
 * (with their own metadata) so a consumer never has to invent a parent. `mapEntry` rewrites each
 * entry made from a file (not whiteout or opaque markers), e.g. host ids to a user namespace's.
 */
import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { internal } from '../common/errors.js';
import { FsHelper } from './fs-helper.js';
import { splitDev } from './tar-pack.js';
import { encodeTarHeader, tarPadding, tarTrailer, type TarEntry } from './tar-writer.js';
import { OPAQUE_MARKER, OPAQUE_XATTR, WHITEOUT_PREFIX } from './tree-view.js';

const READ_CHUNK = 1024 * 1024;
const S_IFMT = 0o170000n;

type Xattrs = Map<string, Buffer>;

export interface DiffOptions {
  /** Rewrites every entry made from a file before it is written (owners across a user namespace). */
  mapEntry?: (entry: TarEntry) => TarEntry;
}

const keepXattr = (name: string): boolean => !name.startsWith('trusted.overlay.');

const typeOf = (stat: BigIntStats): bigint => stat.mode & S_IFMT;
const isWhiteout = (stat: BigIntStats): boolean => stat.isCharacterDevice() && stat.rdev === 0n;

async function lstatBig(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function sortedNames(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** Tar bytes for one entry, the file content streamed from `hostPath`. */
async function* entryBytes(entry: TarEntry, hostPath: string, stat: BigIntStats): AsyncGenerator<Buffer> {
  if (entry.type !== 'file') {
    yield* encodeTarHeader(entry);
    return;
  }
  const size = Number(stat.size);
  yield* encodeTarHeader(entry, size);
  const handle = await open(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    let left = size;
    while (left > 0) {
      const buffer = Buffer.allocUnsafe(Math.min(left, READ_CHUNK));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) throw internal(`${hostPath} shrank while it was being archived`);
      left -= bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
  yield tarPadding(size);
}

/** Turns stats into entries; a second name of an inode already written becomes a hardlink. */
class EntryMaker {
  private readonly inodes = new Map<string, string>();

  constructor(private readonly mapEntry: (entry: TarEntry) => TarEntry = (entry) => entry) {}

  async *emit(entry: TarEntry, hostPath: string, stat: BigIntStats): AsyncGenerator<Buffer> {
    if (!stat.isDirectory() && stat.nlink > 1n) {
      const inode = `${stat.dev}:${stat.ino}`;
      const first = this.inodes.get(inode);
      if (first !== undefined) {
        yield* encodeTarHeader({ ...entry, type: 'hardlink', linkTarget: first, xattrs: {} });
        return;
      }
      this.inodes.set(inode, entry.path);
    }
    yield* entryBytes(entry, hostPath, stat);
  }

  async make(
    path: string,
    hostPath: string,
    stat: BigIntStats,
    xattrs: Xattrs,
  ): Promise<TarEntry | undefined> {
    const base = {
      path,
      mode: Number(stat.mode & 0o7777n),
      uid: Number(stat.uid),
      gid: Number(stat.gid),
      mtime: Number(stat.mtimeMs / 1000n),
      xattrs: Object.fromEntries([...xattrs].filter(([name]) => keepXattr(name))),
    };
    if (stat.isDirectory()) return this.mapEntry({ ...base, type: 'directory' });
    if (stat.isFile()) return this.mapEntry({ ...base, type: 'file' });
    if (stat.isSymbolicLink())
      return this.mapEntry({ ...base, type: 'symlink', linkTarget: await readlink(hostPath) });
    if (stat.isFIFO()) return this.mapEntry({ ...base, type: 'fifo' });
    if (stat.isCharacterDevice() || stat.isBlockDevice()) {
      const { major, minor } = splitDev(Number(stat.rdev));
      const type = stat.isCharacterDevice() ? 'char' : 'block';
      return this.mapEntry({ ...base, type, devMajor: major, devMinor: minor });
    }
    return undefined; // sockets are not archived
  }
}

const marker = (path: string, name: string, stat?: BigIntStats): TarEntry => ({
  path: path === '' ? name : `${path}/${name}`,
  type: 'file',
  mode: 0,
  mtime: stat === undefined ? 0 : Number(stat.mtimeMs / 1000n),
});

/** The layer an overlayfs upper directory amounts to, as an uncompressed tar stream. */
export async function* diffOverlayUpper(upper: string, options: DiffOptions = {}): AsyncGenerator<Buffer> {
  const helper = new FsHelper();
  const maker = new EntryMaker(options.mapEntry);
  const walk = async function* (relative: string): AsyncGenerator<Buffer> {
    const dir = relative === '' ? upper : join(upper, relative);
    const names = await sortedNames(dir);
    const xattrs = await helper.xattrs(names.map((name) => join(dir, name)));
    for (const [index, name] of names.entries()) {
      const hostPath = join(dir, name);
      const path = relative === '' ? name : `${relative}/${name}`;
      const stat = await lstat(hostPath, { bigint: true });
      if (isWhiteout(stat)) {
        yield* encodeTarHeader(marker(relative, WHITEOUT_PREFIX + name, stat));
        continue;
      }
      const values = xattrs[index] ?? new Map<string, Buffer>();
      const entry = await maker.make(path, hostPath, stat, values);
      if (entry === undefined) continue;
      yield* maker.emit(entry, hostPath, stat);
      if (stat.isDirectory()) {
        if (values.get(OPAQUE_XATTR)?.toString() === 'y')
          yield* encodeTarHeader(marker(path, OPAQUE_MARKER, stat));
        yield* walk(path);
      }
    }
  };
  try {
    yield* walk('');
    yield tarTrailer();
  } finally {
    await helper.close();
  }
}

const sameXattrs = (a: Xattrs, b: Xattrs): boolean => {
  const left = [...a].filter(([name]) => keepXattr(name));
  const right = [...b].filter(([name]) => keepXattr(name));
  return left.length === right.length && left.every(([name, value]) => b.get(name)?.equals(value) === true);
};

async function sameContent(a: string, b: string, size: number): Promise<boolean> {
  const [left, right] = await Promise.all([
    open(a, constants.O_RDONLY | constants.O_NOFOLLOW),
    open(b, constants.O_RDONLY | constants.O_NOFOLLOW),
  ]);
  try {
    const bufferA = Buffer.allocUnsafe(Math.min(size, READ_CHUNK) || 1);
    const bufferB = Buffer.allocUnsafe(bufferA.length);
    for (let position = 0; position < size;) {
      const [readA, readB] = await Promise.all([
        left.read(bufferA, 0, bufferA.length, position),
        right.read(bufferB, 0, bufferB.length, position),
      ]);
      if (readA.bytesRead !== readB.bytesRead || readA.bytesRead === 0) return false;
      if (!bufferA.subarray(0, readA.bytesRead).equals(bufferB.subarray(0, readB.bytesRead))) return false;
      position += readA.bytesRead;
    }
    return true;
  } finally {
    await Promise.all([left.close(), right.close()]);
  }
}

function metadataChanged(
  lower: BigIntStats,
  upper: BigIntStats,
  lowerXattrs: Xattrs,
  upperXattrs: Xattrs,
): boolean {
  return (
    lower.mode !== upper.mode ||
    lower.uid !== upper.uid ||
    lower.gid !== upper.gid ||
    lower.mtimeNs !== upper.mtimeNs ||
    !sameXattrs(lowerXattrs, upperXattrs)
  );
}

/** The changes that turn the tree `lower` into the tree `upper`, as an uncompressed tar stream. */
export async function* diffTrees(
  lower: string,
  upper: string,
  options: DiffOptions = {},
): AsyncGenerator<Buffer> {
  const helper = new FsHelper();
  const maker = new EntryMaker(options.mapEntry);
  /** Directories on the current path whose entries are written only once something below changes. */
  const pending: Array<{ entry: TarEntry; written: boolean }> = [];
  const flushParents = function* (): Generator<Buffer> {
    for (const parent of pending) {
      if (parent.written) continue;
      parent.written = true;
      yield* encodeTarHeader(parent.entry);
    }
  };

  const addAll = async function* (relative: string): AsyncGenerator<Buffer> {
    const dir = join(upper, relative);
    const names = await sortedNames(dir);
    const xattrs = await helper.xattrs(names.map((name) => join(dir, name)));
    for (const [index, name] of names.entries()) {
      const hostPath = join(dir, name);
      const stat = await lstat(hostPath, { bigint: true });
      const path = `${relative}/${name}`;
      const entry = await maker.make(path, hostPath, stat, xattrs[index] ?? new Map());
      if (entry === undefined) continue;
      yield* maker.emit(entry, hostPath, stat);
      if (stat.isDirectory()) yield* addAll(path);
    }
  };

  const compare = async function* (relative: string): AsyncGenerator<Buffer> {
    const lowerDir = relative === '' ? lower : join(lower, relative);
    const upperDir = relative === '' ? upper : join(upper, relative);
    const names = [...new Set([...(await sortedNames(lowerDir)), ...(await sortedNames(upperDir))])].sort();
    const lowerXattrs = await helper.xattrs(names.map((name) => join(lowerDir, name)));
    const upperXattrs = await helper.xattrs(names.map((name) => join(upperDir, name)));
    for (const [index, name] of names.entries()) {
      const path = relative === '' ? name : `${relative}/${name}`;
      const lowerPath = join(lowerDir, name);
      const upperPath = join(upperDir, name);
      const [before, after] = await Promise.all([lstatBig(lowerPath), lstatBig(upperPath)]);
      if (after === undefined) {
        yield* flushParents();
        yield* encodeTarHeader(marker(relative, WHITEOUT_PREFIX + name));
        continue;
      }
      const afterXattrs = upperXattrs[index] ?? new Map<string, Buffer>();
      const entry = await maker.make(path, upperPath, after, afterXattrs);
      if (entry === undefined) continue;
      if (before === undefined || typeOf(before) !== typeOf(after)) {
        yield* flushParents();
        yield* maker.emit(entry, upperPath, after);
        if (after.isDirectory()) yield* addAll(path);
        continue;
      }
      const beforeXattrs = lowerXattrs[index] ?? new Map<string, Buffer>();
      const metaChanged = metadataChanged(before, after, beforeXattrs, afterXattrs);
      if (after.isDirectory()) {
        pending.push({ entry, written: false });
        if (metaChanged) yield* flushParents();
        yield* compare(path);
        pending.pop();
        continue;
      }
      let changed =
        metaChanged ||
        before.size !== after.size ||
        before.rdev !== after.rdev ||
        (after.isSymbolicLink() && (await readlink(lowerPath)) !== entry.linkTarget);
      if (
        !changed &&
        after.isFile() &&
        before.mtimeNs % 1_000_000_000n === 0n &&
        !(before.dev === after.dev && before.ino === after.ino)
      )
        changed = !(await sameContent(lowerPath, upperPath, Number(after.size)));
      if (!changed) continue;
      yield* flushParents();
      yield* maker.emit(entry, upperPath, after);
    }
  };

  try {
    yield* compare('');
    yield tarTrailer();
  } finally {
    await helper.close();
  }
}
