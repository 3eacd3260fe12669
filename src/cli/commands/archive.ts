/**
 * `cp` both ways through the archive endpoints, and `export`. Like the docker CLI, berth builds and
 * unpacks the tar archives itself: the name of the top entry is rebased so that `cp a b` means the
 * same thing it means for `cp` (into an existing directory, or as a new name), and extraction never
 * writes outside the destination.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  readdir,
  readlink,
  stat,
  symlink,
  link,
  utimes,
  lutimes,
  rm,
} from 'node:fs/promises';
import { basename, dirname, join, posix, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { flagBool, flagValue, type ParsedArgs } from '../args.js';
import { pathEscape } from '../client.js';
import type { CommandDef } from '../command.js';
import type { CliContext } from '../context.js';
import { ApiError, CommandError } from '../errors.js';
import { humanSize } from '../format/units.js';
import { ByteSource } from '../../archive/byte-source.js';
import { readTar } from '../../archive/tar-reader.js';
import { encodeTarHeader, tarPadding, tarTrailer, type TarEntry } from '../../archive/tar-writer.js';
import { splitDev } from '../../archive/tar-pack.js';

/** Go's os.FileMode bits in X-Docker-Container-Path-Stat. */
const MODE_DIR = 2 ** 31;
const MODE_SYMLINK = 2 ** 27;

interface PathStat {
  name: string;
  size: number;
  mode: number;
  linkTarget: string;
}

function decodeStat(header: string | string[] | undefined): PathStat | undefined {
  if (typeof header !== 'string' || header === '') return undefined;
  try {
    return JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as PathStat;
  } catch {
    return undefined;
  }
}

/** "CONTAINER:PATH" or a local path; a colon after a slash belongs to a local path, as in docker. */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.')) return { path: arg };
  const colon = arg.indexOf(':');
  if (colon <= 0) return { path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) };
}

const assertsDirectory = (path: string): boolean => path.endsWith('/') || path.endsWith('/.');

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
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

/** The tar stream of a local file tree, entries named from `name` (symlinks kept unless `follow`). */
async function* packTree(path: string, name: string, follow: boolean): AsyncGenerator<Buffer> {
  const info = follow ? await stat(path) : await lstat(path);
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
    for (const child of (await readdir(path)).sort()) {
      yield* packTree(join(path, child), posix.join(name, child), false);
    }
  } else if (info.isSymbolicLink()) {
    yield header({ ...base, type: 'symlink', linkTarget: await readlink(path) });
  } else if (info.isFile()) {
    yield header({ ...base, type: 'file' }, info.size);
    let written = 0;
    for await (const chunk of createReadStream(path, { end: info.size - 1 })) {
      written += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (written !== info.size) throw new CommandError(`${path} changed size while it was copied`);
    yield tarPadding(info.size);
  } else if (info.isFIFO()) {
    yield header({ ...base, type: 'fifo' });
  } else if (info.isCharacterDevice() || info.isBlockDevice()) {
    const { major, minor } = splitDev(info.rdev);
    yield header({
      ...base,
      type: info.isCharacterDevice() ? 'char' : 'block',
      devMajor: major,
      devMinor: minor,
    });
  }
}

async function* tarOf(path: string, name: string, follow: boolean): AsyncGenerator<Buffer> {
  yield* packTree(path, name, follow);
  yield tarTrailer();
}

