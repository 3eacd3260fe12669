/**
 * COPY and ADD with Docker's rules, as a tar stream applied onto a step's snapshot:
 * - sources are paths in a source tree (the context, another stage, an image), cleaned so they
 *   never leave it; wildcards (`*`, `?`, `[...]`, Go's filepath.Match) match path by path;
 * - a directory source copies its contents, not itself; a symlink named as a source is followed
 *   inside the tree; symlinks inside copied directories are copied as symlinks;
 * - the destination is relative to WORKDIR unless absolute; it is a directory when it ends in `/`
 *   or already is one (symlinks followed inside the image), and must be with several sources;
 * - files become root's (or --chown's: names resolved through the image's /etc/passwd and
 *   /etc/group) and keep their mode (or get --chmod's) and modification time; missing
 *   destination directories are created with mode 0755 and the same owner.
 */
import { constants } from 'node:fs';
import { lstat, open, readFile, readdir, readlink, stat as statFollow } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { FsHelper } from '../archive/fs-helper.js';
import { cleanEntryPath, TreeView } from '../archive/tree-view.js';
import { encodeTarHeader, tarPadding, tarTrailer, type TarEntry } from '../archive/tar-writer.js';
import { errnoCode, invalidArgument } from '../common/errors.js';

const READ_CHUNK = 1024 * 1024;
const MAX_SYMLINKS = 40;

/** One resolved source: a host path (file, directory, symlink) or content in memory (heredocs). */
export type CopySource =
  | { kind: 'path'; name: string; hostPath: string; isDir: boolean; preserveOwner?: boolean; mode?: number }
  | { kind: 'content'; name: string; content: Buffer; mode: number };

export interface Owner {
  uid: number;
  gid: number;
}

const WILDCARD = /[*?[]/;
export const hasWildcard = (pattern: string): boolean => WILDCARD.test(pattern.replace(/\\./g, ''));

/** Go's filepath.Match for one path component, as a regular expression. */
export function componentPattern(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '\\' && i + 1 < pattern.length) source += escapeRegex(pattern[++i] as string);
    else if (ch === '*') source += '[^/]*';
    else if (ch === '?') source += '[^/]';
    else if (ch === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) throw invalidArgument(`syntax error in pattern: ${pattern}`);
      let body = pattern.slice(i + 1, end);
      if (body.startsWith('^') || body.startsWith('!')) body = `^${body.slice(1)}`;
      source += `[${body.replace(/\\(.)/g, '\\$1')}]`;
      i = end;
    } else source += escapeRegex(ch);
  }
  return new RegExp(`^${source}$`);
}

const escapeRegex = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Resolve `components` inside the plain directory `root`, following symlinks inside it. */
export async function resolveInTree(root: string, components: string[]): Promise<string> {
  const resolved: string[] = [];
  const todo = [...components];
  let links = 0;
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const host = join(root, ...resolved, part);
    let stat;
    try {
      stat = await lstat(host);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') {
        resolved.push(part, ...todo);
        break;
      }
      throw err;
    }
    if (stat.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw invalidArgument(`too many levels of symbolic links at ${host}`);
      const target = await readlink(host);
      if (target.startsWith('/')) resolved.length = 0;
      todo.unshift(...target.split('/'));
      continue;
    }
    resolved.push(part);
  }
  return join(root, ...resolved);
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
    throw err;
  }
}

/**
 * The sources a pattern names in the tree `root`: itself, or every path a wildcard pattern
 * matches. `what` names the tree in errors ("build context", "stage build").
 */
export async function matchSources(root: string, pattern: string, what: string): Promise<CopySource[]> {
  const components = cleanEntryPath(posix.normalize(`/${pattern}`));
  if (!hasWildcard(pattern)) {
    const host = await resolveInTree(root, components);
    if (!(await exists(host)))
      throw invalidArgument(
        `COPY failed: file not found in ${what}${what === 'build context' ? ' or excluded by .dockerignore' : ''}: stat ${pattern}: file does not exist`,
      );
    const stat = await statFollow(host);
    return [{ kind: 'path', name: components.join('/') || '.', hostPath: host, isDir: stat.isDirectory() }];
  }
  const matchers = components.map(componentPattern);
  const found: CopySource[] = [];
  const walk = async (relative: string[], depth: number): Promise<void> => {
    const matcher = matchers[depth] as RegExp;
    let names: string[];
    try {
      names = (await readdir(join(root, ...relative))).sort();
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
      throw err;
    }
    for (const name of names) {
      if (!matcher.test(name)) continue;
      const path = [...relative, name];
      const host = join(root, ...path);
      const stat = await lstat(host);
      if (depth === matchers.length - 1) {
        const isDir =
          stat.isDirectory() ||
          (stat.isSymbolicLink() && (await statFollow(host).catch(() => stat)).isDirectory());
        found.push({
          kind: 'path',
          name: path.join('/'),
          hostPath: stat.isSymbolicLink() ? await resolveInTree(root, path) : host,
          isDir,
        });
      } else if (stat.isDirectory()) await walk(path, depth + 1);
    }
  };
  await walk([], 0);
  if (found.length === 0)
    throw invalidArgument(
      `COPY failed: no source files were specified: ${pattern} matches nothing in the ${what}`,
    );
  return found;
}

