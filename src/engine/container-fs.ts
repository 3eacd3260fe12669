/**
 * A container's filesystem from the outside, for `docker cp` (the archive endpoints), `docker
 * export` and `docker diff`.
 *
 * Paths are resolved the way the container sees them, over its root filesystem and the volumes,
 * binds and engine files mounted into it, without ever leaving it: every lookup goes through an
 * open directory (`/proc/<pid>/fd/<fd>/<name>`, O_NOFOLLOW), symlinks are expanded by hand with
 * absolute targets restarting at the container's root, and `..` stops there. A directory swapped
 * for a symlink by a running container makes a lookup fail (ELOOP), never follow it. Writes go
 * through archive/apply.ts below such a pinned directory with the container frozen, so nothing
 * in it can swap a path while the archive is applied.
 *
 * tmpfs mounts exist only in the container's mount namespace: what lies under them is the root
 * filesystem's directory, as with Docker.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, readlink, realpath, rmdir, type FileHandle } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BerthError, errnoCode, forbidden, invalidArgument, notFound } from '../common/errors.js';
import { applyTar } from '../archive/apply.js';
import { openLayerStream } from '../archive/layer-format.js';
import { readTar, type TarHeader } from '../archive/tar-reader.js';
import { encodeTarHeader, tarPadding, tarTrailer, type TarEntry } from '../archive/tar-writer.js';
import { splitDev } from '../archive/tar-pack.js';
import { OPAQUE_XATTR, WHITEOUT_PREFIX, cleanEntryPath } from '../archive/tree-view.js';
import { FsHelper } from '../archive/fs-helper.js';
import { defaultMounts } from '../oci/defaults.js';
import { unmount } from '../snapshot/mount.js';
import { parseBind, parseMount } from './binds.js';
import { isLive, type ContainerRecord } from './container-record.js';
import type { Engine } from './engine.js';
import { resolveUser } from './user.js';
import { OVERFLOW_ID, idShift, shiftEntry, type IdShift } from '../snapshot/shift-ids.js';

const MAX_SYMLINKS = 40;
const READ_CHUNK = 256 * 1024;
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Engine files bind-mounted into every container (spec-mounts.ts). */
const NETWORK_FILES = [
  ['resolv.conf', '/etc/resolv.conf'],
  ['hostname', '/etc/hostname'],
  ['hosts', '/etc/hosts'],
] as const;

/**
 * A path through an open file descriptor. `/proc/<pid>` rather than `/proc/self`: the xattr and
 * mknod helper of archive/ is another process and must reach the same descriptors.
 */
const fdPath = (fd: number, name?: string): string =>
  name === undefined ? `/proc/${process.pid}/fd/${fd}` : `/proc/${process.pid}/fd/${fd}/${name}`;

/** A host directory or file mounted into the container. */
export interface FsMount {
  destination: string;
  source: string;
  readOnly: boolean;
}

/** Docker's ContainerPathStat (the X-Docker-Container-Path-Stat header, base64 JSON). */
export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits. */
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** Docker's container change kinds. */
export const ChangeKind = { Modified: 0, Added: 1, Deleted: 2 } as const;
export type ChangeKind = (typeof ChangeKind)[keyof typeof ChangeKind];

export interface Change {
  Path: string;
  Kind: ChangeKind;
}

/** Go's os.FileMode for a stat result. */
export function goFileMode(stats: Stats): number {
  let mode = stats.mode & 0o777;
  if (stats.isDirectory()) mode |= 2 ** 31;
  else if (stats.isSymbolicLink()) mode += 2 ** 27;
  else if (stats.isFIFO()) mode += 2 ** 25;
  else if (stats.isSocket()) mode += 2 ** 24;
  else if (stats.isBlockDevice()) mode += 2 ** 26;
  else if (stats.isCharacterDevice()) mode += 2 ** 26 + 2 ** 21;
  if (stats.mode & 0o4000) mode += 2 ** 23;
  if (stats.mode & 0o2000) mode += 2 ** 22;
  if (stats.mode & 0o1000) mode += 2 ** 20;
  return mode >>> 0;
}

