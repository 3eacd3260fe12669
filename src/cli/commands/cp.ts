/**
 * `cp` both ways through the archive endpoints, as the docker CLI does it: berth builds and unpacks
 * the tar archives itself, renaming the top entry by docker's rules (cp-paths.ts) so that `cp a b`
 * means what it means for `cp` — `ctr:/ out` makes `out` a copy of the container's root, `ctr:/etc
 * dir` puts `etc` into an existing `dir`, `ctr:/etc/. dir` its contents. `-` is a tar stream on
 * stdin (to a container directory) or stdout (the daemon's archive as it comes).
 *
 * Extraction follows docker's Untar (modes and times from the archive, no ownership, a directory
 * never replaced by a file or the reverse) and never writes outside the destination, not even
 * through a symbolic link. Devices and fifos are not extracted: that needs privileges a copy does
 * not assume.
 */
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import {
  chmod,
  link,
  lstat,
  lutimes,
  mkdir,
  readdir,
  readlink,
  realpath,
  rm,
  stat,
  symlink,
  utimes,
} from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { flagBool, type ParsedArgs } from '../args.js';
import { pathEscape } from '../client.js';
import type { CommandDef } from '../command.js';
import type { CliContext } from '../context.js';
import { ApiError, CommandError } from '../errors.js';
import { humanSizeWithPrecision } from '../format/units.js';
import { errnoCode } from '../../common/errors.js';
import { ByteSource } from '../../archive/byte-source.js';
import { readTar, type TarHeader, type TarReaderEntry } from '../../archive/tar-reader.js';
import { encodeTarHeader, tarPadding, tarTrailer, type TarEntry } from '../../archive/tar-writer.js';
import { splitDev } from '../../archive/tar-pack.js';
import {
  CopyError,
  getRebaseName,
  goBase,
  goClean,
  goDir,
  goJoin,
  hasTrailingSeparator,
  prepareArchiveCopy,
  rebaseName,
  replaceFirst,
  resolveLocalPath,
  splitPathDirEntry,
  type CopyInfo,
} from './cp-paths.js';

/** Go's os.FileMode bits in X-Docker-Container-Path-Stat. */
const MODE_DIR = 2 ** 31;
const MODE_SYMLINK = 2 ** 27;
const MODE_DEVICE = 2 ** 26;
const MODE_IRREGULAR = 2 ** 19;
const MAX_SYMLINKS = 10;

interface PathStat {
  name: string;
  size: number;
  mode: number;
  linkTarget: string;
}

/** Go's texts for the errno values a copy meets, as in "lstat /x: no such file or directory". */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ELOOP: 'too many levels of symbolic links',
  EISDIR: 'is a directory',
};

function pathError(op: string, path: string, err: unknown): CommandError {
  const code = errnoCode(err);
  return new CommandError(`${op} ${path}: ${(code && ERRNO_TEXT[code]) ?? (err as Error).message}`);
}

const copyError = (err: unknown): unknown => (err instanceof CopyError ? new CommandError(err.message) : err);

function decodeStat(header: string | string[] | undefined): PathStat | undefined {
  if (typeof header !== 'string' || header === '') return undefined;
  try {
    return JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as PathStat;
  } catch {
    return undefined;
  }
}

/**
 * "CONTAINER:PATH" or a local path, as docker splits it: an absolute path, a path without a
 * colon, or one whose part before the colon starts with `.` is local.
 */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/')) return { path: arg };
  const colon = arg.indexOf(':');
  if (colon === -1 || arg.startsWith('.')) return { path: arg };
  const container = arg.slice(0, colon);
  return container === '' ? { path: arg.slice(1) } : { container, path: arg.slice(colon + 1) };
}

/** The daemon's stat of a container path; undefined when it cannot say (docker ignores why). */
async function statContainerPath(
  ctx: CliContext,
  container: string,
  path: string,
): Promise<PathStat | undefined> {
  try {
    const res = await ctx
      .client()
      .request('HEAD', `/containers/${pathEscape(container)}/archive`, { query: { path } });
    res.resume();
    return decodeStat(res.headers['x-docker-container-path-stat']);
  } catch (err) {
    if (err instanceof ApiError) return undefined;
    throw err;
  }
}

