/** Docker's stats JSON (GET /containers/{id}/stats) and top (GET /containers/{id}/top). */
import { readFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { availableParallelism, totalmem } from 'node:os';
import type { CgroupStats } from '../linux/cgroups/types.js';
import { invalidArgument } from '../common/errors.js';

const run = promisify(execFile);
/** USER_HZ: /proc/stat counts in 1/100 s on every Linux architecture berth runs on. */
const NS_PER_TICK = 10_000_000;

/** Total CPU time of the host in nanoseconds (Docker's system_cpu_usage). */
export async function systemCpuUsage(): Promise<number> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n').find((l) => l.startsWith('cpu '));
  const ticks = (line ?? '').trim().split(/\s+/).slice(1, 8).map(Number);
  return ticks.reduce((sum, value) => sum + (Number.isFinite(value) ? value : 0), 0) * NS_PER_TICK;
}

export interface StatsSample {
  read: string;
  cgroup: CgroupStats;
  system: number;
  /** Per interface in the container (eth0, ...), Docker's field names. */
  networks?: Record<string, NetworkCounters>;
}

export interface NetworkCounters {
  rx_bytes: number;
  rx_packets: number;
  rx_errors: number;
  rx_dropped: number;
  tx_bytes: number;
  tx_packets: number;
  tx_errors: number;
  tx_dropped: number;
}

/**
 * The counters of the container's interfaces, read from the host ends of their veth pairs: what
 * the host side sends, the container receives. `sysfs` is /sys/class/net (tests pass their own).
 */
export async function networkCounters(
  endpoints: Array<{ ifName: string; hostIf: string }>,
  sysfs = '/sys/class/net',
): Promise<Record<string, NetworkCounters> | undefined> {
  const read = async (dev: string, name: string): Promise<number> =>
    Number((await readFile(`${sysfs}/${dev}/statistics/${name}`, 'utf8')).trim()) || 0;
  const result: Record<string, NetworkCounters> = {};
  for (const { ifName, hostIf } of endpoints) {
    // An interface a CNI plugin made has no host end berth knows of.
    if (hostIf === '') continue;
    try {
      result[ifName] = {
        rx_bytes: await read(hostIf, 'tx_bytes'),
        rx_packets: await read(hostIf, 'tx_packets'),
        rx_errors: await read(hostIf, 'tx_errors'),
        rx_dropped: await read(hostIf, 'tx_dropped'),
        tx_bytes: await read(hostIf, 'rx_bytes'),
        tx_packets: await read(hostIf, 'rx_packets'),
        tx_errors: await read(hostIf, 'rx_errors'),
        tx_dropped: await read(hostIf, 'rx_dropped'),
      };
    } catch {
      continue;
    }
  }
  return Object.keys(result).length > 0 ? result : undefined;
}

/** Like dockerd, no limit (or one above the machine's memory) shows as the machine's memory. */
export function memoryLimit(limit: number | undefined, machine = totalmem()): number {
  return limit === undefined || limit === 0 || limit > machine ? machine : limit;
}

const emptyCpu = {
  cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 },
  throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
};

function cpuJson(sample: StatsSample | undefined): object {
  if (!sample?.cgroup.cpu) return emptyCpu;
  const cpu = sample.cgroup.cpu;
  return {
    cpu_usage: {
      total_usage: cpu.usageTotal,
      ...(cpu.usagePerCpu.length > 0 ? { percpu_usage: cpu.usagePerCpu } : {}),
      usage_in_kernelmode: cpu.usageSystem,
      usage_in_usermode: cpu.usageUser,
    },
    system_cpu_usage: sample.system,
    online_cpus: availableParallelism(),
    throttling_data: {
      periods: cpu.throttling.periods,
      throttled_periods: cpu.throttling.throttledPeriods,
      throttled_time: cpu.throttling.throttledTime,
    },
  };
}

export function statsJson(
  id: string,
  name: string,
  sample: StatsSample,
  previous: StatsSample | undefined,
): object {
  const { memory, pids, io } = sample.cgroup;
  const blkio = (key: 'readBytes' | 'writeBytes', op: string): object[] =>
    (io?.devices ?? []).map((d) => ({ major: d.major, minor: d.minor, op, value: d[key] }));
  return {
    read: sample.read,
    preread: previous?.read ?? '0001-01-01T00:00:00Z',
    pids_stats: { current: pids?.current ?? 0, ...(pids?.limit !== undefined ? { limit: pids.limit } : {}) },
    blkio_stats: {
      io_service_bytes_recursive: [...blkio('readBytes', 'read'), ...blkio('writeBytes', 'write')],
      io_serviced_recursive: null,
      io_queue_recursive: null,
      io_service_time_recursive: null,
      io_wait_time_recursive: null,
      io_merged_recursive: null,
      io_time_recursive: null,
      sectors_recursive: null,
    },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpuJson(sample),
    precpu_stats: cpuJson(previous),
    memory_stats: memory
      ? {
          usage: memory.usage,
          ...(memory.maxUsage !== undefined ? { max_usage: memory.maxUsage } : {}),
          stats: memory.stat,
          limit: memoryLimit(memory.limit),
          failcnt: memory.failcnt,
        }
      : {},
    name: `/${name}`,
    id,
    ...(sample.networks ? { networks: sample.networks } : {}),
  };
}

/** `ps` with the caller's arguments, keeping only the container's processes (Docker's top). */
export async function topOf(
  pids: number[],
  psArgs = '-ef',
): Promise<{ Titles: string[]; Processes: string[][] }> {
  const args = psArgs.trim().split(/\s+/).filter(Boolean);
  let stdout: string;
  try {
    ({ stdout } = await run('ps', args, { maxBuffer: 16 * 1024 * 1024 }));
  } catch (err) {
    throw invalidArgument(`ps: ${(err as { stderr?: string }).stderr?.trim() || String(err)}`);
  }
  const [header = '', ...lines] = stdout.split('\n');
  const titles = header.trim().split(/\s+/);
  const pidColumn = titles.indexOf('PID');
  if (pidColumn < 0) throw invalidArgument(`Couldn't find PID field in ps output`);
  const wanted = new Set(pids.map(String));
  const processes: string[][] = [];
  for (const line of lines) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < titles.length || !wanted.has(fields[pidColumn] ?? '')) continue;
    processes.push([...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')]);
  }
  return { Titles: titles, Processes: processes };
}