export const encodePathStat = (stat: PathStat): string =>
  Buffer.from(JSON.stringify(stat)).toString('base64');

const splitPath = (path: string): string[] => path.split('/').filter((part) => part !== '' && part !== '.');
const containerPath = (components: string[]): string => `/${components.join('/')}`;

/** Where a resolved path is: its canonical container path and a host path safe to lstat or open with O_NOFOLLOW. */
export interface Resolved {
  components: string[];
  hostPath: string;
  /** The mount the path lies in, if not the root filesystem. */
  mount: FsMount | undefined;
}

interface Frame {
  handle: FileHandle | undefined;
  fd: number;
  components: string[];
  mount: FsMount | undefined;
}

/** The container's file tree: its root filesystem with the mounts laid over it. */
export class RootView {
  private constructor(
    private readonly root: FileHandle,
    readonly mounts: FsMount[],
  ) {}

  /** `root` is a host directory the caller trusts; the mounts' sources too (symlinks in them are the host's). */
  static async open(root: string, mounts: FsMount[]): Promise<RootView> {
    const normalized: FsMount[] = [];
    for (const m of mounts)
      normalized.push({
        ...m,
        destination: posix.resolve('/', m.destination),
        source: await realpath(m.source).catch(() => m.source),
      });
    return new RootView(await open(root, DIR_FLAGS), normalized);
  }

  async close(): Promise<void> {
    await this.root.close();
  }

  /** The mount whose destination is exactly this canonical path. */
  mountAt(components: string[]): FsMount | undefined {
    const path = containerPath(components);
    return this.mounts.find((m) => m.destination === path);
  }

  /** The innermost mount containing this canonical path. */
  mountOf(components: string[]): FsMount | undefined {
    const path = containerPath(components);
    let best: FsMount | undefined;
    for (const m of this.mounts)
      if (
        (path === m.destination || path.startsWith(`${m.destination}/`)) &&
        (best === undefined || m.destination.length > best.destination.length)
      )
        best = m;
    return best;
  }

  /**
   * Resolve a container path and run `fn` while the directories on the way stay open. The final
   * component is followed only when `followFinal`. Throws not-found for a missing component.
   */
  async resolve<T>(path: string, followFinal: boolean, fn: (resolved: Resolved) => Promise<T>): Promise<T> {
    const stack: Frame[] = [{ handle: undefined, fd: this.root.fd, components: [], mount: undefined }];
    const top = (): Frame => stack[stack.length - 1] as Frame;
    const popTo = async (depth: number): Promise<void> => {
      while (stack.length > depth) await stack.pop()?.handle?.close();
    };
    try {
      const todo = splitPath(path).reverse();
      let links = 0;
      let final: Resolved | undefined;
      while (todo.length > 0) {
        const part = todo.pop() as string;
        if (part === '..') {
          await popTo(Math.max(1, stack.length - 1));
          continue;
        }
        const parent = top();
        const components = [...parent.components, part];
        const mount = this.mountAt(components);
        const last = todo.length === 0;
        const hostPath = mount?.source ?? fdPath(parent.fd, part);
        const stats = await lstatIn(hostPath, path);
        if (stats.isSymbolicLink() && (!last || followFinal) && mount === undefined) {
          if (++links > MAX_SYMLINKS) throw invalidArgument(`${path}: too many levels of symbolic links`);
          const target = await readlink(hostPath);
          if (target.startsWith('/')) await popTo(1);
          todo.push(...splitPath(target).reverse());
          continue;
        }
        if (last && !(followFinal && stats.isDirectory())) {
          final = { components, hostPath, mount: mount ?? parent.mount };
          break;
        }
        if (!stats.isDirectory()) throw invalidArgument(`${containerPath(components)} is not a directory`);
        const handle = await openDir(hostPath, path);
        stack.push({ handle, fd: handle.fd, components, mount: mount ?? parent.mount });
      }
      if (final === undefined) {
        const dir = top();
        // `<fd>/.`: the directory itself (lstat of `<fd>` alone would see the /proc link).
        final = { components: dir.components, hostPath: fdPath(dir.fd, '.'), mount: dir.mount };
      }
      return await fn(final);
    } finally {
      await popTo(0);
    }
  }
}