/** A symlink's target joined to the link's directory when relative. */
function linkPath(path: string, target: string): string {
  return target.startsWith('/') ? target : goJoin(splitPathDirEntry(path).dir, target);
}

// ---- local paths ---------------------------------------------------------------------------------

/** The docker CLI's ValidateOutputPath for a copy out of a container. */
async function validateOutputPath(path: string): Promise<void> {
  const dir = goDir(goClean(path));
  if (dir !== '.') {
    const missing = await stat(dir).then(
      () => false,
      (err: unknown) => errnoCode(err) === 'ENOENT',
    );
    if (missing)
      throw new CommandError(`invalid output path: directory ${JSON.stringify(dir)} does not exist`);
  }
  let info: Stats;
  try {
    info = await stat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw pathError('stat', path, err);
  }
  if (info.isBlockDevice() || info.isCharacterDevice())
    throw new CommandError(
      `invalid output path: ${JSON.stringify(path)} must be a directory or a regular file: got a device`,
    );
}

/** archive.CopyInfoDestinationPath: the destination with symlinks followed; its parent must exist. */
async function destinationInfo(path: string): Promise<CopyInfo> {
  let current = path;
  let info = await lstat(current).catch((err: unknown) => err as Error);
  for (let n = 0; !(info instanceof Error) && info.isSymbolicLink(); n++) {
    if (n > MAX_SYMLINKS) throw new CommandError(`too many symlinks in ${path}`);
    current = linkPath(current, await readlink(current));
    info = await lstat(current).catch((err: unknown) => err as Error);
  }
  if (!(info instanceof Error)) return { path: current, exists: true, isDir: info.isDirectory() };
  if (errnoCode(info) !== 'ENOENT') throw pathError('lstat', current, info);
  const parent = splitPathDirEntry(current).dir;
  const parentInfo = await stat(parent).catch((err: unknown) => {
    throw pathError('stat', parent, err);
  });
  if (!parentInfo.isDirectory()) throw new CommandError('not a directory');
  return { path: current, exists: false, isDir: false };
}

/** Where filepath.EvalSymlinks fails: the first component that cannot be looked at. */
async function evalError(path: string, err: unknown): Promise<CommandError> {
  const parts = path.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const prefix = `/${parts.slice(0, i).join('/')}`;
    const failure = await lstat(prefix).then(
      () => undefined,
      (lstatErr: unknown) => lstatErr,
    );
    if (failure !== undefined) return pathError('lstat', prefix, failure);
  }
  return pathError('lstat', path, err);
}

/** archive.CopyInfoSourcePath: the local source, symlinks in its parent resolved (all of them with -L). */
async function sourceInfo(path: string, followLink: boolean): Promise<CopyInfo & { rebaseName: string }> {
  let resolved: string;
  let rebase = '';
  if (followLink) {
    const real = await realpath(path).catch(async (err: unknown) => {
      throw await evalError(path, err);
    });
    ({ path: resolved, rebaseName: rebase } = getRebaseName(path, real));
  } else {
    const slash = path.lastIndexOf('/');
    const dir = path.slice(0, slash + 1);
    const realDir = await realpath(dir).catch(async (err: unknown) => {
      throw await evalError(dir, err);
    });
    resolved = `${realDir}/${path.slice(slash + 1)}`;
    if (hasTrailingSeparator(path) && goBase(path) !== goBase(resolved)) rebase = goBase(path);
  }
  const info = await lstat(resolved).catch((err: unknown) => {
    throw pathError('lstat', resolved, err);
  });
  return { path: resolved, exists: true, isDir: info.isDirectory(), rebaseName: rebase };
}

// ---- archives ------------------------------------------------------------------------------------

type Entry = Pick<TarReaderEntry, 'header' | 'body'>;

/** archive.RebaseArchiveEntries: the first occurrence of `from` in each name becomes `to`. */
async function* renamed(entries: AsyncIterable<Entry>, from: string, to: string): AsyncGenerator<Entry> {
  for await (const { header, body } of entries) {
    const renamedHeader: TarHeader = {
      ...header,
      path: rebaseName(header.path, from, to),
      linkTarget: header.type === 'hardlink' ? rebaseName(header.linkTarget, from, to) : header.linkTarget,
    };
    yield { header: renamedHeader, body };
  }
}

