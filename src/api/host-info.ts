/**
 * Facts about the host for /info and /version: operating system, cgroup version and the limits the
 * cgroup controllers allow, the filesystem under the data root. Parsers take text so tests can feed
 * them fixtures; hostFacts() reads the real files.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

const unescapeMount = (field: string): string =>
  field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));

export function parseMountinfo(text: string): MountEntry[] {
  const mounts: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0) continue;
    mounts.push({
      mountPoint: unescapeMount(fields[4] ?? ''),
      fsType: fields[separator + 1] ?? '',
      superOptions: (fields[separator + 3] ?? '').split(','),
    });
  }
  return mounts;
}

/** os-release as a map (quotes removed). */
export function parseOsRelease(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match === null) continue;
    const raw = match[2] ?? '';
    values[match[1] ?? ''] = raw.replace(/^(["'])(.*)\1$/, '$2').replace(/\\(["$`\\])/g, '$1');
  }
  return values;
}

/** "2" when /sys/fs/cgroup is a cgroup2 mount (unified), else "1" (v1 or hybrid), as dockerd reports. */
export function cgroupVersion(mounts: MountEntry[]): '1' | '2' {
  const root = mounts.filter((m) => m.mountPoint === '/sys/fs/cgroup').at(-1);
  return root?.fsType === 'cgroup2' ? '2' : '1';
}

export interface CgroupFeatures {
  MemoryLimit: boolean;
  SwapLimit: boolean;
  KernelMemoryTCP: boolean;
  CpuCfsPeriod: boolean;
  CpuCfsQuota: boolean;
  CPUShares: boolean;
  CPUSet: boolean;
  PidsLimit: boolean;
  OomKillDisable: boolean;
}

export interface FileProbe {
  exists(path: string): boolean;
  read(path: string): string | undefined;
}

export const realProbe: FileProbe = {
  exists: (path) => existsSync(path),
  read: (path) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  },
};

/** Which resource limits the cgroup controllers of this host can enforce. */
export function cgroupFeatures(mounts: MountEntry[], probe: FileProbe): CgroupFeatures {
  if (cgroupVersion(mounts) === '2') {
    const controllers = new Set((probe.read('/sys/fs/cgroup/cgroup.controllers') ?? '').trim().split(/\s+/));
    const cpu = controllers.has('cpu');
    return {
      MemoryLimit: controllers.has('memory'),
      SwapLimit: controllers.has('memory'),
      KernelMemoryTCP: false,
      CpuCfsPeriod: cpu,
      CpuCfsQuota: cpu,
      CPUShares: cpu,
      CPUSet: controllers.has('cpuset'),
      PidsLimit: controllers.has('pids'),
      OomKillDisable: false,
    };
  }
  const hierarchy = (controller: string): string | undefined =>
    mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(controller))?.mountPoint;
  const has = (controller: string, file: string): boolean => {
    const dir = hierarchy(controller);
    return dir !== undefined && probe.exists(join(dir, file));
  };
  return {
    MemoryLimit: has('memory', 'memory.limit_in_bytes'),
    SwapLimit: has('memory', 'memory.memsw.limit_in_bytes'),
    KernelMemoryTCP: has('memory', 'memory.kmem.tcp.limit_in_bytes'),
    CpuCfsPeriod: has('cpu', 'cpu.cfs_period_us'),
    CpuCfsQuota: has('cpu', 'cpu.cfs_quota_us'),
    CPUShares: has('cpu', 'cpu.shares'),
    CPUSet: has('cpuset', 'cpuset.cpus'),
    PidsLimit: hierarchy('pids') !== undefined,
    OomKillDisable: has('memory', 'memory.oom_control'),
  };
}

/** dockerd's warnings for limits the host cannot enforce. */
export function cgroupWarnings(features: CgroupFeatures, version: '1' | '2'): string[] {
  const warnings: string[] = [];
  if (!features.MemoryLimit) warnings.push('WARNING: No memory limit support');
  if (!features.SwapLimit) warnings.push('WARNING: No swap limit support');
  if (!features.OomKillDisable && version === '1') warnings.push('WARNING: No oom kill disable support');
  if (!features.CpuCfsQuota) warnings.push('WARNING: No cpu cfs quota support');
  if (!features.CpuCfsPeriod) warnings.push('WARNING: No cpu cfs period support');
  if (!features.CPUShares) warnings.push('WARNING: No cpu shares support');
  if (!features.CPUSet) warnings.push('WARNING: No cpuset support');
  if (!features.PidsLimit) warnings.push('WARNING: No pids limit support');
  return warnings;
}

/** The filesystem type of the mount holding `path` (the longest mount point above it). */
export function backingFilesystem(mounts: MountEntry[], path: string): string {
  let best: MountEntry | undefined;
  for (const mount of mounts) {
    const point = mount.mountPoint;
    const under = point === '/' || path === point || path.startsWith(point + '/');
    if (under && (best === undefined || point.length >= best.mountPoint.length)) best = mount;
  }
  return best?.fsType ?? 'unknown';
}

/** Open file descriptors of this process. */
export function countOpenFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/** Node's process.arch as Go's GOARCH, which /version reports. */
export function goArch(arch: string = process.arch): string {
  const names: Record<string, string> = { x64: 'amd64', ia32: '386', ppc64: 'ppc64le' };
  return names[arch] ?? arch;
}

export interface HostFacts {
  kernelVersion: string;
  operatingSystem: string;
  osVersion: string;
  architecture: string;
  ncpu: number;
  memTotal: number;
  hostname: string;
  cgroupVersion: '1' | '2';
  cgroupFeatures: CgroupFeatures;
  backingFilesystem: string;
  ipv4Forwarding: boolean;
  seccomp: boolean;
}

export async function hostFacts(dataRoot: string): Promise<HostFacts> {
  const [mountinfo, osRelease, forwarding, status] = await Promise.all([
    readFile('/proc/self/mountinfo', 'utf8').catch(() => ''),
    readFile('/etc/os-release', 'utf8').catch(() => readFile('/usr/lib/os-release', 'utf8').catch(() => '')),
    readFile('/proc/sys/net/ipv4/ip_forward', 'utf8').catch(() => '0'),
    readFile('/proc/self/status', 'utf8').catch(() => ''),
  ]);
  const mounts = parseMountinfo(mountinfo);
  const release = parseOsRelease(osRelease);
  const version = cgroupVersion(mounts);
  return {
    kernelVersion: os.release(),
    operatingSystem: release.PRETTY_NAME ?? '<unknown>',
    osVersion: release.VERSION_ID ?? '',
    architecture: os.machine(),
    ncpu: os.availableParallelism(),
    memTotal: os.totalmem(),
    hostname: os.hostname(),
    cgroupVersion: version,
    cgroupFeatures: cgroupFeatures(mounts, realProbe),
    backingFilesystem: backingFilesystem(mounts, dataRoot),
    ipv4Forwarding: forwarding.trim() === '1',
    seccomp: /^Seccomp:\s/m.test(status),
  };
}