async function lstatIn(hostPath: string, requested: string): Promise<Stats> {
  try {
    return await lstat(hostPath);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') throw notFound(`Could not find the file ${requested} in container`);
    if (code === 'ENOTDIR') throw invalidArgument(`${requested}: not a directory`);
    throw err;
  }
}

async function openDir(hostPath: string, requested: string): Promise<FileHandle> {
  try {
    return await open(hostPath, DIR_FLAGS);
  } catch (err) {
    // A directory replaced by a symlink after it was checked: refuse rather than follow.
    if (errnoCode(err) === 'ELOOP' || errnoCode(err) === 'ENOTDIR')
      throw invalidArgument(`${requested} changed while it was resolved`);
    throw err;
  }
}

/** Docker's stat of a container path: the final component is not followed, a symlink's target is resolved in the container. */
export async function statPath(view: RootView, path: string): Promise<PathStat> {
  const follow = path.endsWith('/') || path.endsWith('/.');
  return view.resolve(path, follow, async (resolved) => {
    const stats = await lstat(resolved.hostPath);
    let linkTarget = '';
    if (stats.isSymbolicLink()) {
      const link = await readlink(resolved.hostPath);
      // A dangling link still has a target: where it would point, as Docker reports it.
      const lexical = posix.resolve(posix.dirname(containerPath(resolved.components)), link);
      linkTarget = await view
        .resolve(path, true, async (target) => containerPath(target.components))
        .catch((err: unknown) => {
          if (err instanceof BerthError && err.kind === 'not-found') return lexical;
          throw err;
        });
    }
    return {
      name: pathBase(path),
      size: stats.size,
      mode: goFileMode(stats),
      mtime: stats.mtime.toISOString(),
      linkTarget,
    };
  });
}

/** Go's filepath.Base of the absolute path: `/` for the root, `.` for `dir/.`. */
function pathBase(path: string): string {
  const absolute = posix.join('/', path);
  if (path.endsWith('/.')) return '.';
  return absolute === '/' ? '/' : posix.basename(absolute);
}

// ---- archives out ------------------------------------------------------------------------------

interface WalkOptions {
  /** Mounts to descend into (cp); undefined for the root filesystem alone (export). */
  view: RootView | undefined;
  /** Owners as the container sees them, for a remapped container (snapshot/shift-ids.ts). */
  shift?: EntryShift | undefined;
}

/** Rewrites an entry's owner (and file capability) across a user namespace boundary. */
export type EntryShift = (entry: TarEntry) => TarEntry;

/** Streams the tree at `hostPath` as tar entries named from `name`; nothing is followed. */
class TreeWriter {
  private readonly inodes = new Map<string, string>();

  constructor(private readonly options: WalkOptions) {}

