import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { TarEntry } from './tar-writer.js';

const S_IFMT = 0o170000;
const kind = (mode: number): number => mode & S_IFMT;

/** Linux's encoding of a dev_t into major and minor numbers. */
export function splitDev(rdev: number): { major: number; minor: number } {
  return {
    major: Math.floor(rdev / 256) & 0xfff,
    minor: (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00),
  };
}

/**
 * Walk the tree under `root` (no symlink is followed) and return its entries in a stable order,
 * those whose relative path `include` accepts. Hardlinked files after the first become hardlinks.
 * The contents are read into memory: this is for fixtures and small trees.
 */
export async function packTree(
  root: string,
  include: (path: string) => boolean = () => true,
): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const seenInodes = new Map<string, string>();
  const walk = async (relative: string): Promise<void> => {
    const names = (await readdir(join(root, relative))).sort();
    for (const name of names) {
      const path = relative === '' ? name : `${relative}/${name}`;
      const full = join(root, path);
      const stat = await lstat(full);
      const base = {
        path,
        mode: stat.mode & 0o7777,
        uid: stat.uid,
        gid: stat.gid,
        mtime: Math.floor(stat.mtimeMs / 1000),
      };
      const wanted = include(path);
      if (stat.isDirectory()) {
        if (wanted) entries.push({ ...base, type: 'directory' });
        await walk(path);
        continue;
      }
      if (!wanted) continue;
      const inode = `${stat.dev}:${stat.ino}`;
      if (stat.nlink > 1 && !stat.isDirectory()) {
        const first = seenInodes.get(inode);
        if (first !== undefined) {
          entries.push({ ...base, type: 'hardlink', linkTarget: first });
          continue;
        }
        seenInodes.set(inode, path);
      }
      switch (kind(stat.mode)) {
        case 0o100000:
          entries.push({ ...base, type: 'file', content: await readFile(full) });
          break;
        case 0o120000:
          entries.push({ ...base, type: 'symlink', linkTarget: await readlink(full) });
          break;
        case 0o020000:
        case 0o060000: {
          const { major, minor } = splitDev(stat.rdev);
          const type = kind(stat.mode) === 0o020000 ? 'char' : 'block';
          entries.push({ ...base, type, devMajor: major, devMinor: minor });
          break;
        }
        case 0o010000:
          entries.push({ ...base, type: 'fifo' });
          break;
        default:
          // Sockets cannot be archived; tar skips them too.
          break;
      }
    }
  };
  await walk('');
  return entries;
}
