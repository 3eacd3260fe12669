/**
 * The mount list of a container, assembled the way moby's WithMounts does: Docker's default
 * mounts (minus those a user mount replaces), then the user's mounts (network files, volumes,
 * binds, IPC, tmpfs) sorted so that parents come before children, with the read-only rootfs and
 * --privileged adjustments.
 */
import { posix } from 'node:path';
import { invalidArgument } from '../common/errors.js';
import { defaultMounts } from '../oci/defaults.js';
import type { Mount } from '../oci/runtime-spec.js';
import { tmpfsSpecOptions, type ResolvedMount } from './binds.js';
import type { Propagation } from './docker-types.js';
import type { IpcMode } from './namespaces.js';

/** Files the engine writes for every container, bind-mounted over the image's. */
const NETWORK_FILES = [
  ['resolv.conf', '/etc/resolv.conf'],
  ['hostname', '/etc/hostname'],
  ['hosts', '/etc/hosts'],
] as const;

/** Default mounts that stay writable on a read-only rootfs. */
const WRITABLE_ON_READONLY_ROOT = new Set(['/proc', '/dev/pts', '/dev/shm', '/dev/mqueue', '/dev']);

export interface MountOptions {
  /** Directory holding the resolv.conf, hostname and hosts files of the container. */
  containerDir: string;
  mounts: ResolvedMount[];
  /** `HostConfig.Tmpfs`: destination -> options. */
  tmpfs: Record<string, string>;
  ipcMode: IpcMode;
  /** Host path bind-mounted at /dev/shm for shareable IPC and IPC shared with another container. */
  shmPath?: string;
  shmSize: number;
  readonlyRootfs: boolean;
  privileged: boolean;
  /** `--security-opt writable-cgroups=...`; otherwise writable only when privileged. */
  writableCgroups?: boolean;
  /** Host path of the init binary for `--init`, mounted at INIT_PATH. */
  initPath?: string;
}

export const INIT_PATH = '/sbin/docker-init';

export interface ContainerMounts {
  mounts: Mount[];
  /** Set when a shared or slave mount needs the root to propagate. */
  rootfsPropagation?: 'shared' | 'rslave';
}

const depth = (destination: string): number => posix.resolve(destination).split('/').length;

/** Docker's destination checks (absolute, not `/`); returns the cleaned path. */
function checkDestination(destination: string): string {
  const normalized = destination.replaceAll('\\', '/');
  if (!posix.isAbsolute(normalized))
    throw invalidArgument(`invalid mount path: '${normalized}' mount path must be absolute`);
  if (posix.resolve(normalized) === '/')
    throw invalidArgument("invalid specification: destination can't be '/'");
  return posix.resolve(normalized);
}

function bindOptions(mount: Extract<ResolvedMount, { type: 'bind' }>): string[] {
  const options = [mount.nonRecursive ? 'bind' : 'rbind'];
  if (mount.readOnly) options.push('ro');
  if (mount.propagation) options.push(mount.propagation);
  return options;
}

