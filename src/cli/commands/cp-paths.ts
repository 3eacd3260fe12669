/**
 * The path rules of `docker cp` (the docker CLI's cp.go and moby's archive/copy.go), with Go's
 * filepath semantics: which directory an archive is extracted into and how its entries are renamed,
 * so that `cp SRC DST` means what it means for `cp` — into an existing directory, as a new name, a
 * trailing `/` asserting a directory, `/.` meaning a directory's contents.
 */
import { posix, resolve } from 'node:path';

/** Go's filepath.Clean. */
export function goClean(path: string): string {
  if (path === '') return '.';
  const cleaned = posix.normalize(path);
  return cleaned.length > 1 ? cleaned.replace(/\/+$/, '') : cleaned;
}

/** Go's filepath.Base: `/` for the root, `.` for an empty path. */
export function goBase(path: string): string {
  if (path === '') return '.';
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** Go's filepath.Dir. */
export function goDir(path: string): string {
  const slash = path.lastIndexOf('/');
  return goClean(slash === -1 ? '.' : path.slice(0, slash + 1));
}

/** Go's filepath.Join (empty elements ignored, the result cleaned). */
export function goJoin(...parts: string[]): string {
  const kept = parts.filter((part) => part !== '');
  return kept.length === 0 ? '' : goClean(kept.join('/'));
}

export const specifiesCurrentDir = (path: string): boolean => goBase(path) === '.';
export const hasTrailingSeparator = (path: string): boolean => path.endsWith('/');
/** A destination that must be (or become) a directory: `dir/` or `dir/.`. */
export const assertsDirectory = (path: string): boolean =>
  hasTrailingSeparator(path) || specifiesCurrentDir(path);

/** archive.SplitPathDirEntry: the parent and the entry of a path, `dir/.` kept as `dir` and `.`. */
export function splitPathDirEntry(path: string): { dir: string; base: string } {
  let cleaned = goClean(path);
  if (specifiesCurrentDir(path)) cleaned += '/.';
  return { dir: goDir(cleaned), base: goBase(cleaned) };
}

/** archive.PreserveTrailingDotOrSeparator. */
export function preserveTrailingDotOrSeparator(cleaned: string, original: string): string {
  let path = cleaned;
  if (!specifiesCurrentDir(path) && specifiesCurrentDir(original)) {
    if (!hasTrailingSeparator(path)) path += '/';
    path += '.';
  }
  if (!hasTrailingSeparator(path) && hasTrailingSeparator(original)) path += '/';
  return path;
}

/** The docker CLI's resolveLocalPath: absolute, with the trailing `/` or `/.` kept. */
export const resolveLocalPath = (path: string): string => preserveTrailingDotOrSeparator(resolve(path), path);

/**
 * archive.GetRebaseName: `resolved` with `path`'s trailing `/.` or `/` carried over, and the name
 * the archive's entries must take when a followed symlink changed the last component.
 */
export function getRebaseName(path: string, resolved: string): { path: string; rebaseName: string } {
  let result = resolved;
  if (specifiesCurrentDir(path) && !specifiesCurrentDir(result)) result += '/.';
  if (hasTrailingSeparator(path) && !hasTrailingSeparator(result)) result += '/';
  return { path: result, rebaseName: goBase(path) !== goBase(result) ? goBase(path) : '' };
}

/** The first occurrence of `from` in `name` replaced by `to`, as Go's strings.Replace(name, from, to, 1). */
export const replaceFirst = (name: string, from: string, to: string): string => name.replace(from, () => to);

/** archive.RebaseArchiveEntries' renaming of one entry name (the root `/` becomes a plain prefix). */
export function rebaseName(name: string, oldBase: string, newBase: string): string {
  return replaceFirst(name, oldBase === '/' ? '' : oldBase, newBase);
}

export interface CopyInfo {
  path: string;
  exists: boolean;
  isDir: boolean;
}

export class CopyError extends Error {}

/**
 * archive.PrepareArchiveCopy: the directory to extract into and how the entries are renamed
 * (undefined: as they are).
 */
export function prepareArchiveCopy(
  src: Pick<CopyInfo, 'path' | 'isDir'> & { rebaseName?: string },
  dst: CopyInfo,
): { dir: string; rename?: { from: string; to: string } } {
  const { dir: dstDir, base: dstBase } = splitPathDirEntry(dst.path);
  // Entries already renamed after a followed symlink carry that name.
  const srcBase = src.rebaseName || splitPathDirEntry(src.path).base;
  if (dst.exists && dst.isDir) return { dir: dst.path };
  if (dst.exists && src.isDir) throw new CopyError('cannot copy directory');
  if (!dst.exists && !src.isDir && assertsDirectory(dst.path)) throw new CopyError('no such directory');
  return { dir: dstDir, rename: { from: srcBase, to: dstBase } };
}
