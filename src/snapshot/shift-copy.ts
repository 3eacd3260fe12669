/**
 * A shifted copy of a layer directory, for remapped containers on kernels or filesystems without
 * idmapped lower layers (docs/userns.md): the same tree with every owner moved into the
 * container's host id range.
 *
 * `cp -a` makes the copy (modes with setuid/setgid bits, nanosecond times, hardlinks, devices
 * and whiteouts, symlinks, xattrs such as trusted.overlay.opaque, reflinks where the filesystem
 * has them); then each inode, once, gets its owner shifted. chown has side effects that are
 * undone in the order the applier uses: it clears the setuid and setgid bits (set again with
 * chmod) and removes security.capability (set again, its root id shifted too).
 */
import { chmod, lchown, lstat, readdir, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { FsHelper } from '../archive/fs-helper.js';
import { copyTree } from './copy.js';
import { CAPABILITY_XATTR, OVERFLOW_ID, shiftCapability, type IdShift } from './shift-ids.js';

/** Directories whose entries are looked at together (one xattr request per batch). */
const BATCH = 256;

/**
 * Copy the layer directory `from` to `to` (which must not exist) with every owner shifted by
 * `shift` (container ids to host ids); ids without a mapping become the overflow id, as an
 * idmapped mount shows them.
 */
export async function shiftedCopy(from: string, to: string, shift: IdShift): Promise<void> {
  // `from` may be a link to the layer (the overlay snapshotter's short links): cp -a copies links.
  await copyTree(await realpath(from), to);
  const helper = new FsHelper();
  const seen = new Set<string>();
  const shiftOne = async (path: string, capability: Buffer | undefined): Promise<void> => {
    const stats = await lstat(path);
    // A hardlinked inode is shifted through its first name only.
    if (stats.nlink > 1 && !stats.isDirectory()) {
      const inode = `${stats.dev}:${stats.ino}`;
      if (seen.has(inode)) return;
      seen.add(inode);
    }
    const uid = shift.uid(stats.uid) ?? OVERFLOW_ID;
    const gid = shift.gid(stats.gid) ?? OVERFLOW_ID;
    if (uid === stats.uid && gid === stats.gid) return;
    await lchown(path, uid, gid);
    // Nothing else writes this new tree, so chmod cannot be led through a swapped path.
    if (!stats.isSymbolicLink() && (stats.mode & 0o7000) !== 0) await chmod(path, stats.mode & 0o7777);
    if (capability === undefined) return;
    const shifted = shiftCapability(capability, shift);
    if (shifted !== undefined) await helper.setXattr(path, CAPABILITY_XATTR, shifted);
  };
  try {
    await shiftOne(to, undefined);
    const dirs = [to];
    for (let dir = dirs.pop(); dir !== undefined; dir = dirs.pop()) {
      const entries = await readdir(dir, { withFileTypes: true });
      for (let start = 0; start < entries.length; start += BATCH) {
        const batch = entries.slice(start, start + BATCH);
        // File capabilities exist on regular files only; chown would remove them, so read first.
        const files = batch.filter((entry) => entry.isFile()).map((entry) => join(dir as string, entry.name));
        const xattrs = await helper.xattrs(files);
        const capabilities = new Map(files.map((file, i) => [file, xattrs[i]?.get(CAPABILITY_XATTR)]));
        for (const entry of batch) {
          const path = join(dir, entry.name);
          await shiftOne(path, capabilities.get(path));
          if (entry.isDirectory()) dirs.push(path);
        }
      }
    }
  } finally {
    await helper.close();
  }
}
