/**
 * The client side of a build context: a directory packed into a tar stream with `.dockerignore`
 * applied, as the docker CLI sends it. The Dockerfile and .dockerignore are always sent (the
 * daemon removes them again when they are ignored); a Dockerfile from outside the directory or
 * from stdin is added under a generated name.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../common/errors.js';
import { encodeTarHeader, tarPadding, tarTrailer, type TarEntry } from '../archive/tar-writer.js';
import { DOCKERIGNORE, ignoreMatcher, parseDockerignore } from './context.js';

const READ_CHUNK = 1024 * 1024;

export interface PackOptions {
  /** The Dockerfile's path inside the directory (always sent). */
  dockerfile?: string;
  /** A Dockerfile that is not in the directory: added to the tar under `extraName`. */
  extraDockerfile?: { name: string; content: Buffer };
}

/** A name for a Dockerfile added to the context, like the docker CLI's `.dockerfile.<random>`. */
export const extraDockerfileName = (): string => `.dockerfile.${randomBytes(10).toString('hex')}`;

async function* fileBytes(entry: TarEntry, path: string, size: number): AsyncGenerator<Buffer> {
  yield* encodeTarHeader(entry, size);
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    let left = size;
    while (left > 0) {
      const buffer = Buffer.allocUnsafe(Math.min(left, READ_CHUNK));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      left -= bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
    // A file that shrank meanwhile is padded to the size announced in its header.
    if (left > 0) yield Buffer.alloc(left);
  } finally {
    await handle.close();
  }
  yield tarPadding(size);
}

/** The context directory as an uncompressed tar stream. */
export async function* packContext(dir: string, options: PackOptions = {}): AsyncGenerator<Buffer> {
  let patterns: string[] = [];
  try {
    patterns = parseDockerignore(await readFile(join(dir, DOCKERIGNORE), 'utf8'));
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  const ignored = ignoreMatcher(patterns);
  const always = new Set([DOCKERIGNORE, options.dockerfile ?? 'Dockerfile']);
  const reincludes = patterns.some((p) => p.startsWith('!'));
  // Like the docker CLI: a file's second name is sent as a hardlink to the first, which the
  // daemon's source hashes (checksum.ts) depend on.
  const firstNames = new Map<string, string>();
  const walk = async function* (relative: string): AsyncGenerator<Buffer> {
    const names = (await readdir(relative === '' ? dir : join(dir, relative))).sort((a, b) =>
      Buffer.compare(Buffer.from(a), Buffer.from(b)),
    );
    for (const name of names) {
      const path = relative === '' ? name : `${relative}/${name}`;
      const host = join(dir, path);
      const stat = await lstat(host);
      const skip = ignored(path) && !always.has(path);
      // An ignored directory is only entered when a `!` pattern may re-include something in it.
      if (skip && !(stat.isDirectory() && reincludes)) continue;
      const base = {
        path,
        mode: stat.mode & 0o7777,
        // The docker CLI sends everything as root's.
        uid: 0,
        gid: 0,
        mtime: Math.floor(stat.mtimeMs / 1000),
      };
      if (stat.isDirectory()) {
        if (!skip) yield* encodeTarHeader({ ...base, type: 'directory' });
        yield* walk(path);
      } else if (skip) continue;
      else if (stat.isFile()) {
        const inode = `${stat.dev}:${stat.ino}`;
        const first = stat.nlink > 1 ? firstNames.get(inode) : undefined;
        if (first !== undefined) yield* encodeTarHeader({ ...base, type: 'hardlink', linkTarget: first });
        else {
          if (stat.nlink > 1) firstNames.set(inode, path);
          yield* fileBytes({ ...base, type: 'file' }, host, stat.size);
        }
      } else if (stat.isSymbolicLink())
        yield* encodeTarHeader({ ...base, type: 'symlink', linkTarget: await readlink(host) });
      // Devices, fifos and sockets are not part of a build context.
    }
  };
  yield* walk('');
  if (options.extraDockerfile) {
    const { name, content } = options.extraDockerfile;
    yield* encodeTarHeader(
      { path: name, type: 'file', mode: 0o600, mtime: Math.floor(Date.now() / 1000) },
      content.length,
    );
    yield Buffer.from(content);
    yield tarPadding(content.length);
  }
  yield tarTrailer();
}
