/**
 * Perform mounts described as data with mount(8)/umount(8) (Node.js cannot call mount(2)).
 *
 * The kernel takes a mount's option string in one page (4096 bytes with its NUL). An overlay
 * over many layers does not fit with absolute lowerdir paths, so when the string is too long and
 * every lowerdir lies in one directory (the overlay snapshotter's short links in
 * <root>/snapshots/l/), the lowerdirs are written relative to that directory and mount(8) runs
 * with it as its working directory: the kernel resolves relative paths against the caller's cwd.
 * Anyone else performing these mounts (the shim in a launch plan) must do the same: see
 * overlayMountData().
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import { internal, invalidArgument } from '../common/errors.js';
import type { Mount } from './snapshotter.js';

/** mount(2) copies at most one page of option data, its terminating NUL included. */
export const MOUNT_DATA_LIMIT = 4096;
const MOUNT_TIMEOUT_MS = 30_000;

function run(program: string, args: string[], cwd?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(program, args, { cwd, timeout: MOUNT_TIMEOUT_MS }, (error, _stdout, stderr) => {
      if (error === null) resolve();
      else
        reject(
          internal(`${program} ${args.join(' ')} failed: ${String(stderr).trim() || error.message}`, error),
        );
    });
  });
}

/** The option string for a mount and the directory to run mount(8) in (for relative lowerdirs). */
export function overlayMountData(mount: Mount): { data: string; cwd?: string } {
  const data = mount.options.join(',');
  if (mount.type !== 'overlay' || Buffer.byteLength(data) + 1 <= MOUNT_DATA_LIMIT) return { data };
  const lowerIndex = mount.options.findIndex((option) => option.startsWith('lowerdir='));
  const lowers = (mount.options[lowerIndex] ?? '').slice('lowerdir='.length).split(':');
  const base = dirname(lowers[0] ?? '');
  if (lowerIndex === -1 || !lowers.every((lower) => isAbsolute(lower) && dirname(lower) === base))
    throw invalidArgument(
      `overlay mount options are ${Buffer.byteLength(data)} bytes, over the kernel's ${MOUNT_DATA_LIMIT}-byte limit, and the lower directories do not share one parent directory to shorten them`,
    );
  const options = [...mount.options];
  options[lowerIndex] = `lowerdir=${lowers.map((lower) => lower.slice(base.length + 1)).join(':')}`;
  const short = options.join(',');
  if (Buffer.byteLength(short) + 1 > MOUNT_DATA_LIMIT)
    throw invalidArgument(
      `overlay mount over ${lowers.length} layers needs ${Buffer.byteLength(short)} bytes of options even with relative paths; the kernel takes ${MOUNT_DATA_LIMIT}`,
    );
  return { data: short, cwd: base };
}

/** Mount each of `mounts` onto `target`, in order; on a failure the ones done are undone. */
export async function mountAll(mounts: Mount[], target: string): Promise<void> {
  if (!isAbsolute(target))
    throw invalidArgument(`mount target ${JSON.stringify(target)} must be an absolute path`);
  let done = 0;
  try {
    for (const mount of mounts) {
      const { data, cwd } = overlayMountData(mount);
      const args = mount.type === 'bind' ? [] : ['-t', mount.type];
      if (data !== '') args.push('-o', data);
      // `--` so a source or target starting with '-' is never read as an option.
      await run('mount', [...args, '--', mount.source, target], cwd);
      done++;
    }
  } catch (err) {
    for (; done > 0; done--) await unmount(target).catch(() => undefined);
    throw err;
  }
}

/** Unmount the filesystem mounted on `target` (the topmost one). */
export async function unmount(target: string): Promise<void> {
  await run('umount', ['--', target]);
}

/** mountinfo's escaping of a path: space, tab, newline and backslash as octal. */
const escapeMountPath = (path: string): string =>
  path.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);

/** Mount points at or below `dir` in berthd's mount namespace, deepest first. */
export async function mountPointsUnder(dir: string): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const prefix = escapeMountPath(dir.replace(/\/+$/, ''));
  const points: string[] = [];
  for (const line of text.split('\n')) {
    const point = line.split(' ')[4];
    if (point !== undefined && (point === prefix || point.startsWith(`${prefix}/`)))
      points.push(
        point.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))),
      );
  }
  return points.sort((a, b) => b.length - a.length);
}

/**
 * Whether something is mounted on `target` in berthd's mount namespace, from /proc/self/mountinfo:
 * reading it is much cheaper than a umount(8) that fails.
 */
export async function isMountPoint(target: string): Promise<boolean> {
  const field = ` ${escapeMountPath(target)} `;
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  // Field 5 is the mount point: after the id, parent id, major:minor and root fields.
  for (const line of text.split('\n')) {
    const at = line.indexOf(field);
    if (at >= 0 && line.slice(0, at).split(' ').length === 4) return true;
  }
  return false;
}
