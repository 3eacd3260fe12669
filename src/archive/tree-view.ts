/**
 * Path resolution inside a root, as if chrooted into it, without trusting any symlink.
 *
 * Entry names are cleaned lexically first (a name that climbs above the root is refused), then
 * resolved component by component with lstat: an intermediate component that is a symlink is
 * expanded inside the root (an absolute target restarts at the root, `..` stops at the root),
 * the final component is never followed. Every path handed to a Node.js fs call is built from
 * components checked this way, so nothing outside the root is ever reached. This relies on one
 * writer: nothing else changes the tree while a layer is applied or diffed.
 *
 * In overlay mode the tree is an overlayfs upper directory with read-only lower directories
 * under it (topmost first); lookups see the merged view the kernel will show: whiteouts (0/0
 * character devices) hide names, opaque directories hide the lower content below them.
 */
import { lstatSync, readlinkSync, type Stats } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../common/errors.js';
import type { FsHelper } from './fs-helper.js';

/** Kernel limit on symlinks followed in one lookup (MAXSYMLINKS). */
const MAX_SYMLINKS = 40;

export const OPAQUE_XATTR = 'trusted.overlay.opaque';
export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/** Thrown for entries the safety rules refuse; the applier skips or fails on them. */
export class RefusedEntry extends Error {}

/** Split an archive path into clean components; refuses names that climb above the root. */
export function cleanEntryPath(name: string): string[] {
  if (name.includes('\0')) throw new RefusedEntry('the name contains a NUL byte');
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) throw new RefusedEntry('the path climbs above the root with ".."');
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return parts;
}

export const isWhiteoutDevice = (stat: Stats): boolean => stat.isCharacterDevice() && stat.rdev === 0;