/** User mounts: network files, the resolved mounts, IPC and --tmpfs, sorted parents first. */
function userMounts(
  options: MountOptions,
): Array<{ destination: string; mount: Mount; propagation?: Propagation }> {
  const resolved = options.mounts.map((m) => ({ ...m, destination: checkDestination(m.destination) }));
  const entries: Array<{ destination: string; mount: Mount; propagation?: Propagation }> = [];
  const seen = new Set<string>();
  const add = (destination: string, mount: Mount, propagation?: Propagation): void => {
    if (seen.has(destination)) throw invalidArgument(`Duplicate mount point: ${destination}`);
    seen.add(destination);
    entries.push({ destination, mount, ...(propagation ? { propagation } : {}) });
  };
  for (const [file, destination] of NETWORK_FILES) {
    // A user mount at the same place replaces the engine's file (Docker's TrySetNetworkMount).
    if (resolved.some((m) => m.destination === destination)) continue;
    const mountOptions = ['rbind', ...(options.readonlyRootfs ? ['ro'] : []), 'rprivate'];
    add(destination, {
      destination,
      type: 'bind',
      source: posix.join(options.containerDir, file),
      options: mountOptions,
    });
  }
  for (const m of resolved) {
    if (m.type === 'tmpfs') {
      add(m.destination, {
        destination: m.destination,
        type: 'tmpfs',
        source: 'tmpfs',
        options: tmpfsSpecOptions(m.data ?? ''),
      });
    } else {
      if (!posix.isAbsolute(m.source))
        throw invalidArgument(`invalid mount path: '${m.source}' mount path must be absolute`);
      add(
        m.destination,
        { destination: m.destination, type: 'bind', source: m.source, options: bindOptions(m) },
        m.propagation,
      );
    }
  }
  const shmSource =
    options.ipcMode === 'host'
      ? '/dev/shm'
      : options.ipcMode === 'none' || options.ipcMode === 'private'
        ? undefined
        : options.shmPath;
  if (shmSource !== undefined && !seen.has('/dev/shm')) {
    add('/dev/shm', {
      destination: '/dev/shm',
      type: 'bind',
      source: shmSource,
      options: ['rbind', 'rprivate'],
    });
  }
  for (const [destination, data] of Object.entries(options.tmpfs)) {
    const clean = checkDestination(destination);
    add(clean, { destination: clean, type: 'tmpfs', source: 'tmpfs', options: tmpfsSpecOptions(data) });
  }
  // Stable: equal depths keep the order above.
  return entries.sort((a, b) => depth(a.destination) - depth(b.destination));
}

const withoutOption = (mount: Mount, option: string): Mount => ({
  ...mount,
  options: (mount.options ?? []).filter((o) => o !== option),
});
const withOption = (mount: Mount, option: string): Mount =>
  (mount.options ?? []).includes(option) ? mount : { ...mount, options: [...(mount.options ?? []), option] };

export function containerMounts(options: MountOptions): ContainerMounts {
  const user = userMounts(options);
  const userDestinations = new Set(user.map((u) => u.destination));
  const devMounted = userDestinations.has('/dev');

  const defaults: Mount[] = [];
  for (const mount of defaultMounts()) {
    if (userDestinations.has(mount.destination)) continue;
    if (devMounted && mount.destination.startsWith('/dev/')) continue;
    if (mount.destination === '/dev/shm') {
      if (options.ipcMode === 'none') continue;
      const sized = (mount.options ?? []).filter((o) => !o.startsWith('size='));
      defaults.push({ ...mount, options: [...sized, `size=${options.shmSize}`] });
      continue;
    }
    defaults.push(mount);
  }
  if (options.initPath !== undefined) {
    defaults.push({
      destination: INIT_PATH,
      type: 'bind',
      source: options.initPath,
      options: ['bind', 'ro'],
    });
  }

  let rootfsPropagation: ContainerMounts['rootfsPropagation'];
  for (const { propagation } of user) {
    if (propagation === 'shared' || propagation === 'rshared') rootfsPropagation = 'shared';
    else if ((propagation === 'slave' || propagation === 'rslave') && rootfsPropagation === undefined)
      rootfsPropagation = 'rslave';
  }

  let mounts = [...defaults, ...user.map((u) => u.mount)];
  if (options.readonlyRootfs) {
    mounts = mounts.map((mount) =>
      userDestinations.has(mount.destination) || WRITABLE_ON_READONLY_ROOT.has(mount.destination)
        ? mount
        : withOption(mount, 'ro'),
    );
  }
  if (options.privileged) {
    mounts = mounts.map((mount) => (mount.destination === '/sys' ? withoutOption(mount, 'ro') : mount));
  }
  const writableCgroups = options.writableCgroups ?? options.privileged;
  mounts = mounts.map((mount) => {
    if (mount.type !== 'cgroup') return mount;
    return writableCgroups ? withoutOption(mount, 'ro') : withOption(mount, 'ro');
  });
  return { mounts, ...(rootfsPropagation ? { rootfsPropagation } : {}) };
}