/** `--chmod`: octal permission bits. */
export function parseChmod(text: string): number {
  if (!/^[0-7]{3,4}$/.test(text))
    throw invalidArgument(`invalid chmod parameter: ${text} (give octal permission bits, like 755)`);
  return parseInt(text, 8);
}

function lookupId(text: string, file: string | undefined, kind: 'user' | 'group'): number {
  if (/^\d+$/.test(text)) return Number(text);
  for (const line of (file ?? '').split('\n')) {
    const fields = line.split(':');
    if (fields[0] === text && fields[2] !== undefined && /^\d+$/.test(fields[2])) return Number(fields[2]);
  }
  throw invalidArgument(
    `unable to convert uid/gid chown string to host mapping: can't find ${kind === 'user' ? 'uid for user' : 'gid for group'} ${text}: no such ${kind}: ${text}`,
  );
}

/** The image's files for one COPY/ADD: a merged view of a snapshot's upper directory over its lowers. */
export class DestinationView {
  private readonly helper = new FsHelper();
  readonly view: TreeView;

  constructor(upper: string, lowers: string[]) {
    this.view = new TreeView(upper, lowers, true, this.helper);
  }

  async close(): Promise<void> {
    await this.helper.close();
  }

  /** Canonical components of an absolute path in the image, every symlink followed. */
  resolve(path: string): Promise<string[]> {
    return this.view.resolve(cleanEntryPath(path), true);
  }

  async kind(components: string[]): Promise<'dir' | 'other' | undefined> {
    if (components.length === 0) return 'dir';
    const found = await this.view.lookup(components.slice(0, -1), components.at(-1) as string);
    if (found === undefined) return undefined;
    return found.stat.isDirectory() ? 'dir' : 'other';
  }

  async readFile(path: string): Promise<string | undefined> {
    const components = await this.resolve(path);
    if (components.length === 0) return undefined;
    const found = await this.view.lookup(components.slice(0, -1), components.at(-1) as string);
    if (found === undefined || !found.stat.isFile()) return undefined;
    return readFile(found.hostPath, 'utf8');
  }

  /** `--chown=user[:group]` with Docker's rules: a lone user is also the group name. */
  async owner(chown: string): Promise<Owner> {
    const parts = chown.split(':');
    if (parts.length > 2 || parts[0] === '') throw invalidArgument(`invalid chown string format: ${chown}`);
    const user = parts[0] as string;
    const group = parts[1] ?? user;
    const numeric = /^\d+$/;
    const passwd = numeric.test(user) ? undefined : await this.readFile('/etc/passwd');
    const groups = numeric.test(group) ? undefined : await this.readFile('/etc/group');
    return { uid: lookupId(user, passwd, 'user'), gid: lookupId(group, groups, 'group') };
  }
}

export interface CopyOptions {
  /** The destination as written (after expansion), absolute or relative to `workdir`. */
  dest: string;
  workdir: string;
  owner?: Owner;
  chmod?: number;
  /** Creation time for directories COPY makes (seconds). */
  now: number;
  /** Instruction name, for errors. */
  instruction: string;
}

interface Item {
  source: CopySource;
  /** Canonical components of where it goes (a directory source: the directory its contents go into). */
  target: string[];
}

