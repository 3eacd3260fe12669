/**
 * HostConfig resources -> OCI `linux.resources` and `process.rlimits`, with the defaults and
 * validation of Docker's daemon (adaptContainerSettings, verifyPlatformContainerResources,
 * WithResources, WithRlimits) and its messages.
 */
import { describeError, internal, invalidArgument } from '../common/errors.js';
import type {
  BlockIO,
  Cpu,
  Device,
  Memory,
  Resources as OciResources,
  Rlimit,
  ThrottleDevice,
} from '../oci/runtime-spec.js';
import type { Resources, ThrottleDevice as DockerThrottleDevice, Ulimit } from './docker-types.js';
import { DOCKER_ULIMIT_NAMES } from '../linux/rlimits.js';

/** Docker's smallest memory limit and reservation. */
export const MIN_MEMORY = 6 * 1024 * 1024;
const CFS_PERIOD = 100_000;
/** RLIM_INFINITY as a JSON number: the closest double, which a runtime reads as unlimited. */
export const RLIMIT_UNLIMITED = 2 ** 64 - 1;

const ULIMIT_NAMES = DOCKER_ULIMIT_NAMES;

export interface HostResources {
  cgroupVersion: 1 | 2;
  /** CPUs usable by containers (Docker's NumCPU), for the --cpus range and --cpuset-cpus. */
  cpuCount: number;
  /** Whether the memory cgroup accounts swap; without it Docker drops the swap limit. */
  swapAccounting: boolean;
  statDevice?: (path: string) => Device[];
  warn: (message: string) => void;
}

const bad = (message: string): never => {
  throw invalidArgument(message);
};

/** `0-3,5` -> [0,1,2,3,5]; undefined when the syntax is wrong (Docker's parsers.ParseUintList). */
/** No CPU or memory node id reaches this (the kernel's NR_CPUS is at most 8192). */
const MAX_CPUSET_ID = 65535;

/**
 * The highest id of a cpuset list ("0-3,8"), or undefined when it is malformed. Ranges are never
 * expanded: an API body of many wide ranges must cost no more than its length.
 */
function highestOfUintList(text: string): number | undefined {
  let highest = 0;
  for (const part of text.split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (match === null) return undefined;
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first || last > MAX_CPUSET_ID) return undefined;
    highest = Math.max(highest, last);
  }
  return highest;
}

function memoryOf(r: Resources, host: HostResources): Memory | undefined {
  const memory = r.Memory ?? 0;
  let swap = r.MemorySwap ?? 0;
  const reservation = r.MemoryReservation ?? 0;
  if (memory !== 0 && memory < MIN_MEMORY) bad('Minimum memory limit allowed is 6MB');
  if (memory > 0 && swap === 0) swap = memory * 2;
  if (memory > 0 && swap !== -1 && !host.swapAccounting) {
    host.warn(
      'Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.',
    );
    swap = -1;
  }
  if (memory > 0 && swap > 0 && swap < memory)
    bad('Minimum memoryswap limit should be larger than memory limit, see usage');
  if (memory === 0 && swap > 0)
    bad('You should always set the Memory limit when using Memoryswap limit, see usage');
  let swappiness = r.MemorySwappiness ?? undefined;
  if (swappiness === -1) swappiness = undefined;
  if (swappiness !== undefined && (swappiness < 0 || swappiness > 100))
    bad(`Invalid value: ${swappiness}, valid memory swappiness range is 0-100`);
  if (swappiness !== undefined && host.cgroupVersion === 2) {
    host.warn(
      'Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.',
    );
    swappiness = undefined;
  }
  if (reservation > 0 && reservation < MIN_MEMORY) bad('Minimum memory reservation allowed is 6MB');
  if (memory > 0 && reservation > 0 && memory < reservation)
    bad('Minimum memory limit can not be less than memory reservation limit, see usage');
  let oomKillDisable = r.OomKillDisable ?? undefined;
  if (oomKillDisable !== undefined && host.cgroupVersion === 2) {
    if (oomKillDisable) host.warn('Your kernel does not support OomKillDisable. OomKillDisable discarded.');
    oomKillDisable = undefined;
  }
  if (oomKillDisable && memory === 0)
    host.warn(
      'OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.',
    );
  let kernelTCP = r.KernelMemoryTCP ?? 0;
  if (kernelTCP !== 0 && host.cgroupVersion === 2) {
    host.warn(
      'Your kernel does not support kernel memory TCP limit capabilities or the cgroup is not mounted. Limitation discarded.',
    );
    kernelTCP = 0;
  }

  const result: Memory = {};
  if (memory > 0) result.limit = memory;
  if (reservation > 0) result.reservation = reservation;
  if (swap > 0) result.swap = swap;
  if (swappiness !== undefined) result.swappiness = swappiness;
  if (oomKillDisable !== undefined) result.disableOOMKiller = oomKillDisable;
  if (kernelTCP !== 0) result.kernelTCP = kernelTCP;
  return Object.keys(result).length > 0 ? result : undefined;
}