async function copyToContainer(
  ctx: CliContext,
  src: string,
  container: string,
  dst: string,
  args: ParsedArgs,
): Promise<void> {
  let dstPath = dst;
  let dstStat = await statContainerPath(ctx, container, dstPath);
  if (dstStat && (dstStat.mode & MODE_SYMLINK) !== 0) {
    const target = dstStat.linkTarget;
    dstPath = target.startsWith('/') ? target : posix.join(posix.dirname(dstPath), target);
    dstStat = await statContainerPath(ctx, container, dstPath);
  }
  const dstIsDir = dstStat !== undefined && (dstStat.mode & MODE_DIR) !== 0;
  let body: Readable;
  let extractDir: string;
  if (src === '-') {
    if (!dstIsDir) throw new CommandError(`destination "${container}:${dst}" must be a directory`);
    body = ctx.streams.stdin as unknown as Readable;
    extractDir = dstPath;
  } else {
    const follow = flagBool(args, 'follow-link');
    const info = await (follow ? stat(src) : lstat(src)).catch(() => {
      throw new CommandError(`lstat ${resolve(src)}: no such file or directory`);
    });
    const contentsOnly = src.endsWith('/.');
    let name: string;
    if (dstIsDir) {
      extractDir = dstPath;
      name = contentsOnly ? '.' : basename(resolve(src));
    } else if (dstStat && info.isDirectory()) {
      throw new CommandError('cannot copy a directory to a file');
    } else if (!dstStat && !info.isDirectory() && assertsDirectory(dstPath)) {
      throw new CommandError(`destination "${container}:${dst}" must be a directory`);
    } else {
      extractDir = posix.dirname(dstPath.replace(/\/+$/, '')) || '/';
      name = posix.basename(dstPath.replace(/\/+$/, ''));
    }
    body = Readable.from(tarOf(src, name, follow));
  }
  await ctx.client().call('PUT', `/containers/${pathEscape(container)}/archive`, {
    query: {
      path: extractDir,
      noOverwriteDirNonDir: 'true',
      copyUIDGID: flagBool(args, 'archive') ? 'true' : undefined,
    },
    body,
    contentType: 'application/x-tar',
  });
}

/** Extracts a tar stream under `root`, the first path component renamed from `from` to `to`. */
async function extractTar(
  source: AsyncIterable<Buffer>,
  root: string,
  rename: { from: string; to: string } | undefined,
  keepOwner: boolean,
): Promise<void> {
  const rootAbs = resolve(root);
  const dirTimes: Array<[string, Date]> = [];
  for await (const { header, body } of readTar(new ByteSource(source))) {
    let name = posix.normalize(header.path).replace(/^\/+/, '');
    if (rename) {
      const first = name.split('/')[0] ?? '';
      if (first === rename.from) name = rename.to + name.slice(first.length);
    }
    const target = resolve(rootAbs, name);
    const rel = relative(rootAbs, target);
    if (rel.startsWith('..') || rel.startsWith(sep)) {
      throw new CommandError(`refusing to extract ${header.path}: it is outside the destination`);
    }
    const mtime = new Date(header.mtime * 1000);
    switch (header.type) {
      case 'directory':
        await mkdir(target, { recursive: true });
        await chmod(target, header.mode);
        dirTimes.push([target, mtime]);
        break;
      case 'symlink':
        await mkdir(dirname(target), { recursive: true });
        await rm(target, { force: true });
        await symlink(header.linkTarget, target);
        await lutimes(target, mtime, mtime).catch(() => undefined);
        break;
      case 'hardlink': {
        const linked = resolve(rootAbs, posix.normalize(header.linkTarget).replace(/^\/+/, ''));
        if (relative(rootAbs, linked).startsWith('..'))
          throw new CommandError(`invalid hardlink ${header.linkTarget}`);
        await rm(target, { force: true });
        await link(linked, target);
        break;
      }
      case 'file':
        await mkdir(dirname(target), { recursive: true });
        await rm(target, { force: true });
        await pipeline(Readable.from(body), createWriteStream(target, { mode: header.mode }));
        await chmod(target, header.mode);
        await utimes(target, mtime, mtime);
        break;
      default:
        // Devices and fifos need privileges a copy does not assume; they are skipped.
        continue;
    }
    if (keepOwner && header.type !== 'symlink') await chown(target, header.uid, header.gid);
  }
  for (const [dir, time] of dirTimes.reverse()) await utimes(dir, time, time).catch(() => undefined);
}