/**
 * The tar of a local path as archive.TarResourceRebase makes it: entries named from the path's
 * base (`.` for `dir/.`), or from `rebase`, then renamed by `rename` (PrepareArchiveCopy's
 * rebasing); hardlinked files after the first are links.
 */
async function* localTar(
  source: string,
  rebase: string,
  rename: { from: string; to: string } | undefined,
): AsyncGenerator<Buffer> {
  const { dir: sourceDir, base: sourceBase } = splitPathDirEntry(source);
  const inodes = new Map<string, string>();
  const nameOf = (filePath: string): string => {
    let name = posix.relative(sourceDir, filePath) || '.';
    if (sourceBase === '.' && name !== '.') name = `./${name}`;
    if (rebase !== '') name = replaceFirst(name, sourceBase, rebase === '/' ? '' : rebase);
    return rename ? rebaseName(name, rename.from, rename.to) : name;
  };
  async function* walk(filePath: string): AsyncGenerator<Buffer> {
    const info = await lstat(filePath);
    const name = nameOf(filePath);
    const base = {
      path: name,
      mode: info.mode & 0o7777,
      uid: info.uid,
      gid: info.gid,
      mtime: Math.floor(info.mtimeMs / 1000),
    };
    const header = (entry: TarEntry, size?: number): Buffer => Buffer.concat(encodeTarHeader(entry, size));
    if (info.isDirectory()) {
      yield header({ ...base, type: 'directory' });
      for (const child of (await readdir(filePath)).sort()) yield* walk(posix.join(filePath, child));
    } else if (info.isSymbolicLink()) {
      yield header({ ...base, type: 'symlink', linkTarget: await readlink(filePath) });
    } else if (info.isFile()) {
      const inode = `${info.dev}:${info.ino}`;
      const first = info.nlink > 1 ? inodes.get(inode) : undefined;
      if (first !== undefined) {
        yield header({ ...base, type: 'hardlink', linkTarget: first });
        return;
      }
      if (info.nlink > 1) inodes.set(inode, name);
      yield header({ ...base, type: 'file' }, info.size);
      let written = 0;
      if (info.size > 0)
        for await (const chunk of createReadStream(filePath, { end: info.size - 1 })) {
          written += (chunk as Buffer).length;
          yield chunk as Buffer;
        }
      if (written !== info.size) throw new CommandError(`${filePath} changed size while it was copied`);
      yield tarPadding(info.size);
    } else if (info.isFIFO()) {
      yield header({ ...base, type: 'fifo' });
    } else if (info.isCharacterDevice() || info.isBlockDevice()) {
      const { major, minor } = splitDev(info.rdev);
      const type = info.isCharacterDevice() ? 'char' : 'block';
      yield header({ ...base, type, devMajor: major, devMinor: minor });
    }
    // Sockets cannot be archived: docker skips them too.
  }
  yield* walk(goJoin(sourceDir, sourceBase));
  yield tarTrailer();
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  return lstat(path).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  });
}

const within = (root: string, path: string): boolean => path === root || path.startsWith(`${root}/`);