function cpuOf(r: Resources, host: HostResources): Cpu | undefined {
  const nano = r.NanoCpus ?? 0;
  const period = r.CpuPeriod ?? 0;
  const quota = r.CpuQuota ?? 0;
  const shares = r.CpuShares ?? 0;
  if (nano > 0 && period > 0) bad('Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (nano > 0 && quota > 0) bad('Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  if (nano < 0 || nano > host.cpuCount * 1e9)
    bad(
      `Range of CPUs is from 0.01 to ${host.cpuCount}.00, as there are only ${host.cpuCount} CPUs available`,
    );
  if (shares < 0) bad('shares: invalid argument');
  if (period !== 0 && (period < 1000 || period > 1_000_000))
    bad('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  if (quota > 0 && quota < 1000) bad('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  const rtPeriod = r.CpuRealtimePeriod ?? 0;
  const rtRuntime = r.CpuRealtimeRuntime ?? 0;
  if ((rtPeriod > 0 || rtRuntime > 0) && host.cgroupVersion === 2)
    bad('Your kernel does not support CPU real-time scheduler');
  if (rtPeriod !== 0 && rtRuntime !== 0 && rtRuntime > rtPeriod)
    bad('cpu-rt-runtime cannot be higher than cpu-rt-period');
  const cpus = r.CpusetCpus ?? '';
  const mems = r.CpusetMems ?? '';
  if (cpus !== '') {
    const highest =
      highestOfUintList(cpus) ?? bad(`Invalid value ${cpus} for cpuset cpus: invalid format: ${cpus}`);
    if (highest >= host.cpuCount) {
      const available = host.cpuCount === 1 ? '0' : `0-${host.cpuCount - 1}`;
      bad(`Requested CPUs are not available - requested ${cpus}, available: ${available}`);
    }
  }
  if (mems !== '' && highestOfUintList(mems) === undefined)
    bad(`Invalid value ${mems} for cpuset mems: invalid format: ${mems}`);

  const result: Cpu = {};
  if (shares > 0) result.shares = shares;
  if (cpus !== '') result.cpus = cpus;
  if (mems !== '') result.mems = mems;
  if (nano > 0) {
    result.period = CFS_PERIOD;
    result.quota = Math.trunc((nano * CFS_PERIOD) / 1e9);
  }
  if (period !== 0) result.period = period;
  if (quota !== 0) result.quota = quota;
  if (rtPeriod !== 0) result.realtimePeriod = rtPeriod;
  if (rtRuntime !== 0) result.realtimeRuntime = rtRuntime;
  return Object.keys(result).length > 0 ? result : undefined;
}

/** The major and minor numbers of a device given by path, for the blkio device limits. */
function deviceNumbers(path: string, field: string, host: HostResources): { major: number; minor: number } {
  if (host.statDevice === undefined) throw internal('buildSpec: statDevice is needed but was not given');
  let found: Device[];
  try {
    found = host.statDevice(path);
  } catch (err) {
    return bad(`${field}: ${describeError(err)}`);
  }
  const device = found.length === 1 && found[0]?.path === path ? found[0] : undefined;
  if (device?.major === undefined || device.minor === undefined)
    return bad(`${field}: ${path} is not a device`);
  return { major: device.major, minor: device.minor };
}

function throttles(
  list: DockerThrottleDevice[] | null | undefined,
  field: string,
  host: HostResources,
): ThrottleDevice[] {
  return (list ?? []).map((d, i) => {
    if (!Number.isInteger(d.Rate) || d.Rate < 0) bad(`${field}[${i}]: invalid rate ${d.Rate}`);
    return { ...deviceNumbers(d.Path, `${field}[${i}]`, host), rate: d.Rate };
  });
}

function blockIOOf(r: Resources, host: HostResources): BlockIO | undefined {
  const weight = r.BlkioWeight ?? 0;
  if (weight > 0 && (weight < 10 || weight > 1000)) bad('Range of blkio weight is from 10 to 1000');
  if ((r.IOMaximumBandwidth ?? 0) !== 0 || (r.IOMaximumIOps ?? 0) !== 0)
    bad('Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps');
  const result: BlockIO = {};
  if (weight > 0) result.weight = weight;
  const weightDevices = (r.BlkioWeightDevice ?? []).map((d, i) => {
    if (d.Weight > 0 && (d.Weight < 10 || d.Weight > 1000))
      bad(`invalid weight for device: ${d.Path}:${d.Weight}`);
    return { ...deviceNumbers(d.Path, `BlkioWeightDevice[${i}]`, host), weight: d.Weight };
  });
  if (weightDevices.length > 0) result.weightDevice = weightDevices;
  const lists = [
    ['throttleReadBpsDevice', r.BlkioDeviceReadBps, 'BlkioDeviceReadBps'],
    ['throttleWriteBpsDevice', r.BlkioDeviceWriteBps, 'BlkioDeviceWriteBps'],
    ['throttleReadIOPSDevice', r.BlkioDeviceReadIOps, 'BlkioDeviceReadIOps'],
    ['throttleWriteIOPSDevice', r.BlkioDeviceWriteIOps, 'BlkioDeviceWriteIOps'],
  ] as const;
  for (const [key, list, field] of lists) {
    const devices = throttles(list, field, host);
    if (devices.length > 0) result[key] = devices;
  }
  return Object.keys(result).length > 0 ? result : undefined;
}

/** Resource limits of a container; device cgroup rules are added by the caller. */
export function containerResources(r: Resources, host: HostResources): OciResources {
  const result: OciResources = {};
  const memory = memoryOf(r, host);
  if (memory) result.memory = memory;
  const cpu = cpuOf(r, host);
  if (cpu) result.cpu = cpu;
  const blockIO = blockIOOf(r, host);
  if (blockIO) result.blockIO = blockIO;
  if (r.PidsLimit !== undefined && r.PidsLimit !== null) {
    // The API takes 0 and negative values as "unlimited"; the runtime spec wants -1.
    result.pids = { limit: r.PidsLimit > 0 ? r.PidsLimit : -1 };
  }
  return result;
}

const limitValue = (value: number): number => (value === -1 ? RLIMIT_UNLIMITED : value);

/** `--ulimit` over the daemon's default-ulimits (by name), as process.rlimits. */
export function containerRlimits(ulimits: Ulimit[] | null | undefined, defaults: Ulimit[] = []): Rlimit[] {
  const own = ulimits ?? [];
  const names = new Set(own.map((u) => u.Name));
  return [...own, ...defaults.filter((u) => !names.has(u.Name))].map((u) => {
    if (!ULIMIT_NAMES.has(u.Name)) bad(`invalid ulimit type: ${u.Name}`);
    for (const value of [u.Soft, u.Hard]) {
      if (!Number.isSafeInteger(value) || value < -1) bad(`invalid ulimit value for ${u.Name}: ${value}`);
    }
    const soft = limitValue(u.Soft);
    const hard = limitValue(u.Hard);
    if (soft > hard) bad(`ulimit soft limit must be less than or equal to hard limit: ${u.Soft} > ${u.Hard}`);
    return { type: `RLIMIT_${u.Name.toUpperCase()}`, soft, hard };
  });
}
