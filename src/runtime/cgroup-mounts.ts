import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

/** A mounted cgroup hierarchy of the host, as the container's /sys/fs/cgroup needs to know it. */
export interface CgroupHierarchy {
  version: 1 | 2;
  /** Directory name under /sys/fs/cgroup (e.g. `memory`, `cpu,cpuacct`, `unified`). */
  name: string;
  mountPoint: string;
  /** Mount data that selects this hierarchy's controllers (e.g. `memory`, `name=systemd`). */
  superOptions: string;
}

const unescape = (text: string): string =>
  text.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));

/** cgroup and cgroup2 mounts from a mountinfo text. */
export function parseCgroupHierarchies(mountinfo: string): CgroupHierarchy[] {
  const result: CgroupHierarchy[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = unescape(left.split(' ')[4] ?? '');
    const [fstype, , superOptions = ''] = right.split(' ');
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    if (result.some((h) => h.mountPoint === mountPoint)) continue;
    const controllers = superOptions
      .split(',')
      .filter((o) => o !== 'rw' && o !== 'ro' && o !== 'nsdelegate' && o !== 'memory_recursiveprot')
      .join(',');
    result.push({
      version: fstype === 'cgroup2' ? 2 : 1,
      name: basename(mountPoint),
      mountPoint,
      superOptions: fstype === 'cgroup2' ? '' : controllers,
    });
  }
  return result;
}

let cached: CgroupHierarchy[] | undefined;

/** Read once per process, like the cgroup layout: a host does not remount its cgroup hierarchies. */
export function hostCgroupHierarchies(): CgroupHierarchy[] {
  cached ??= parseCgroupHierarchies(readFileSync('/proc/self/mountinfo', 'utf8'));
  return cached;
}