  async *entry(hostPath: string, name: string, components: string[]): AsyncGenerator<Buffer> {
    const stats = await lstat(hostPath);
    const shift = this.options.shift ?? ((entry: TarEntry): TarEntry => entry);
    const base = {
      path: name,
      ...(name.startsWith('/') ? { rooted: true } : {}),
      mode: stats.mode & 0o7777,
      uid: stats.uid,
      gid: stats.gid,
      mtime: Math.floor(stats.mtimeMs / 1000),
    };
    if (stats.isDirectory()) {
      const handle = await open(hostPath, DIR_FLAGS);
      try {
        yield* encodeTarHeader(shift({ ...base, type: 'directory' }));
        for (const child of (await readdir(fdPath(handle.fd))).sort()) {
          const childComponents = [...components, child];
          const mount = this.options.view?.mountAt(childComponents);
          const childName = name === '' ? child : `${name.replace(/\/+$/, '')}/${child}`;
          yield* this.entry(mount?.source ?? fdPath(handle.fd, child), childName, childComponents);
        }
      } finally {
        await handle.close();
      }
      return;
    }
    if (stats.nlink > 1) {
      const inode = `${stats.dev}:${stats.ino}`;
      const first = this.inodes.get(inode);
      if (first !== undefined) {
        yield* encodeTarHeader(shift({ ...base, type: 'hardlink', linkTarget: first }));
        return;
      }
      this.inodes.set(inode, name);
    }
    if (stats.isFile()) yield* fileEntry(hostPath, shift({ ...base, type: 'file' }));
    else if (stats.isSymbolicLink())
      yield* encodeTarHeader(shift({ ...base, type: 'symlink', linkTarget: await readlink(hostPath) }));
    else if (stats.isFIFO()) yield* encodeTarHeader(shift({ ...base, type: 'fifo' }));
    else if (stats.isCharacterDevice() || stats.isBlockDevice()) {
      const { major, minor } = splitDev(stats.rdev);
      const type = stats.isCharacterDevice() ? 'char' : 'block';
      yield* encodeTarHeader(shift({ ...base, type, devMajor: major, devMinor: minor }));
    }
    // Sockets are not archived.
  }
}

/** A regular file's entry. A file that changes size while read is cut or padded to the size in its header. */
async function* fileEntry(hostPath: string, header: TarEntry): AsyncGenerator<Buffer> {
  const handle = await open(hostPath, FILE_FLAGS);
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return;
    const size = stats.size;
    yield* encodeTarHeader(header, size);
    let left = size;
    let shrank = false;
    while (left > 0) {
      const buffer = Buffer.alloc(Math.min(left, READ_CHUNK));
      // Once the file shrank, zeros keep the archive well-formed.
      const bytesRead = shrank
        ? buffer.length
        : (await handle.read(buffer, 0, buffer.length, null)).bytesRead;
      if (bytesRead === 0) {
        shrank = true;
        continue;
      }
      left -= bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
    yield tarPadding(size);
  } finally {
    await handle.close();
  }
}

/**
 * The tar of a container path as Docker's GET archive sends it: entries named from the path's
 * base name (`.` for `dir/.`), the final symlink not followed unless the path ends in `/`.
 */
export async function archivePath(
  view: RootView,
  path: string,
  consume: (stat: PathStat, tar: AsyncIterable<Buffer>) => Promise<void>,
  shift?: EntryShift,
): Promise<void> {
  const stat = await statPath(view, path);
  const follow = path.endsWith('/') || path.endsWith('/.');
  await view.resolve(path, follow, async (resolved) => {
    // The root's entries are `/`, `/bin`, ... like dockerd's: the CLI rebases them onto its target.
    const name = stat.name;
    const writer = new TreeWriter({ view, shift });
    async function* tar(): AsyncGenerator<Buffer> {
      yield* writer.entry(resolved.hostPath, name, resolved.components);
      yield tarTrailer();
    }
    await consume(stat, tar());
  });
}

/** The whole root filesystem (no volumes or binds), as `docker export` sends it. */
export async function* exportTree(root: string, shift?: EntryShift): AsyncGenerator<Buffer> {
  const writer = new TreeWriter({ view: undefined, shift });
  const handle = await open(root, DIR_FLAGS);
  try {
    for (const child of (await readdir(fdPath(handle.fd))).sort())
      yield* writer.entry(fdPath(handle.fd, child), child, [child]);
    yield tarTrailer();
  } finally {
    await handle.close();
  }
}

// ---- archives in -------------------------------------------------------------------------------

