import type { Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Usage } from './snapshotter.js';

/** Disk usage of a tree: allocated blocks and inodes, hardlinked inodes counted once, no symlink followed. */
export async function diskUsage(root: string): Promise<Usage> {
  const seen = new Set<string>();
  const usage: Usage = { size: 0, inodes: 0 };
  const count = (stat: Stats): void => {
    if (stat.nlink > 1 && !stat.isDirectory()) {
      const inode = `${stat.dev}:${stat.ino}`;
      if (seen.has(inode)) return;
      seen.add(inode);
    }
    usage.size += stat.blocks * 512;
    usage.inodes++;
  };
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      count(await lstat(path));
      if (entry.isDirectory()) await walk(path);
    }
  };
  count(await lstat(root));
  await walk(root);
  return usage;
}