/** docker's Untar into `dest` (NoLchown, NoOverwriteDirNonDir), refusing to leave `dest`. */
async function untar(entries: AsyncIterable<Entry>, dest: string): Promise<void> {
  const root = goClean(dest);
  const realRoot = await realpath(root);
  const dirs: Array<[string, Date]> = [];
  for await (const { header, body } of entries) {
    const name = goClean(header.path);
    const path = goJoin(root, name);
    const rel = posix.relative(root, path);
    if (rel === '..' || rel.startsWith('../'))
      throw new CommandError(`${JSON.stringify(header.path)} is outside of ${JSON.stringify(root)}`);
    if (path !== root) {
      const parent = posix.dirname(path);
      if ((await lstatOrUndefined(parent)) === undefined)
        await mkdir(parent, { recursive: true, mode: 0o755 });
      // Through a symlink an entry could land anywhere on the host.
      if (!within(realRoot, await realpath(parent)))
        throw new CommandError(`refusing to extract ${JSON.stringify(header.path)}: it would leave ${root}`);
    }
    const existing = await lstatOrUndefined(path);
    const isDir = header.type === 'directory';
    if (existing) {
      if (existing.isDirectory() && !isDir)
        throw new CommandError(
          `cannot overwrite directory ${JSON.stringify(path)} with non-directory ${JSON.stringify(root)}`,
        );
      if (!existing.isDirectory() && isDir)
        throw new CommandError(
          `cannot overwrite non-directory ${JSON.stringify(path)} with directory ${JSON.stringify(root)}`,
        );
      if (existing.isDirectory() && name === '.') continue;
      if (!(existing.isDirectory() && isDir)) await rm(path, { recursive: true, force: true });
    }
    const time = new Date(header.mtime * 1000);
    switch (header.type) {
      case 'directory':
        if (!existing) await mkdir(path, { mode: header.mode & 0o777 });
        dirs.push([path, time]);
        break;
      case 'file':
        await pipeline(Readable.from(body), createWriteStream(path, { mode: header.mode & 0o777 }));
        break;
      case 'symlink': {
        const target = goJoin(posix.dirname(path), header.linkTarget);
        if (!target.startsWith(root))
          throw new CommandError(
            `invalid symlink ${JSON.stringify(path)} -> ${JSON.stringify(header.linkTarget)}`,
          );
        await symlink(header.linkTarget, path);
        await lutimes(path, time, time).catch(() => undefined);
        continue;
      }
      case 'hardlink': {
        const target = goJoin(root, header.linkTarget);
        const targetDir = await realpath(posix.dirname(target)).catch(() => '');
        if (!target.startsWith(root) || !within(realRoot, targetDir))
          throw new CommandError(
            `invalid hardlink ${JSON.stringify(target)} -> ${JSON.stringify(header.linkTarget)}`,
          );
        await link(target, path);
        if ((await lstat(target)).isSymbolicLink()) continue;
        break;
      }
      default:
        continue;
    }
    await chmod(path, header.mode & 0o7777);
    await utimes(path, time, time);
  }
  for (const [dir, time] of dirs) await utimes(dir, time, time);
}

// ---- the two directions --------------------------------------------------------------------------

/** docker prints what it copied when stdout is a terminal, unless -q says otherwise. */
function quiet(ctx: CliContext, args: ParsedArgs): boolean {
  return args.flags.has('quiet') ? flagBool(args, 'quiet') : !ctx.stdout.isTTY;
}

async function copyFromContainer(
  ctx: CliContext,
  container: string,
  source: string,
  destination: string,
  args: ParsedArgs,
): Promise<void> {
  const dstPath = destination === '-' ? '-' : resolveLocalPath(destination);
  await validateOutputPath(dstPath);
  let srcPath = source;
  let rebase = '';
  if (flagBool(args, 'follow-link')) {
    const info = await statContainerPath(ctx, container, srcPath);
    if (info && (info.mode & MODE_SYMLINK) !== 0)
      ({ path: srcPath, rebaseName: rebase } = getRebaseName(srcPath, linkPath(srcPath, info.linkTarget)));
  }
  const res = await ctx
    .client()
    .request('GET', `/containers/${pathEscape(container)}/archive`, { query: { path: srcPath } });
  if (dstPath === '-') {
    await pipeline(res, ctx.stdout as NodeJS.WritableStream, { end: false });
    return;
  }
  const srcStat = decodeStat(res.headers['x-docker-container-path-stat']);
  const srcIsDir = srcStat !== undefined && (srcStat.mode & MODE_DIR) !== 0;
  let size = 0;
  // Counted as it is read: a 'data' listener would start the stream before the reader is there.
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  };
  let entries: AsyncIterable<Entry> = readTar(new ByteSource(counted()));
  if (rebase !== '') entries = renamed(entries, splitPathDirEntry(srcPath).base, rebase);
  try {
    const plan = prepareArchiveCopy(
      { path: srcPath, isDir: srcIsDir, rebaseName: rebase },
      await destinationInfo(dstPath),
    );
    if (plan.rename) entries = renamed(entries, plan.rename.from, plan.rename.to);
    await untar(entries, plan.dir);
  } catch (err) {
    res.destroy();
    throw copyError(err);
  }
  if (!quiet(ctx, args)) ctx.err(`Successfully copied ${humanSizeWithPrecision(size, 3)} to ${dstPath}\n`);
}

