/**
 * Where the cgroup filesystems are and which mode the host runs: v1 (only legacy hierarchies),
 * hybrid (legacy hierarchies for the controllers plus a cgroup2 mount) or unified (cgroup2 only).
 * Read from /proc/self/mountinfo and /proc/self/cgroup.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { unavailable } from '../../common/errors.js';

export type CgroupMode = 'v1' | 'hybrid' | 'unified';

export interface CgroupMount {
  mountPoint: string;
  /** The directory of the hierarchy that is mounted there ("/" unless a cgroup namespace or bind mount). */
  root: string;
}

export interface V1Hierarchy extends CgroupMount {
  /** Controllers mounted together in this hierarchy, e.g. ["cpu", "cpuacct"], or ["name=systemd"]. */
  controllers: string[];
}

export interface CgroupLayout {
  mode: CgroupMode;
  /** v1 hierarchies by controller name ("memory", "name=systemd"). */
  v1: Record<string, V1Hierarchy>;
  unified?: CgroupMount;
  /** This process's cgroup per v1 controller, and under "" in the unified hierarchy. */
  own: Record<string, string>;
}

/** Controllers a v1 hierarchy can carry; other super options ("rw", "clone_children", ...) are not. */
const V1_CONTROLLERS = new Set([
  'cpu',
  'cpuacct',
  'cpuset',
  'memory',
  'devices',
  'freezer',
  'net_cls',
  'net_prio',
  'blkio',
  'perf_event',
  'hugetlb',
  'pids',
  'rdma',
  'misc',
]);

const unescape = (field: string): string =>
  field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));

/** The cgroup mounts in a mountinfo text, in order. */
export function parseCgroupMounts(mountinfo: string): Array<{ type: 'cgroup' | 'cgroup2' } & V1Hierarchy> {
  const mounts: Array<{ type: 'cgroup' | 'cgroup2' } & V1Hierarchy> = [];
  for (const line of mountinfo.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0) continue;
    const type = fields[separator + 1];
    if (type !== 'cgroup' && type !== 'cgroup2') continue;
    const superOptions = (fields[separator + 3] ?? '').split(',');
    mounts.push({
      type,
      root: unescape(fields[3] ?? '/'),
      mountPoint: unescape(fields[4] ?? ''),
      controllers:
        type === 'cgroup2'
          ? []
          : superOptions.filter((option) => V1_CONTROLLERS.has(option) || option.startsWith('name=')),
    });
  }
  return mounts;
}

/** /proc/<pid>/cgroup as controller -> path; the unified hierarchy's line ("0::/path") is under "". */
export function parseProcCgroup(text: string): Record<string, string> {
  const own: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (match === null) continue;
    const [, , list = '', path = '/'] = match;
    if (list === '') own[''] = path;
    else for (const controller of list.split(',')) own[controller] = path;
  }
  return own;
}

export function cgroupLayout(mountinfo: string, procCgroup: string): CgroupLayout {
  const v1: Record<string, V1Hierarchy> = {};
  let unified: CgroupMount | undefined;
  for (const mount of parseCgroupMounts(mountinfo)) {
    // A hierarchy mounted twice (bind mounts, nested containers): the first mount wins.
    if (mount.type === 'cgroup2') {
      unified ??= { mountPoint: mount.mountPoint, root: mount.root };
      continue;
    }
    const hierarchy = { mountPoint: mount.mountPoint, root: mount.root, controllers: mount.controllers };
    for (const controller of mount.controllers) v1[controller] ??= hierarchy;
  }
  const hasV1Controllers = Object.keys(v1).some((name) => !name.startsWith('name='));
  let mode: CgroupMode;
  if (hasV1Controllers) mode = unified === undefined ? 'v1' : 'hybrid';
  else if (unified !== undefined) mode = 'unified';
  else throw unavailable('no cgroup filesystem is mounted (none in /proc/self/mountinfo)');
  return { mode, v1, ...(unified === undefined ? {} : { unified }), own: parseProcCgroup(procCgroup) };
}

/** The layout as this process sees it. `procSelf` is injectable for tests. */
export async function detectCgroupLayout(procSelf = '/proc/self'): Promise<CgroupLayout> {
  const [mountinfo, procCgroup] = await Promise.all([
    readFile(join(procSelf, 'mountinfo'), 'utf8'),
    readFile(join(procSelf, 'cgroup'), 'utf8'),
  ]);
  return cgroupLayout(mountinfo, procCgroup);
}
