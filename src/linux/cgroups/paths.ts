/**
 * linux.cgroupsPath semantics (as runc's cgroupfs driver): an absolute path is taken from the root
 * of each cgroup mount, a relative path from this process's own cgroup (/proc/self/cgroup), a
 * missing path means /berth/<id>. With `systemd`, the path is "slice:prefix:name" and maps to
 * <expanded slice>/<prefix>-<name>.scope, still managed through cgroupfs.
 */
import { posix } from 'node:path';
import { invalidArgument, unavailable } from '../../common/errors.js';
import type { CgroupMount } from './layout.js';

const FIELD = 'linux.cgroupsPath';

/** A validated cgroups path: absolute (from the mount root) or relative (from the own cgroup). */
export interface CgroupPath {
  relative: boolean;
  /** Normalised; starts with "/" when absolute, never with "/" when relative. */
  path: string;
}

function checkContainerId(containerId: string): void {
  if (containerId === '' || containerId === '.' || containerId === '..' || containerId.includes('/'))
    throw invalidArgument(`container id "${containerId}" cannot name a cgroup`);
}

/** Turns linux.cgroupsPath (or its absence) into a validated path. */
export function parseCgroupsPath(
  cgroupsPath: string | undefined,
  containerId: string,
  options: { systemd?: boolean } = {},
): CgroupPath {
  checkContainerId(containerId);
  if (options.systemd === true) {
    return { relative: false, path: systemdPath(cgroupsPath ?? `system.slice:berth:${containerId}`) };
  }
  const raw = cgroupsPath === undefined || cgroupsPath === '' ? `/berth/${containerId}` : cgroupsPath;
  if (raw.split('/').some((part) => part === '..'))
    throw invalidArgument(`${FIELD}: "${raw}" must not contain ".."`);
  if (raw.includes('\0')) throw invalidArgument(`${FIELD}: must not contain a NUL byte`);
  const relative = !raw.startsWith('/');
  const normal = posix.normalize(relative ? `/${raw}` : raw).replace(/\/+$/, '');
  if (normal === '' || normal === '/' || normal === '/.')
    throw invalidArgument(`${FIELD}: "${raw}" names the root cgroup; it must name a cgroup below it`);
  return { relative, path: relative ? normal.slice(1) : normal };
}

/** systemd's slice naming: "a-b-c.slice" lives at /a.slice/a-b.slice/a-b-c.slice; "-.slice" is the root. */
export function expandSlice(slice: string): string {
  const bad = (why: string): Error => invalidArgument(`${FIELD}: slice "${slice}" ${why}`);
  if (!slice.endsWith('.slice')) throw bad('does not end in ".slice"');
  if (slice.includes('/')) throw bad('contains "/"');
  if (slice === '-.slice') return '/';
  const name = slice.slice(0, -'.slice'.length);
  if (name === '' || name.startsWith('-') || name.endsWith('-') || name.includes('--'))
    throw bad('is not a valid slice name');
  const parts = name.split('-');
  return parts.map((_, index) => `/${parts.slice(0, index + 1).join('-')}.slice`).join('');
}

function systemdPath(spec: string): string {
  const parts = spec.split(':');
  if (parts.length !== 3)
    throw invalidArgument(`${FIELD}: "${spec}" is not of the systemd form slice:prefix:name`);
  const [slice = '', prefix = '', name = ''] = parts;
  if (name === '' || name.includes('/') || prefix.includes('/') || name === '.' || name === '..')
    throw invalidArgument(`${FIELD}: "${spec}" needs a unit name without "/"`);
  const parent = expandSlice(slice === '' ? 'system.slice' : slice);
  const unit = name.endsWith('.slice') ? name : prefix === '' ? `${name}.scope` : `${prefix}-${name}.scope`;
  return posix.join(parent, unit);
}

/**
 * The cgroup's path in one hierarchy (as /proc/<pid>/cgroup shows it) and its directory under that
 * hierarchy's mount. `own` is this process's cgroup in that hierarchy, needed for relative paths.
 */
export function locate(
  cgroupPath: CgroupPath,
  mount: CgroupMount,
  own: string | undefined,
): { path: string; directory: string } {
  if (!cgroupPath.relative) {
    return {
      path: posix.join(mount.root, cgroupPath.path),
      directory: posix.join(mount.mountPoint, cgroupPath.path),
    };
  }
  if (own === undefined)
    throw unavailable(`${FIELD}: relative path "${cgroupPath.path}" but this process's cgroup is unknown`);
  const path = posix.join(own, cgroupPath.path);
  const fromRoot = posix.relative(mount.root, path);
  if (fromRoot === '..' || fromRoot.startsWith('../'))
    throw unavailable(
      `${FIELD}: relative path "${cgroupPath.path}" resolves to ${path}, outside the hierarchy mounted at ${mount.mountPoint}`,
    );
  return { path, directory: posix.join(mount.mountPoint, fromRoot) };
}