export interface ExtractOptions {
  /** Refuse to replace a directory with a non-directory or the reverse. */
  noOverwriteDirNonDir: boolean;
  /** Own every entry by this uid:gid instead of the archive's owners. */
  owner?: { uid: number; gid: number };
  /** Whether the root filesystem is read-only (HostConfig.ReadonlyRootfs). */
  readOnlyRootfs: boolean;
  /** Owners as the host stores them, for a remapped container (applied after `owner`). */
  shift?: EntryShift;
}

/**
 * Re-encode a tar (plain, gzip or zstd) entry by entry: `map` gives the entry to write for a
 * header, or undefined to drop it (its body is skipped).
 */
export async function* rewriteTar(
  input: AsyncIterable<Uint8Array>,
  map: (header: TarHeader) => Promise<TarEntry | undefined>,
): AsyncGenerator<Buffer> {
  const layer = await openLayerStream(input).catch((err: unknown) => {
    if (err instanceof BerthError)
      throw invalidArgument(`the archive: ${err.message.replace(/^layer (tar: )?/, '')}`);
    throw err;
  });
  try {
    for await (const { header, body } of readTar(layer.source)) {
      const entry = await map(header);
      if (entry === undefined) continue;
      yield* encodeTarHeader(entry, header.type === 'file' ? header.size : undefined);
      if (header.type === 'file') {
        for await (const chunk of body) yield chunk;
        yield tarPadding(header.size);
      }
    }
    yield tarTrailer();
  } finally {
    await layer.source.close();
  }
}

/** Entries re-encoded after the checks apply.ts does not make for a copy. */
function checkedEntries(
  input: AsyncIterable<Uint8Array>,
  view: RootView,
  target: Resolved,
  targetFd: number,
  options: ExtractOptions,
): AsyncGenerator<Buffer> {
  return rewriteTar(input, async (header) => {
    const components = cleanArchivePath(header.path);
    // The target directory's own entry (`./`) would change its owner and mode: skipped.
    if (components.length === 0) return undefined;
    const nested = view.mountOf([...target.components, ...components]);
    if (nested !== target.mount)
      throw invalidArgument(
        `cannot extract ${header.path}: it lies in ${nested?.destination ?? 'the root filesystem'}, a different mount than ${containerPath(target.components)}; copy into that mount directly`,
      );
    if (options.noOverwriteDirNonDir) await checkDirNonDir(targetFd, components, header);
    const entry = toEntry(header, options.owner);
    return options.shift ? options.shift(entry) : entry;
  });
}

function cleanArchivePath(name: string): string[] {
  let components: string[];
  try {
    components = cleanEntryPath(name);
  } catch (err) {
    throw invalidArgument(`archive entry ${JSON.stringify(name)} refused: ${(err as Error).message}`);
  }
  if (components.some((part) => part.startsWith(WHITEOUT_PREFIX)))
    throw invalidArgument(
      `archive entry ${JSON.stringify(name)} refused: names starting with ${WHITEOUT_PREFIX} are whiteouts in image layers and cannot be copied`,
    );
  return components;
}

/** The entry a header describes, owned by `owner` when given. */
export function toEntry(header: TarHeader, owner?: { uid: number; gid: number }): TarEntry {
  return {
    path: header.path,
    type: header.type,
    mode: header.mode,
    uid: owner?.uid ?? header.uid,
    gid: owner?.gid ?? header.gid,
    mtime: header.mtime,
    linkTarget: header.linkTarget,
    devMajor: header.devMajor,
    devMinor: header.devMinor,
    xattrs: Object.fromEntries(header.xattrs),
  };
}

/** Docker's noOverwriteDirNonDir: an existing directory stays one, an existing non-directory too. */
async function checkDirNonDir(targetFd: number, components: string[], header: TarHeader): Promise<void> {
  // Only a path without symlinks on the way is checked: the apply resolves those inside the target.
  let existing: Stats | undefined;
  for (let i = 1; i <= components.length; i++) {
    existing = await lstatMaybe(fdPath(targetFd, components.slice(0, i).join('/')));
    if (existing === undefined) return;
    if (i < components.length && !existing.isDirectory()) return;
  }
  if (existing === undefined) return;
  const incomingDir = header.type === 'directory';
  if (existing.isDirectory() && !incomingDir)
    throw invalidArgument(
      `cannot overwrite directory ${JSON.stringify(components.join('/'))} with non-directory`,
    );
  if (!existing.isDirectory() && incomingDir)
    throw invalidArgument(
      `cannot overwrite non-directory ${JSON.stringify(components.join('/'))} with directory`,
    );
}

