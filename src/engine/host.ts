/**
 * Host facts the spec builder takes as injected functions: device nodes (for `--device`,
 * `--blkio-*-device` and `--privileged`) and the capabilities the engine itself can grant.
 */
import { lstatSync, readdirSync, readFileSync, realpathSync, statSync, type Stats } from 'node:fs';
import { join, relative } from 'node:path';
import { capabilityNames } from '../linux/capabilities.js';
import type { Device } from '../oci/runtime-spec.js';

/** Directories of /dev that hold no devices a container should get (as containerd and runc skip them). */
const SKIPPED_DIRECTORIES = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

/** Linux's dev_t encoding (glibc gnu_dev_major / gnu_dev_minor). */
const major = (rdev: number): number =>
  Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
const minor = (rdev: number): number => Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));

function deviceOf(path: string, stats: Stats): Device | undefined {
  const type = stats.isCharacterDevice() ? 'c' : stats.isBlockDevice() ? 'b' : undefined;
  if (type === undefined) return undefined;
  return {
    type,
    path,
    major: major(stats.rdev),
    minor: minor(stats.rdev),
    fileMode: stats.mode & 0o7777,
    uid: stats.uid,
    gid: stats.gid,
  };
}

/**
 * The device node at `path` (a symlink is followed), or every device node below `path` when it is
 * a directory, named by `path` and their place below it; [] when it is neither. Throws the stat
 * error (ENOENT ...) when `path` is missing.
 */
export function devicesAt(path: string): Device[] {
  const resolved = realpathSync(path);
  const stats = statSync(resolved);
  if (!stats.isDirectory()) {
    const device = deviceOf(path, stats);
    return device ? [device] : [];
  }
  const found: Device[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 32) return;
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const child = join(dir, entry.name);
      if (entry.isDirectory()) walk(child, depth + 1);
      else if (entry.isCharacterDevice() || entry.isBlockDevice()) {
        const device = deviceOf(join(path, relative(resolved, child)), lstatSync(child));
        if (device) found.push(device);
      }
    }
  };
  walk(resolved, 0);
  return found;
}

/** Every device node under /dev for a privileged container, skipping the pseudo-filesystems and the console. */
export function listHostDevices(root = '/dev'): Device[] {
  const found: Device[] = [];
  const walk = (dir: string, depth: number): void => {
    if (depth > 32) return;
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // a directory that vanished or cannot be read holds nothing to give
    }
    for (const entry of entries) {
      const child = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRECTORIES.has(entry.name)) walk(child, depth + 1);
      } else if (entry.name !== 'console' && (entry.isCharacterDevice() || entry.isBlockDevice())) {
        try {
          const device = deviceOf(child, lstatSync(child));
          if (device) found.push(device);
        } catch {
          // removed while listing
        }
      }
    }
  };
  walk(root, 0);
  return found;
}

/** The capabilities in this process's bounding set (/proc/self/status CapBnd): what the engine can grant. */
export function boundingCapabilities(status = readFileSync('/proc/self/status', 'utf8')): string[] {
  const hex = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (hex === undefined) throw new Error('/proc/self/status has no CapBnd line');
  return capabilityNames(BigInt(`0x${hex}`));
}
