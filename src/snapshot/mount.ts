/**
 * Perform mounts described as data, through berth-mount (mount-helper.ts): options are split into
 * mount(2) flags and filesystem data the way mount(8) splits them (mount-options.ts).
 *
 * The kernel takes a mount's option string in one page (4096 bytes with its NUL). An overlay
 * over many layers does not fit with absolute lowerdir paths, so when the string is too long and
 * every lowerdir lies in one directory (the overlay snapshotter's short links in
 * <root>/snapshots/l/), the lowerdirs are written relative to that directory and the mount runs
 * with it as its working directory: the kernel resolves relative paths against the caller's cwd.
 * Anyone else performing these mounts (the shim in a launch plan) must do the same: see
 * overlayMountData().
 */
import { access, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { invalidArgument } from '../common/errors.js';
import { MountError, mountHelperRequest, mountRequest, umountRequest } from './mount-helper.js';
import { mountCalls } from './mount-options.js';
import type { Mount } from './snapshotter.js';

/** mount(2) copies at most one page of option data, its terminating NUL included. */
export const MOUNT_DATA_LIMIT = 4096;

/** The option string for a mount and the directory to mount in (for relative lowerdirs). */
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

/** The paths a mount needs, to name the missing one when the kernel says ENOENT. */
function neededPaths(mount: Mount, data: string[], cwd: string | undefined): string[] {
  const paths: string[] = [];
  if (mount.type === 'bind') paths.push(mount.source);
  for (const option of data) {
    const [key, value] = [option.slice(0, option.indexOf('=')), option.slice(option.indexOf('=') + 1)];
    if (key === 'lowerdir') paths.push(...value.split(':').map((lower) => resolve(cwd ?? '/', lower)));
    else if (key === 'upperdir' || key === 'workdir') paths.push(value);
  }
  return paths;
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

async function firstMissing(paths: string[]): Promise<string | undefined> {
  for (const path of paths) if (!(await exists(path))) return path;
  return undefined;
}

async function mountOne(mount: Mount, target: string): Promise<void> {
  // A mount of type bind is a bind mount whether or not its options say so (as in OCI specs).
  const bind = mount.type === 'bind' && !mount.options.some((o) => o === 'bind' || o === 'rbind');
  const calls = mountCalls(bind ? ['bind', ...mount.options] : mount.options);
  const { data, cwd } = overlayMountData({ ...mount, options: calls.data });
  const fstype = mount.type === 'bind' ? '' : mount.type;
  try {
    await mountHelperRequest(
      mountRequest({ source: mount.source, target, fstype, flags: calls.flags, data, cwd: cwd ?? '' }),
    );
  } catch (err) {
    if (!(err instanceof MountError)) throw err;
    const missing =
      err.errno === 'ENOENT'
        ? await firstMissing([target, ...neededPaths(mount, calls.data, cwd)])
        : undefined;
    throw new MountError(
      err.errno,
      `cannot mount ${mount.type} ${mount.source} on ${target}: ${missing ? `${missing} does not exist` : err.message}`,
    );
  }
  const later = [...(calls.remount.length > 0 ? [calls.remount] : []), ...calls.propagation];
  try {
    for (const flags of later)
      await mountHelperRequest(mountRequest({ source: '', target, fstype: '', flags, data: '', cwd: '' }));
  } catch (err) {
    await unmount(target).catch(() => undefined);
    if (!(err instanceof MountError)) throw err;
    throw new MountError(
      err.errno,
      `cannot apply ${mount.options.join(',')} to the mount on ${target}: ${err.message}`,
    );
  }
}

/** Mount each of `mounts` onto `target`, in order; on a failure the ones done are undone. */
export async function mountAll(mounts: Mount[], target: string): Promise<void> {
  if (!isAbsolute(target))
    throw invalidArgument(`mount target ${JSON.stringify(target)} must be an absolute path`);
  let done = 0;
  try {
    for (const mount of mounts) {
      await mountOne(mount, target);
      done++;
    }
  } catch (err) {
    for (; done > 0; done--) await unmount(target).catch(() => undefined);
    throw err;
  }
}

/** Unmount the filesystem mounted on `target` (the topmost one); `lazy` detaches it while busy. */
export async function unmount(target: string, options: { lazy?: boolean } = {}): Promise<void> {
  try {
    await mountHelperRequest(umountRequest(resolve(target), options.lazy ? ['detach'] : []));
  } catch (err) {
    if (!(err instanceof MountError)) throw err;
    const why = err.errno === 'EINVAL' ? 'it is not a mount point' : err.message;
    throw new MountError(err.errno, `cannot unmount ${target}: ${why}`);
  }
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
