/**
 * The layer applier proper (see apply.ts for the semantics and the safety rules). It makes its
 * filesystem calls synchronously: it runs in a worker thread (apply-worker.ts), where one entry's
 * half a dozen syscalls cost their own time and not a thread-pool round trip each, and where
 * blocking delays nobody else's events.
 */
import {
  chmodSync,
  closeSync,
  constants,
  copyFileSync,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { BerthError, internal, invalidArgument } from '../common/errors.js';
import type { ApplyOptions, ApplyResult, IdRange } from './apply-types.js';
import { FsHelper } from './fs-helper.js';
import { openLayerStream } from './layer-format.js';
import { readTar, type TarHeader } from './tar-reader.js';
import { splitDev } from './tar-pack.js';
import {
  OPAQUE_MARKER,
  OPAQUE_XATTR,
  RefusedEntry,
  WHITEOUT_PREFIX,
  TreeView,
  cleanEntryPath,
  isWhiteoutDevice,
  lstatSyncOrUndefined,
  syncTreeFs,
  type Located,
} from './tree-view.js';

interface Metadata {
  uid: number;
  gid: number;
  mode: number;
  mtime: number;
  xattrs: Map<string, Buffer>;
}

/** An id through a mapping; ids outside every range become the kernel's overflow id. */
function mapId(ranges: IdRange[], id: number): number {
  for (const range of ranges)
    if (id >= range.containerID && id < range.containerID + range.size)
      return range.hostID + (id - range.containerID);
  return OVERFLOW_ID;
}

const OVERFLOW_ID = 65534;
const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const isOverlayXattr = (name: string): boolean => name.startsWith('trusted.overlay.');

class Applier {
  readonly view: TreeView;
  /** Canonical paths this layer has written (whiteouts and opaque markers spare them). */
  private readonly written = new Set<string>();
  /** Directory metadata, set at the end so adding children does not undo modes and mtimes. */
  private readonly directories = new Map<string, { components: string[]; meta: Metadata }>();
  private readonly ownership: boolean;

  constructor(
    target: string,
    private readonly options: ApplyOptions,
    private readonly helper: FsHelper,
  ) {
    const overlay = options.mode === 'overlay';
    this.view = new TreeView(target, overlay ? (options.lowers ?? []) : [], overlay, helper, syncTreeFs);
    this.ownership = options.preserveOwnership ?? process.getuid?.() === 0;
  }

  private owner(uid: number, gid: number): [number, number] {
    const map = this.options.idMap;
    return map ? [mapId(map.uids, uid), mapId(map.gids, gid)] : [uid, gid];
  }

  private metadataOf(header: TarHeader): Metadata {
    const [uid, gid] = this.owner(header.uid, header.gid);
    return { uid, gid, mode: header.mode, mtime: header.mtime, xattrs: header.xattrs };
  }

  /** The kernel allows user.* xattrs only on files and directories, so they are dropped elsewhere. */
  private async setXattrs(path: string, xattrs: Map<string, Buffer>, fileOrDir: boolean): Promise<void> {
    for (const [name, value] of xattrs)
      if (fileOrDir || !name.startsWith('user.')) await this.helper.setXattr(path, name, value);
  }

  /** Owner, then mode (chown clears setuid), then xattrs (chown clears security.capability), then times. */
  private async finishByPath(
    path: string,
    meta: Metadata,
    kind: 'file' | 'directory' | 'symlink' | 'special',
  ): Promise<void> {
    if (this.ownership) lchownSync(path, meta.uid, meta.gid);
    // The final component was just created or checked: chmod cannot go through a symlink here.
    if (kind !== 'symlink') chmodSync(path, meta.mode);
    await this.setXattrs(path, meta.xattrs, kind === 'file' || kind === 'directory');
    lutimesSync(path, meta.mtime, meta.mtime);
  }

  /** Remove whatever the upper tree has at `components` (never following it). */
  private async removeUpper(components: string[]): Promise<void> {
    const path = this.view.upperPath(components);
    const stat = lstatSyncOrUndefined(path);
    if (stat === undefined) return;
    if (stat.isDirectory()) {
      rmSync(path, { recursive: true, force: true });
      this.view.forgetUpperDirs();
      const prefix = components.join('/') + '/';
      for (const key of this.directories.keys()) if (key.startsWith(prefix)) this.directories.delete(key);
    } else unlinkSync(path);
  }

  /** Make sure the canonical directory exists in the upper tree, copying lower metadata up. */
  private async ensureDir(components: string[]): Promise<void> {
    for (let i = 1; i <= components.length; i++) {
      const prefix = components.slice(0, i);
      if (this.view.isKnownUpperDir(prefix)) continue;
      const path = this.view.upperPath(prefix);
      const stat = lstatSyncOrUndefined(path);
      if (stat?.isDirectory()) {
        this.view.noteUpperDir(prefix);
        continue;
      }
      if (stat !== undefined && this.view.overlay && isWhiteoutDevice(stat)) {
        // A directory re-created after its whiteout: opaque, so the lower one stays hidden.
        unlinkSync(path);
        mkdirSync(path, 0o755);
        await this.makeOpaque(prefix);
        this.view.noteUpperDir(prefix);
        continue;
      }
      if (stat !== undefined) throw new RefusedEntry(`/${prefix.join('/')} is not a directory`);
      const lower = await this.view.lookupLower(prefix.slice(0, -1), prefix.at(-1) as string);
      mkdirSync(path, 0o755);
      this.view.noteUpperDir(prefix);
      if (lower?.stat.isDirectory()) {
        const [xattrs] = await this.helper.xattrs([lower.hostPath]);
        this.directories.set(prefix.join('/'), {
          components: prefix,
          meta: {
            uid: lower.stat.uid,
            gid: lower.stat.gid,
            mode: lower.stat.mode & 0o7777,
            mtime: lower.stat.mtimeMs / 1000,
            xattrs: new Map([...(xattrs ?? [])].filter(([name]) => !isOverlayXattr(name))),
          },
        });
      }
    }
  }

  private async makeOpaque(components: string[]): Promise<void> {
    await this.helper.setXattr(this.view.upperPath(components), OPAQUE_XATTR, Buffer.from('y'));
    this.view.upperOpaque.add(components.join('/'));
  }

  /** Resolve an entry's parent (following symlinks inside the root) and create it. */
  private async parentOf(components: string[]): Promise<string[]> {
    const parent = await this.view.resolve(components.slice(0, -1), true);
    await this.ensureDir(parent);
    return parent;
  }

  async entry(header: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    const components = cleanEntryPath(header.path);
    const name = components.at(-1);
    if (name === undefined) {
      // The root itself: only a directory entry makes sense, and it sets the root's metadata.
      if (header.type !== 'directory') throw new RefusedEntry('a non-directory entry for the root');
      this.directories.set('', { components: [], meta: this.metadataOf(header) });
      return;
    }
    if (name.startsWith(WHITEOUT_PREFIX)) return this.whiteout(components, name);

    if ((header.type === 'char' || header.type === 'block') && this.options.allowDevices !== true)
      throw new RefusedEntry(`${header.type} device entries are not allowed`);

    // Resolve a hardlink's target before touching anything: replacing the entry could remove it.
    let linkTarget: string[] | undefined;
    if (header.type === 'hardlink')
      linkTarget = await this.view.resolve(cleanEntryPath(header.linkTarget), false);

    const parent = await this.parentOf(components);
    const canonical = [...parent, name];
    const key = canonical.join('/');
    const path = this.view.upperPath(canonical);
    const existing = lstatSyncOrUndefined(path);

    if (header.type === 'hardlink' && linkTarget !== undefined) {
      if (linkTarget.join('/') === key) return; // a link to itself changes nothing
      const source = await this.linkSource(linkTarget);
      if (existing !== undefined) await this.removeUpper(canonical);
      linkSync(source, path);
      this.written.add(key);
      return;
    }

    const replacesWhiteout = existing !== undefined && this.view.overlay && isWhiteoutDevice(existing);
    if (existing !== undefined && !(existing.isDirectory() && header.type === 'directory'))
      await this.removeUpper(canonical);
    const meta = this.metadataOf(header);
    this.written.add(key);

    switch (header.type) {
      case 'directory':
        if (!existing?.isDirectory()) {
          mkdirSync(path, 0o700);
          if (replacesWhiteout) await this.makeOpaque(canonical);
        }
        this.view.noteUpperDir(canonical);
        this.directories.set(key, { components: canonical, meta });
        return;
      case 'file':
        return this.writeFile(path, meta, body);
      case 'symlink':
        symlinkSync(header.linkTarget, path);
        return this.finishByPath(path, meta, 'symlink');
      case 'char':
      case 'block':
      case 'fifo':
        await this.helper.mknod(path, header.type, 0, header.devMajor, header.devMinor);
        return this.finishByPath(path, meta, 'special');
      case 'hardlink':
        return;
    }
  }

  private async writeFile(path: string, meta: Metadata, body: AsyncIterable<Buffer>): Promise<void> {
    // O_EXCL|O_NOFOLLOW: a new inode, never an existing file or a symlink's target.
    const fd = openSync(path, WRITE_FLAGS, 0o600);
    try {
      for await (const chunk of body) {
        let offset = 0;
        while (offset < chunk.length) offset += writeSync(fd, chunk, offset, chunk.length - offset);
      }
      if (this.ownership) fchownSync(fd, meta.uid, meta.gid);
      fchmodSync(fd, meta.mode);
      await this.setXattrs(path, meta.xattrs, true);
      futimesSync(fd, meta.mtime, meta.mtime);
    } finally {
      closeSync(fd);
    }
  }

  /** The host path a hardlink may point at: in the upper tree, copied up from a lower layer if needed. */
  private async linkSource(target: string[]): Promise<string> {
    const name = target.at(-1);
    if (name === undefined) throw new RefusedEntry('hardlink to the root directory');
    const found = await this.view.lookup(target.slice(0, -1), name);
    if (found === undefined) throw new RefusedEntry(`hardlink target /${target.join('/')} does not exist`);
    if (found.stat.isDirectory())
      throw new RefusedEntry(`hardlink target /${target.join('/')} is a directory`);
    if (found.layer === -1) return found.hostPath;
    await this.ensureDir(target.slice(0, -1));
    return this.copyUp(target, found);
  }

  /** Copy a non-directory from a lower layer into the upper tree, as overlayfs would. */
  private async copyUp(target: string[], found: Located): Promise<string> {
    const path = this.view.upperPath(target);
    const { stat } = found;
    const [xattrs] = await this.helper.xattrs([found.hostPath]);
    const meta: Metadata = {
      uid: stat.uid,
      gid: stat.gid,
      mode: stat.mode & 0o7777,
      mtime: stat.mtimeMs / 1000,
      xattrs: new Map([...(xattrs ?? [])].filter(([name]) => !isOverlayXattr(name))),
    };
    if (stat.isFile()) {
      copyFileSync(found.hostPath, path, constants.COPYFILE_EXCL);
      await this.finishByPath(path, meta, 'file');
    } else if (stat.isSymbolicLink()) {
      symlinkSync(readlinkSync(found.hostPath), path);
      await this.finishByPath(path, meta, 'symlink');
    } else {
      if (stat.isSocket()) throw new RefusedEntry(`hardlink target /${target.join('/')} is a socket`);
      const kind = stat.isCharacterDevice() ? 'char' : stat.isBlockDevice() ? 'block' : 'fifo';
      const { major, minor } = splitDev(stat.rdev);
      await this.helper.mknod(path, kind, 0, major, minor);
      await this.finishByPath(path, meta, 'special');
    }
    return path;
  }

  private async whiteout(components: string[], marker: string): Promise<void> {
    const parent = await this.view.resolve(components.slice(0, -1), true);
    if (marker === OPAQUE_MARKER) return this.opaque(parent);
    const name = marker.slice(WHITEOUT_PREFIX.length);
    // `.wh..wh.*` other than the opaque marker is AUFS bookkeeping: nothing to apply.
    if (name.startsWith(WHITEOUT_PREFIX)) return;
    if (name === '' || name === '.' || name === '..')
      throw new RefusedEntry(`whiteout ${JSON.stringify(marker)} names no file`);
    const target = [...parent, name];
    if (this.written.has(target.join('/'))) return;
    if (!this.view.overlay) {
      if (await this.view.isRealUpperDir(parent)) await this.removeUpper(target);
      return;
    }
    await this.ensureDir(parent);
    await this.removeUpper(target);
    await this.helper.mknod(this.view.upperPath(target), 'char', 0, 0, 0);
  }

  private async opaque(dir: string[]): Promise<void> {
    if (this.view.overlay) {
      await this.ensureDir(dir);
      await this.makeOpaque(dir);
      return;
    }
    if (await this.view.isRealUpperDir(dir)) await this.pruneUnwritten(dir);
  }

  /** Flat mode's opaque directory: delete everything below `dir` that this layer did not write. */
  private async pruneUnwritten(dir: string[]): Promise<void> {
    const names = readdirSync(this.view.upperPath(dir));
    for (const name of names) {
      const child = [...dir, name];
      if (!this.written.has(child.join('/'))) await this.removeUpper(child);
      else if (lstatSyncOrUndefined(this.view.upperPath(child))?.isDirectory())
        await this.pruneUnwritten(child);
    }
  }

  /** Directory metadata last, deepest first, on directories that are still real directories. */
  async finish(): Promise<void> {
    const entries = [...this.directories.values()].sort((a, b) => b.components.length - a.components.length);
    for (const { components, meta } of entries) {
      if (!(await this.view.isRealUpperDir(components))) continue;
      await this.finishByPath(this.view.upperPath(components), meta, 'directory');
    }
  }
}

/**
 * Stream the layer in `input` (gzip, zstd or plain tar) into `target` on the calling thread, with
 * blocking filesystem calls: only the apply worker (apply-worker.ts) runs this.
 */
export async function applyInThread(
  input: AsyncIterable<Uint8Array>,
  target: string,
  options: ApplyOptions,
): Promise<ApplyResult> {
  const layer = await openLayerStream(input, options);
  const helper = new FsHelper();
  const applier = new Applier(target, options, helper);
  const skipped: ApplyResult['skipped'] = [];
  let entries = 0;
  try {
    for await (const { header, body } of readTar(layer.source)) {
      entries++;
      try {
        await applier.entry(header, body);
      } catch (err) {
        if (!(err instanceof RefusedEntry)) {
          if (err instanceof BerthError) throw err;
          const message = err instanceof Error ? err.message : String(err);
          throw internal(`cannot apply layer entry ${JSON.stringify(header.path)}: ${message}`, err);
        }
        if (options.onRefused !== 'skip')
          throw invalidArgument(`layer entry ${JSON.stringify(header.path)} refused: ${err.message}`);
        skipped.push({ path: header.path, reason: err.message });
      }
    }
    await applier.finish();
    // The diff ID covers the whole uncompressed stream, padding after the end marker included.
    for await (const chunk of layer.source.rest()) void chunk;
  } finally {
    await layer.source.close();
    await helper.close();
  }
  return { diffId: layer.diffId, size: layer.size, compression: layer.compression, entries, skipped };
}