/** Extract a tar (plain, gzip or zstd) into the container directory `path`. */
export async function extractArchive(
  view: RootView,
  path: string,
  input: AsyncIterable<Uint8Array>,
  options: ExtractOptions,
): Promise<void> {
  await view.resolve(path, true, async (target) => {
    const stats = await lstat(target.hostPath);
    if (!stats.isDirectory()) throw invalidArgument(`extraction point ${path} is not a directory`);
    if (target.mount ? target.mount.readOnly : options.readOnlyRootfs)
      throw forbidden(
        target.mount
          ? `mounted volume is marked read-only: ${target.mount.destination}`
          : 'container rootfs is marked read-only',
      );
    const handle = await open(target.hostPath, DIR_FLAGS);
    try {
      await applyTar(checkedEntries(input, view, target, handle.fd, options), fdPath(handle.fd), {
        mode: 'flat',
        preserveOwnership: true,
      });
    } finally {
      await handle.close();
    }
  });
}

// ---- changes -----------------------------------------------------------------------------------

const isWhiteout = (stats: Stats): boolean => stats.isCharacterDevice() && stats.rdev === 0;

async function lstatMaybe(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * Docker's changes of an overlay upper directory: a whiteout is a deletion, an opaque directory
 * too (what it hid is gone), anything else an addition, or a modification when a lower layer has
 * the path. A directory counts only when its type, mode or owner changed, or as the parent of a
 * change. Paths in `ignore` (mount points the engine created) are not changes. A remapped
 * container's upper directory holds host ids: `upperIds` takes them back to the container's,
 * which the image's layers hold.
 */
export async function overlayChanges(
  upper: string,
  lowers: string[],
  ignore: ReadonlySet<string>,
  isOpaque: (hostPath: string) => Promise<boolean>,
  upperIds?: IdShift,
): Promise<Change[]> {
  const changes = new Map<string, ChangeKind>();
  const uidOf = (stats: Stats): number => (upperIds ? (upperIds.uid(stats.uid) ?? OVERFLOW_ID) : stats.uid);
  const gidOf = (stats: Stats): number => (upperIds ? (upperIds.gid(stats.gid) ?? OVERFLOW_ID) : stats.gid);
  const inLower = async (path: string): Promise<Stats | undefined> => {
    for (const lower of lowers) {
      const stats = await lstatMaybe(join(lower, path));
      if (stats !== undefined) return isWhiteout(stats) ? undefined : stats;
    }
    return undefined;
  };
  const walk = async (relative: string): Promise<void> => {
    for (const name of (await readdir(join(upper, relative))).sort()) {
      const path = `${relative}/${name}`;
      const hostPath = join(upper, path);
      const stats = await lstat(hostPath);
      if (ignore.has(path)) {
        if (stats.isDirectory()) await walk(path);
        continue;
      }
      if (isWhiteout(stats)) {
        changes.set(path, ChangeKind.Deleted);
        continue;
      }
      const below = await inLower(path);
      if (stats.isDirectory()) {
        if (await isOpaque(hostPath))
          changes.set(path, below === undefined ? ChangeKind.Added : ChangeKind.Deleted);
        else if (below === undefined) changes.set(path, ChangeKind.Added);
        else if (
          !below.isDirectory() ||
          below.mode !== stats.mode ||
          below.uid !== uidOf(stats) ||
          below.gid !== gidOf(stats)
        )
          changes.set(path, ChangeKind.Modified);
        await walk(path);
        continue;
      }
      changes.set(path, below === undefined ? ChangeKind.Added : ChangeKind.Modified);
    }
  };
  await walk('');
  // The parent of a change is a change, as in Docker.
  for (const path of [...changes.keys()]) {
    for (let parent = posix.dirname(path); parent !== '/'; parent = posix.dirname(parent))
      if (!changes.has(parent)) changes.set(parent, ChangeKind.Modified);
  }
  return [...changes.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([Path, Kind]) => ({ Path, Kind }));
}

// ---- the engine side ---------------------------------------------------------------------------

/** Where each mount of a container comes from, as far as the host can reach it (not tmpfs). */
export async function containerMounts(engine: Engine, record: ContainerRecord): Promise<FsMount[]> {
  const mounts: FsMount[] = [];
  for (const [destination, volume] of Object.entries(record.volumes ?? {}))
    mounts.push({
      destination,
      source: await engine.services.volumes.mountpoint(volume.name),
      readOnly: volume.readOnly,
    });
  const requests = [
    ...(record.hostConfig.Binds ?? []).map((bind) => parseBind(bind)),
    ...(record.hostConfig.Mounts ?? []).map((mount) => parseMount(mount)),
  ];
  for (const request of requests)
    if (request.type === 'bind')
      mounts.push({ destination: request.destination, source: request.source, readOnly: request.readOnly });
  const dir = engine.containers.dir(record.id);
  for (const [file, destination] of NETWORK_FILES) {
    if (mounts.some((m) => m.destination === destination)) continue;
    const source = join(dir, file);
    if ((await lstatMaybe(source))?.isFile())
      mounts.push({ destination, source, readOnly: record.hostConfig.ReadonlyRootfs === true });
  }
  return mounts;
}

/** Mount points the engine or the runtime creates in the writable layer: not changes of the container. */
export function mountPoints(record: ContainerRecord): Set<string> {
  const points = new Set<string>([
    ...defaultMounts().map((m) => m.destination),
    ...NETWORK_FILES.map(([, destination]) => destination),
    '/dev/shm',
    '/dev/mqueue',
    '/sys/fs/cgroup',
    ...Object.keys(record.volumes ?? {}),
    ...Object.keys(record.hostConfig.Tmpfs ?? {}),
    ...(record.hostConfig.Binds ?? []).map((bind) => parseBind(bind).destination),
    ...(record.hostConfig.Mounts ?? []).map((mount) => parseMount(mount).destination),
  ]);
  return new Set([...points].map((p) => posix.resolve('/', p)));
}

/** One operation at a time per container: two temporary mounts of one stopped container would share its upper directory. */
class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.catch(() => undefined).then(fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await result;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** The archive, export and changes operations on the engine's containers. */
export class ContainerFs {
  private readonly lock = new KeyedLock();

  constructor(private readonly engine: Engine) {}

  /**
   * Run `fn` on the container's mounted root: the live one of a running container (frozen when
   * `freeze`), else its snapshot mounted for the call and unmounted after, whatever happens.
   */
  private async withRoot<T>(
    record: ContainerRecord,
    freeze: boolean,
    fn: (root: string) => Promise<T>,
  ): Promise<T> {
    return this.lock.run(record.id, async () => {
      const { runtime } = this.engine.services;
      if (isLive(record.state)) {
        const thaw = freeze && !record.state.Paused;
        if (thaw) await runtime.pause(record.id);
        try {
          return await fn(join(this.engine.containers.dir(record.id), 'rootfs'));
        } finally {
          if (thaw && !record.state.Paused) await runtime.resume(record.id).catch(() => undefined);
        }
      }
      const name = `fs-${randomBytes(6).toString('hex')}`;
      const root = join(this.engine.containers.dir(record.id), name);
      await mkdir(root, { mode: 0o700 });
      try {
        await this.engine.mountSnapshot(record, root, name);
        try {
          return await fn(root);
        } finally {
          await unmount(root);
        }
      } finally {
        await rmdir(root).catch(() => undefined);
      }
    });
  }

  private async withView<T>(
    record: ContainerRecord,
    freeze: boolean,
    fn: (view: RootView, root: string) => Promise<T>,
  ): Promise<T> {
    const mounts = await containerMounts(this.engine, record);
    return this.withRoot(record, freeze, async (root) => {
      const view = await RootView.open(root, mounts);
      try {
        return await fn(view, root);
      } finally {
        await view.close();
      }
    });
  }

  /** For a remapped container: its files' host owners as the container sees them, or the reverse. */
  private shift(record: ContainerRecord, direction: 'to-host' | 'to-container'): EntryShift | undefined {
    const map = this.engine.idMapOf(record);
    if (map === undefined) return undefined;
    // Host ids outside the range (a bind mount's) show as the overflow id, as inside; an archive
    // id the namespace cannot represent is refused, as Docker does.
    return shiftEntry(idShift(map, direction), direction === 'to-host' ? 'refuse' : 'overflow');
  }

  private notFoundIn(record: ContainerRecord, err: unknown): unknown {
    if (
      err instanceof BerthError &&
      err.kind === 'not-found' &&
      err.message.startsWith('Could not find the file')
    )
      return notFound(`${err.message} ${record.name}`);
    return err;
  }

  async stat(reference: string, path: string): Promise<PathStat> {
    const record = this.engine.containers.get(reference);
    return this.withView(record, false, (view) => statPath(view, path)).catch((err: unknown) => {
      throw this.notFoundIn(record, err);
    });
  }

  async archive(
    reference: string,
    path: string,
    consume: (stat: PathStat, tar: AsyncIterable<Buffer>) => Promise<void>,
  ): Promise<void> {
    const record = this.engine.containers.get(reference);
    const shift = this.shift(record, 'to-container');
    await this.withView(record, false, (view) => archivePath(view, path, consume, shift)).catch(
      (err: unknown) => {
        throw this.notFoundIn(record, err);
      },
    );
  }

  async extract(
    reference: string,
    path: string,
    input: AsyncIterable<Uint8Array>,
    options: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean },
  ): Promise<void> {
    const record = this.engine.containers.get(reference);
    const shift = this.shift(record, 'to-host');
    await this.withView(record, true, async (view, root) => {
      // Docker's copyUIDGID: the container's user owns what is copied, when it has one.
      const user =
        options.copyUIDGID && record.config.User ? await resolveUser(root, record.config.User) : undefined;
      await extractArchive(view, path, input, {
        noOverwriteDirNonDir: options.noOverwriteDirNonDir,
        readOnlyRootfs: record.hostConfig.ReadonlyRootfs === true,
        ...(user ? { owner: { uid: user.uid, gid: user.gid } } : {}),
        ...(shift ? { shift } : {}),
      });
    }).catch((err: unknown) => {
      throw this.notFoundIn(record, err);
    });
  }

  async export(reference: string, consume: (tar: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
    const record = this.engine.containers.get(reference);
    const shift = this.shift(record, 'to-container');
    await this.withRoot(record, false, (root) => consume(exportTree(root, shift)));
  }

  async changes(reference: string): Promise<Change[]> {
    const record = this.engine.containers.get(reference);
    const { snapshotter } = this.engine.services;
    const target = await snapshotter.layerTarget(record.snapshotKey);
    if (target.mode !== 'overlay')
      throw invalidArgument(
        `container changes need the overlayfs snapshotter; this daemon uses ${snapshotter.driver}`,
      );
    const helper = new FsHelper();
    try {
      const isOpaque = async (hostPath: string): Promise<boolean> => {
        const [xattrs] = await helper.xattrs([hostPath]);
        return xattrs?.get(OPAQUE_XATTR)?.toString() === 'y';
      };
      const map = this.engine.idMapOf(record);
      return await overlayChanges(
        target.root,
        target.lowers,
        mountPoints(record),
        isOpaque,
        map && idShift(map, 'to-container'),
      );
    } finally {
      await helper.close();
    }
  }
}