async function copyFromContainer(
  ctx: CliContext,
  container: string,
  src: string,
  dst: string,
  args: ParsedArgs,
): Promise<number> {
  let srcPath = src;
  if (flagBool(args, 'follow-link')) {
    const info = await statContainerPath(ctx, container, srcPath);
    if (info && (info.mode & MODE_SYMLINK) !== 0) {
      srcPath = info.linkTarget.startsWith('/')
        ? info.linkTarget
        : posix.join(posix.dirname(srcPath), info.linkTarget);
    }
  }
  const res = await ctx
    .client()
    .request('GET', `/containers/${pathEscape(container)}/archive`, { query: { path: srcPath } });
  if (dst === '-') {
    await pipeline(res, ctx.stdout as NodeJS.WritableStream, { end: false });
    return 0;
  }
  const srcStat = decodeStat(res.headers['x-docker-container-path-stat']);
  const srcIsDir = srcStat !== undefined && (srcStat.mode & MODE_DIR) !== 0;
  const srcBase = srcStat?.name ?? posix.basename(srcPath);
  let size = 0;
  // Counted as it is read: a 'data' listener would start the stream before the reader is there.
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  };
  const dstInfo = await stat(dst).catch(() => undefined);
  let root: string;
  let rename: { from: string; to: string } | undefined;
  if (dstInfo?.isDirectory()) {
    root = dst;
    if (srcPath.endsWith('/.')) rename = { from: srcBase, to: '.' };
  } else if (dstInfo && srcIsDir) {
    res.destroy();
    throw new CommandError('cannot copy a directory to a file');
  } else if (!dstInfo && !srcIsDir && assertsDirectory(dst)) {
    res.destroy();
    throw new CommandError(`destination directory ${dst} does not exist`);
  } else {
    root = dirname(resolve(dst));
    if ((await stat(root).catch(() => undefined))?.isDirectory() !== true) {
      res.destroy();
      throw new CommandError(`destination directory ${dirname(dst)} does not exist`);
    }
    rename = { from: srcBase, to: basename(resolve(dst)) };
  }
  await extractTar(counted(), root, rename, flagBool(args, 'archive'));
  if (ctx.stderr.isTTY && !flagBool(args, 'quiet'))
    ctx.err(`Successfully copied ${humanSize(size)} to ${dst}\n`);
  return 0;
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
      { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress progress output during copy' },
    ],
    run: async (ctx, args) => {
      const [srcArg = '', dstArg = ''] = args.positional;
      const src = splitCpArg(srcArg);
      const dst = splitCpArg(dstArg);
      if (src.container !== undefined && dst.container !== undefined) {
        throw new CommandError('copying between containers is not supported');
      }
      if (src.container === undefined && dst.container === undefined) {
        throw new CommandError('must specify at least one container source');
      }
      if (src.container !== undefined) {
        if (src.path === '') throw new CommandError('source can not be empty');
        return copyFromContainer(ctx, src.container, src.path, dst.path, args);
      }
      if (dst.path === '') throw new CommandError('destination can not be empty');
      await copyToContainer(ctx, src.path, dst.container ?? '', dst.path, args);
      return 0;
    },
  },
  export: {
    usage: '[OPTIONS] CONTAINER',
    description: "Export a container's filesystem as a tar archive",
    aliases: ['berth container export', 'berth export'],
    args: { min: 1, max: 1 },
    flags: [
      { name: 'output', short: 'o', type: 'string', description: 'Write to a file, instead of STDOUT' },
    ],
    run: async (ctx, args) => {
      const output = flagValue(args, 'output');
      if (output === undefined && ctx.stdout.isTTY) {
        throw new CommandError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
      }
      const res = await ctx
        .client()
        .request('GET', `/containers/${pathEscape(args.positional[0] ?? '')}/export`);
      if (output !== undefined) await pipeline(res, createWriteStream(output));
      else await pipeline(res, ctx.stdout as NodeJS.WritableStream, { end: false });
      return 0;
    },
  },
};