async function copyToContainer(
  ctx: CliContext,
  source: string,
  container: string,
  dstPath: string,
  args: ParsedArgs,
): Promise<void> {
  const srcPath = source === '-' ? '-' : resolveLocalPath(source);
  const dstInfo: CopyInfo = { path: dstPath, exists: false, isDir: false };
  let dstStat = await statContainerPath(ctx, container, dstPath);
  if (dstStat && (dstStat.mode & MODE_SYMLINK) !== 0) {
    dstInfo.path = linkPath(dstPath, dstStat.linkTarget);
    dstStat = await statContainerPath(ctx, container, dstInfo.path);
  }
  const irregular =
    (dstStat?.mode ?? 0) & MODE_DEVICE
      ? 'a device'
      : (dstStat?.mode ?? 0) & MODE_IRREGULAR
        ? 'an irregular file'
        : '';
  if (irregular !== '')
    throw new CommandError(
      `destination "${container}:${dstPath}" must be a directory or a regular file: got ${irregular}`,
    );
  if (dstStat) {
    dstInfo.exists = true;
    dstInfo.isDir = (dstStat.mode & MODE_DIR) !== 0;
  }
  let body: AsyncIterable<Buffer>;
  let extractDir: string;
  if (srcPath === '-') {
    if (!dstInfo.isDir) throw new CommandError(`destination "${container}:${dstPath}" must be a directory`);
    body = ctx.streams.stdin as AsyncIterable<Buffer>;
    extractDir = dstInfo.path;
  } else {
    const srcInfo = await sourceInfo(srcPath, flagBool(args, 'follow-link'));
    let plan: ReturnType<typeof prepareArchiveCopy>;
    try {
      plan = prepareArchiveCopy(srcInfo, dstInfo);
    } catch (err) {
      throw copyError(err);
    }
    body = localTar(srcInfo.path, srcInfo.rebaseName, plan.rename);
    extractDir = plan.dir;
  }
  let size = 0;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of body) {
      size += chunk.length;
      yield chunk;
    }
  };
  await ctx.client().call('PUT', `/containers/${pathEscape(container)}/archive`, {
    query: {
      path: extractDir,
      noOverwriteDirNonDir: 'true',
      copyUIDGID: flagBool(args, 'archive') ? 'true' : undefined,
    },
    body: Readable.from(counted()),
    contentType: 'application/x-tar',
  });
  if (!quiet(ctx, args))
    ctx.err(`Successfully copied ${humanSizeWithPrecision(size, 3)} to ${container}:${dstInfo.path}\n`);
}

export const commands: Record<string, CommandDef> = {
  cp: {
    usage: '[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
    description: 'Copy files/folders between a container and the local filesystem',
    aliases: ['berth container cp', 'berth cp'],
    args: { min: 2, max: 2 },
    flags: [
      {
        name: 'archive',
        short: 'a',
        type: 'bool',
        description: 'Archive mode (copy all uid/gid information)',
      },
      { name: 'follow-link', short: 'L', type: 'bool', description: 'Always follow symbol link in SRC_PATH' },
      {
        name: 'quiet',
        short: 'q',
        type: 'bool',
        description:
          'Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached',
      },
    ],
    run: async (ctx, args) => {
      const [srcArg = '', dstArg = ''] = args.positional;
      if (srcArg === '') throw new CommandError('source can not be empty');
      if (dstArg === '') throw new CommandError('destination can not be empty');
      const src = splitCpArg(srcArg);
      const dst = splitCpArg(dstArg);
      if (src.container !== undefined && dst.container !== undefined)
        throw new CommandError('copying between containers is not supported');
      if (src.container !== undefined) await copyFromContainer(ctx, src.container, src.path, dst.path, args);
      else if (dst.container !== undefined)
        await copyToContainer(ctx, src.path, dst.container, dst.path, args);
      else throw new CommandError('must specify at least one container source');
      return 0;
    },
  },
};
