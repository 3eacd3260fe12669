/**
 * Parsing the kernel's statistics files into CgroupStats. Each function takes the contents of the
 * files it needs (undefined for a missing file), so the parsing is tested without a kernel.
 */
import { parseFlatKeyed, parseNestedKeyed, parseSingle, parseV1Limit } from './cgroupfs.js';
import type { CpuStats, IoDeviceStats, IoStats, MemoryStats, PidsStats } from './types.js';

/** USER_HZ, the unit of cpuacct.stat: 100 on every Linux architecture's user ABI. */
const USER_HZ = 100;

export interface V1MemoryFiles {
  usage?: string; // memory.usage_in_bytes
  maxUsage?: string; // memory.max_usage_in_bytes
  limit?: string; // memory.limit_in_bytes
  stat?: string; // memory.stat
  failcnt?: string; // memory.failcnt
  memswUsage?: string; // memory.memsw.usage_in_bytes
  memswLimit?: string; // memory.memsw.limit_in_bytes
  oomControl?: string; // memory.oom_control
}

export function v1MemoryStats(files: V1MemoryFiles): MemoryStats | undefined {
  const usage = parseSingle(files.usage);
  if (usage === undefined) return undefined;
  const stat = parseFlatKeyed(files.stat);
  const limit = parseV1Limit(files.limit);
  const memswUsage = parseSingle(files.memswUsage);
  const memswLimit = parseV1Limit(files.memswLimit);
  const stats: MemoryStats = {
    usage,
    limit,
    cache: stat.total_cache ?? stat.cache ?? 0,
    rss: stat.total_rss ?? stat.rss ?? 0,
    failcnt: parseSingle(files.failcnt) ?? 0,
    oomKills: parseFlatKeyed(files.oomControl).oom_kill ?? 0,
    stat,
  };
  const maxUsage = parseSingle(files.maxUsage);
  if (maxUsage !== undefined) stats.maxUsage = maxUsage;
  if (memswUsage !== undefined) {
    const swapLimit = memswLimit !== undefined && limit !== undefined ? memswLimit - limit : undefined;
    stats.swap = { usage: Math.max(0, memswUsage - usage), limit: swapLimit };
  }
  return stats;
}

export interface V2MemoryFiles {
  current?: string; // memory.current
  peak?: string; // memory.peak
  max?: string; // memory.max
  stat?: string; // memory.stat
  events?: string; // memory.events
  swapCurrent?: string; // memory.swap.current
  swapMax?: string; // memory.swap.max
}

export function v2MemoryStats(files: V2MemoryFiles): MemoryStats | undefined {
  const usage = parseSingle(files.current);
  if (usage === undefined) return undefined;
  const stat = parseFlatKeyed(files.stat);
  const events = parseFlatKeyed(files.events);
  const stats: MemoryStats = {
    usage,
    limit: parseSingle(files.max),
    cache: stat.file ?? 0,
    rss: stat.anon ?? 0,
    failcnt: events.max ?? 0,
    oomEvents: events.oom ?? 0,
    oomKills: events.oom_kill ?? 0,
    stat,
  };
  const peak = parseSingle(files.peak);
  if (peak !== undefined) stats.maxUsage = peak;
  const swapUsage = parseSingle(files.swapCurrent);
  if (swapUsage !== undefined) stats.swap = { usage: swapUsage, limit: parseSingle(files.swapMax) };
  return stats;
}

export interface V1CpuFiles {
  usage?: string; // cpuacct.usage
  usagePerCpu?: string; // cpuacct.usage_percpu
  usageUser?: string; // cpuacct.usage_user
  usageSystem?: string; // cpuacct.usage_sys
  stat?: string; // cpuacct.stat (USER_HZ ticks; older kernels lack usage_user/usage_sys)
  cpuStat?: string; // cpu.stat
}

export function v1CpuStats(files: V1CpuFiles): CpuStats | undefined {
  const total = parseSingle(files.usage);
  if (total === undefined) return undefined;
  const ticks = parseFlatKeyed(files.stat);
  const throttle = parseFlatKeyed(files.cpuStat);
  return {
    usageTotal: total,
    usagePerCpu: (files.usagePerCpu ?? '').trim().split(/\s+/).filter(Boolean).map(Number),
    usageUser: parseSingle(files.usageUser) ?? ((ticks.user ?? 0) * 1e9) / USER_HZ,
    usageSystem: parseSingle(files.usageSystem) ?? ((ticks.system ?? 0) * 1e9) / USER_HZ,
    throttling: {
      periods: throttle.nr_periods ?? 0,
      throttledPeriods: throttle.nr_throttled ?? 0,
      throttledTime: throttle.throttled_time ?? 0,
    },
  };
}

/** v2 cpu.stat counts in microseconds. */
export function v2CpuStats(cpuStat: string | undefined): CpuStats | undefined {
  if (cpuStat === undefined) return undefined;
  const stat = parseFlatKeyed(cpuStat);
  return {
    usageTotal: (stat.usage_usec ?? 0) * 1000,
    usagePerCpu: [],
    usageUser: (stat.user_usec ?? 0) * 1000,
    usageSystem: (stat.system_usec ?? 0) * 1000,
    throttling: {
      periods: stat.nr_periods ?? 0,
      throttledPeriods: stat.nr_throttled ?? 0,
      throttledTime: (stat.throttled_usec ?? 0) * 1000,
    },
  };
}

export function pidsStats(current: string | undefined, max: string | undefined): PidsStats | undefined {
  const count = parseSingle(current);
  if (count === undefined) return undefined;
  return { current: count, limit: parseSingle(max) };
}

function deviceEntry(devices: Map<string, IoDeviceStats>, major: number, minor: number): IoDeviceStats {
  const key = `${major}:${minor}`;
  let entry = devices.get(key);
  if (entry === undefined) {
    entry = { major, minor, readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0 };
    devices.set(key, entry);
  }
  return entry;
}

/** v1 blkio "8:0 Read 4096" lines from an io_service_bytes and an io_serviced file. */
export function v1IoStats(
  serviceBytes: string | undefined,
  serviced: string | undefined,
): IoStats | undefined {
  if (serviceBytes === undefined && serviced === undefined) return undefined;
  const devices = new Map<string, IoDeviceStats>();
  const add = (
    text: string | undefined,
    read: 'readBytes' | 'readOps',
    write: 'writeBytes' | 'writeOps',
  ): void => {
    for (const line of (text ?? '').split('\n')) {
      const match = /^(\d+):(\d+) (Read|Write) (\d+)$/.exec(line.trim());
      if (match === null) continue;
      const entry = deviceEntry(devices, Number(match[1]), Number(match[2]));
      entry[match[3] === 'Read' ? read : write] += Number(match[4]);
    }
  };
  add(serviceBytes, 'readBytes', 'writeBytes');
  add(serviced, 'readOps', 'writeOps');
  return { devices: [...devices.values()] };
}

/** v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0". */
export function v2IoStats(ioStat: string | undefined): IoStats | undefined {
  if (ioStat === undefined) return undefined;
  const devices = new Map<string, IoDeviceStats>();
  for (const { major, minor, values } of parseNestedKeyed(ioStat)) {
    const entry = deviceEntry(devices, major, minor);
    entry.readBytes += values.rbytes ?? 0;
    entry.writeBytes += values.wbytes ?? 0;
    entry.readOps += values.rios ?? 0;
    entry.writeOps += values.wios ?? 0;
  }
  return { devices: [...devices.values()] };
}