export async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** Synchronous lstat for the apply worker, where a blocking call costs no one else anything. */
export function lstatSyncOrUndefined(path: string): Stats | undefined {
  try {
    // Most lookups during an apply miss: without throwIfNoEntry each miss builds an exception.
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** The two lookups a TreeView makes: asynchronous on the main thread, synchronous in a worker. */
export interface TreeFs {
  lstat(path: string): Stats | undefined | Promise<Stats | undefined>;
  readlink(path: string): string | Promise<string>;
}

export const asyncTreeFs: TreeFs = { lstat: lstatOrUndefined, readlink: (path) => readlink(path) };
export const syncTreeFs: TreeFs = { lstat: lstatSyncOrUndefined, readlink: (path) => readlinkSync(path) };

export interface Located {
  /** -1: the upper (target) tree; otherwise the index into `lowers`. */
  layer: number;
  stat: Stats;
  hostPath: string;
}

export class TreeView {
  /** Canonical directories known to be real directories in the upper tree. */
  private readonly upperDirs = new Set<string>();
  /** Directories made opaque in the upper tree by this apply. */
  readonly upperOpaque = new Set<string>();
  /** For a canonical directory: the lower layers in which it is a visible directory. */
  private readonly lowerDirCache = new Map<string, number[]>();

  constructor(
    readonly upper: string,
    readonly lowers: string[],
    readonly overlay: boolean,
    private readonly helper: FsHelper,
    private readonly fs: TreeFs = asyncTreeFs,
  ) {}

  upperPath(components: string[]): string {
    return components.length === 0 ? this.upper : join(this.upper, ...components);
  }

  noteUpperDir(components: string[]): void {
    this.upperDirs.add(components.join('/'));
  }

  /** After a directory is removed, forget every cached directory (removals are rare). */
  forgetUpperDirs(): void {
    this.upperDirs.clear();
  }

  private upperBlocksLowers(parent: string[]): boolean {
    if (this.upperOpaque.size === 0) return false;
    for (let i = 0; i <= parent.length; i++)
      if (this.upperOpaque.has(parent.slice(0, i).join('/'))) return true;
    return false;
  }

  private async lowerIsOpaque(layer: number, components: string[]): Promise<boolean> {
    const [values] = await this.helper.xattrs([join(this.lowers[layer] as string, ...components)]);
    return values?.get(OPAQUE_XATTR)?.toString() === 'y';
  }

  /** The lower layers in which `dir` (canonical) is a directory visible through the layers above. */
  private async lowerDirs(dir: string[]): Promise<number[]> {
    if (dir.length === 0) return this.lowers.map((_, i) => i);
    const key = dir.join('/');
    const cached = this.lowerDirCache.get(key);
    if (cached !== undefined) return cached;
    const visible: number[] = [];
    for (const layer of await this.lowerDirs(dir.slice(0, -1))) {
      const stat = await this.fs.lstat(join(this.lowers[layer] as string, ...dir));
      if (stat === undefined) continue;
      if (!stat.isDirectory()) break; // a file or whiteout hides everything below it
      visible.push(layer);
      if (await this.lowerIsOpaque(layer, dir)) break;
    }
    this.lowerDirCache.set(key, visible);
    return visible;
  }

  /** `name` inside the canonical directory `parent` as the merged view shows it. */
  async lookup(parent: string[], name: string): Promise<Located | undefined> {
    const components = [...parent, name];
    const upperPath = this.upperPath(components);
    const stat = await this.fs.lstat(upperPath);
    if (stat !== undefined) {
      if (this.overlay && isWhiteoutDevice(stat)) return undefined;
      return { layer: -1, stat, hostPath: upperPath };
    }
    return this.lookupLower(parent, name);
  }

  /** Like lookup, but only in the lower layers (what an upper entry would hide). */
  async lookupLower(parent: string[], name: string): Promise<Located | undefined> {
    if (this.lowers.length === 0 || this.upperBlocksLowers(parent)) return undefined;
    for (const layer of await this.lowerDirs(parent)) {
      const hostPath = join(this.lowers[layer] as string, ...parent, name);
      const stat = await this.fs.lstat(hostPath);
      if (stat === undefined) continue;
      if (isWhiteoutDevice(stat)) return undefined;
      return { layer, stat, hostPath };
    }
    return undefined;
  }

  /**
   * Resolve clean components to a canonical path (no symlink anywhere in it). Intermediate
   * symlinks are expanded inside the root; the final component is followed only when asked.
   * Missing components are kept as they are (the caller creates or refuses them).
   */
  async resolve(components: string[], followFinal: boolean): Promise<string[]> {
    let resolved: string[] = [];
    const todo = [...components].reverse();
    let followed = 0;
    while (todo.length > 0) {
      const part = todo.pop() as string;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        resolved.pop();
        continue;
      }
      if (todo.length === 0 && !followFinal) {
        resolved.push(part);
        break;
      }
      const key = resolved.length === 0 ? part : `${resolved.join('/')}/${part}`;
      if (this.upperDirs.has(key)) {
        resolved.push(part);
        continue;
      }
      const found = await this.lookup(resolved, part);
      if (found?.stat.isSymbolicLink()) {
        if (++followed > MAX_SYMLINKS) throw new RefusedEntry('too many levels of symbolic links');
        const target = await this.fs.readlink(found.hostPath);
        if (target.startsWith('/')) resolved = [];
        for (const piece of target.split('/').reverse()) todo.push(piece);
        continue;
      }
      if (found?.layer === -1 && found.stat.isDirectory()) this.upperDirs.add(key);
      resolved.push(part);
    }
    return resolved;
  }

  /** True when every prefix of `components` in the upper tree is a real directory (not a symlink). */
  async isRealUpperDir(components: string[]): Promise<boolean> {
    for (let i = 1; i <= components.length; i++) {
      const stat = await this.fs.lstat(this.upperPath(components.slice(0, i)));
      if (stat === undefined || !stat.isDirectory()) return false;
    }
    return true;
  }

  isKnownUpperDir(components: string[]): boolean {
    return components.length === 0 || this.upperDirs.has(components.join('/'));
  }
}