/** Plan where each source goes and which destination directories must be made. */
async function plan(
  dest: DestinationView,
  sources: CopySource[],
  options: CopyOptions,
): Promise<{ items: Item[]; makeDirs: string[][] }> {
  const absolute = posix.isAbsolute(options.dest)
    ? options.dest
    : posix.join(options.workdir || '/', options.dest);
  const hintDir = /\/\.?$/.test(options.dest) || options.dest === '.' || absolute === '/';
  const target = await dest.resolve(absolute);
  const existing = await dest.kind(target);
  const isDir = hintDir || existing === 'dir';
  const several = sources.length > 1;
  if (several && !isDir)
    throw invalidArgument(
      `When using ${options.instruction} with more than one source file, the destination must be a directory and end with a /`,
    );
  const items: Item[] = [];
  const dirs = new Map<string, string[]>();
  const needDir = async (components: string[]): Promise<void> => {
    for (let i = 1; i <= components.length; i++) {
      const prefix = components.slice(0, i);
      const key = prefix.join('/');
      if (dirs.has(key)) continue;
      const kind = await dest.kind(prefix);
      if (kind === 'other' && i < components.length)
        throw invalidArgument(`${options.instruction} failed: /${key} in the image is not a directory`);
      if (kind === undefined) dirs.set(key, prefix);
    }
  };
  // No sources (WORKDIR): only the destination directory is made.
  if (sources.length === 0) await needDir(target);
  for (const source of sources) {
    const into = source.kind === 'path' && source.isDir;
    if (into || isDir) await needDir(target);
    else await needDir(target.slice(0, -1));
    const name = posix.basename(source.name);
    items.push({ source, target: into || !isDir ? target : [...target, name] });
  }
  return { items, makeDirs: [...dirs.values()] };
}

async function* fileBytes(entry: TarEntry, path: string, size: number): AsyncGenerator<Buffer> {
  yield* encodeTarHeader(entry, size);
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    let left = size;
    while (left > 0) {
      const buffer = Buffer.allocUnsafe(Math.min(left, READ_CHUNK));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) throw invalidArgument(`${path} shrank while it was copied`);
      left -= bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
  yield tarPadding(size);
}

/** The tar stream that performs a COPY/ADD when applied onto the destination snapshot. */
export async function copyStream(
  dest: DestinationView,
  sources: CopySource[],
  options: CopyOptions,
): Promise<AsyncGenerator<Buffer>> {
  const { items, makeDirs } = await plan(dest, sources, options);
  const owner = options.owner ?? { uid: 0, gid: 0 };
  const meta = (stat: { mode: number; uid: number; gid: number; mtimeMs: number }, preserve: boolean) => ({
    mode: options.chmod ?? stat.mode & 0o7777,
    uid: preserve ? stat.uid : owner.uid,
    gid: preserve ? stat.gid : owner.gid,
    mtime: Math.floor(stat.mtimeMs / 1000),
  });
  const walk = async function* (host: string, path: string, preserve: boolean): AsyncGenerator<Buffer> {
    for (const name of (await readdir(host)).sort()) {
      const child = join(host, name);
      const childPath = `${path}/${name}`;
      const stat = await lstat(child);
      const base = { path: childPath, ...meta(stat, preserve) };
      if (stat.isDirectory()) {
        yield* encodeTarHeader({ ...base, type: 'directory' });
        yield* walk(child, childPath, preserve);
      } else if (stat.isFile()) yield* fileBytes({ ...base, type: 'file' }, child, stat.size);
      else if (stat.isSymbolicLink())
        yield* encodeTarHeader({
          ...base,
          mode: stat.mode & 0o7777,
          type: 'symlink',
          linkTarget: await readlink(child),
        });
    }
  };
  return (async function* () {
    for (const dir of makeDirs)
      yield* encodeTarHeader({
        path: dir.join('/'),
        type: 'directory',
        mode: 0o755,
        ...owner,
        mtime: options.now,
      });
    for (const { source, target } of items) {
      const path = target.join('/');
      if (source.kind === 'content') {
        const entry: TarEntry = {
          path,
          type: 'file',
          mode: options.chmod ?? source.mode,
          ...owner,
          mtime: options.now,
          content: source.content,
        };
        yield* encodeTarHeader(entry);
        yield Buffer.from(source.content);
        yield tarPadding(source.content.length);
        continue;
      }
      const preserve = source.preserveOwner === true;
      if (source.isDir) {
        yield* walk(source.hostPath, path, preserve);
        continue;
      }
      const stat = await statFollow(source.hostPath);
      const base = {
        path,
        ...meta(stat, preserve),
        ...(source.mode !== undefined && options.chmod === undefined ? { mode: source.mode } : {}),
      };
      yield* fileBytes({ ...base, type: 'file' }, source.hostPath, stat.size);
    }
    yield tarTrailer();
  })();
}

/** Read a file a source names, for archive detection. */
export async function readHead(path: string, length: number): Promise<Buffer> {
  const handle = await open(path, constants.O_RDONLY);
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
