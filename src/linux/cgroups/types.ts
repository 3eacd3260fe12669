/** The cgroup layer's interface: one manager per container cgroup, with a v1 and a v2 driver. */
import type { Resources } from '../../oci/runtime-spec.js';

export type FreezerState = 'frozen' | 'thawed';

/**
 * How a new process starts out in a cgroup without a migration by pid, which takes the kernel's
 * global threadgroup lock (on cgroup v1 a full RCU grace period, several milliseconds):
 * `clone-into` creates it there (v2, clone3 CLONE_INTO_CGROUP on the directory); `self-write`
 * has the process write "0" to each file (v1 `tasks`), which moves the writing thread alone and
 * skips that lock.
 */
export type CgroupEntry =
  { kind: 'clone-into'; directory: string } | { kind: 'self-write'; files: readonly string[] };

export interface CgroupManager {
  /** Which driver manages this cgroup. */
  readonly version: 'v1' | 'v2';
  /** The cgroup's path inside its hierarchy, as /proc/<pid>/cgroup shows it (v1: the first hierarchy's). */
  readonly path: string;
  /** Absolute directories of the cgroup: one on v2, one per mounted hierarchy on v1. */
  readonly directories: readonly string[];
  /** Makes the cgroup directories (and, on v2, enables controllers on the way down). */
  create(): Promise<void>;
  /** Moves a process (all its threads) into the cgroup. */
  addProcess(pid: number): Promise<void>;
  /** How a process about to be created gets into the cgroup (berth-shim does it). */
  readonly entry: CgroupEntry;
  /** Sets the resources of a new cgroup. Unset fields are left alone. */
  apply(resources: Resources): Promise<void>;
  /** Changes the resources of a running cgroup (`memory.checkBeforeUpdate` is honoured here). */
  update(resources: Resources): Promise<void>;
  stats(): Promise<CgroupStats>;
  /** Freezes every process in the cgroup and waits until the kernel reports it frozen. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  state(): Promise<FreezerState>;
  /** Processes in the cgroup and its descendants, sorted. */
  pids(): Promise<number[]>;
  /** How many processes the kernel's OOM killer killed in this cgroup (0 without a memory controller). */
  oomKillCount(): Promise<number>;
  /** Removes the cgroup directories. Kills nothing: the caller makes sure no process is left. */
  destroy(): Promise<void>;
}

/** Resource usage in one shape for both drivers (what `docker stats` needs). Sizes in bytes, times in ns. */
export interface CgroupStats {
  memory?: MemoryStats;
  cpu?: CpuStats;
  pids?: PidsStats;
  io?: IoStats;
}

export interface MemoryStats {
  usage: number;
  /** Highest usage seen (v1 memory.max_usage_in_bytes, v2 memory.peak where the kernel has it). */
  maxUsage?: number;
  /** Undefined when unlimited. */
  limit?: number;
  /** Page cache (v1 total_cache, v2 file). */
  cache: number;
  /** Anonymous memory (v1 total_rss, v2 anon). */
  rss: number;
  /** Swap alone, not memory plus swap; absent when the kernel does not account swap. */
  swap?: { usage: number; limit?: number };
  /** Times the limit was hit (v1 memory.failcnt, v2 memory.events max). */
  failcnt: number;
  /** Times the cgroup ran out of memory (v2 memory.events oom; v1 has no such counter). */
  oomEvents?: number;
  oomKills: number;
  /** memory.stat as the kernel wrote it. */
  stat: Record<string, number>;
}

export interface CpuStats {
  usageTotal: number;
  /** Per CPU (v1 cpuacct.usage_percpu); empty on v2, which does not account per CPU. */
  usagePerCpu: number[];
  usageUser: number;
  usageSystem: number;
  throttling: { periods: number; throttledPeriods: number; throttledTime: number };
}

export interface PidsStats {
  current: number;
  /** Undefined when unlimited. */
  limit?: number;
}

export interface IoDeviceStats {
  major: number;
  minor: number;
  readBytes: number;
  writeBytes: number;
  readOps: number;
  writeOps: number;
}

export interface IoStats {
  devices: IoDeviceStats[];
}
