/**
 * Content checksums of what a COPY reads, for the build cache: a file's is the sha256 of its type,
 * permission bits and content (a symlink's: its target), a directory's covers its entries' names
 * and checksums, recursively. Modification times are left out, so a touched but unchanged file
 * keeps the cache; so is ownership, which COPY never carries over from the context (files become
 * root's or --chown's).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export class ChecksumCache {
  private readonly known = new Map<string, Promise<string>>();

  /** The checksum of the tree at host path `path`, computed once per path. */
  of(path: string): Promise<string> {
    let pending = this.known.get(path);
    if (pending === undefined) {
      pending = this.compute(path);
      this.known.set(path, pending);
    }
    return pending;
  }

  private async compute(path: string): Promise<string> {
    const stat = await lstat(path);
    const hash = createHash('sha256');
    const mode = (stat.mode & 0o7777).toString(8);
    if (stat.isDirectory()) {
      hash.update(`dir ${mode}\n`);
      for (const name of (await readdir(path)).sort()) {
        hash.update(`${JSON.stringify(name)} ${await this.of(join(path, name))}\n`);
      }
    } else if (stat.isSymbolicLink()) {
      hash.update(`symlink ${await readlink(path)}\n`);
    } else if (stat.isFile()) {
      hash.update(`file ${mode}\n`);
      for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    } else {
      hash.update(`special ${stat.mode.toString(8)} ${stat.rdev}\n`);
    }
    return hash.digest('hex');
  }
}

/** One checksum over several sources (`kind:hex` as Docker's classic builder writes it in history). */
export function combinedChecksum(parts: Array<{ name: string; checksum: string }>): string {
  if (parts.length === 1) return (parts[0] as { checksum: string }).checksum;
  const hash = createHash('sha256');
  for (const part of parts) hash.update(`${JSON.stringify(part.name)} ${part.checksum}\n`);
  return hash.digest('hex');
}
