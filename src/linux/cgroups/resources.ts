/**
 * What both drivers share about linux.resources: which values count as set, the ranges the kernel
 * accepts (checked before anything is written, so the error names the field), and the v1 -> v2
 * conversions.
 *
 * As in runc, 0 means "unset" for the numeric limits (Docker sends zeros for options not given)
 * and -1 means "unlimited".
 */
import { invalidArgument } from '../../common/errors.js';
import type { BlockIO, Cpu, Memory, Resources } from '../../oci/runtime-spec.js';

export const field = (path: string): string => `linux.resources.${path}`;

/** The smallest memory limit: the kernel counts whole pages, so less than one page is no memory. */
export const MIN_MEMORY_LIMIT = 4096;
export const CPU_SHARES_MIN = 2;
export const CPU_SHARES_MAX = 262144;
export const CFS_PERIOD_MIN = 1000;
export const CFS_PERIOD_MAX = 1_000_000;
export const CFS_QUOTA_MIN = 1000;

/** A numeric limit that is set: not undefined, not 0. */
export const isSet = (value: number | undefined | null): value is number =>
  value !== undefined && value !== null && value !== 0;

export function memoryIsSet(m: Memory | undefined): boolean {
  if (m === undefined) return false;
  return (
    isSet(m.limit) ||
    isSet(m.reservation) ||
    isSet(m.swap) ||
    isSet(m.kernelTCP) ||
    swappinessOf(m) !== undefined ||
    m.disableOOMKiller === true ||
    m.useHierarchy !== undefined
  );
}

/** Swappiness, with -1 as unset (what runc and Docker use for "the host's default"). */
export const swappinessOf = (m: Memory): number | undefined =>
  m.swappiness === undefined || m.swappiness === -1 ? undefined : m.swappiness;

/** Fields of linux.resources.cpu handled by the cpu controller (cpus and mems belong to cpuset). */
export const cpuIsSet = (c: Cpu | undefined): boolean =>
  c !== undefined &&
  (isSet(c.shares) ||
    isSet(c.quota) ||
    isSet(c.period) ||
    c.burst !== undefined ||
    isSet(c.realtimeRuntime) ||
    isSet(c.realtimePeriod) ||
    c.idle !== undefined);

export const cpusetIsSet = (c: Cpu | undefined): boolean =>
  c !== undefined && ((c.cpus ?? '') !== '' || (c.mems ?? '') !== '');

export const blockIOIsSet = (b: BlockIO | undefined): boolean =>
  b !== undefined &&
  (isSet(b.weight) ||
    isSet(b.leafWeight) ||
    (b.weightDevice?.length ?? 0) > 0 ||
    (b.throttleReadBpsDevice?.length ?? 0) > 0 ||
    (b.throttleWriteBpsDevice?.length ?? 0) > 0 ||
    (b.throttleReadIOPSDevice?.length ?? 0) > 0 ||
    (b.throttleWriteIOPSDevice?.length ?? 0) > 0);

function integer(value: number, name: string): void {
  if (!Number.isSafeInteger(value)) throw invalidArgument(`${field(name)}: ${value} is not an integer`);
}

/** -1 (unlimited), 0 (unset) or at least `min`. */
function limitOrUnlimited(value: number | undefined | null, name: string, min = 0): void {
  if (value === undefined || value === null) return;
  integer(value, name);
  if (value < -1) throw invalidArgument(`${field(name)}: ${value} is neither -1 (unlimited) nor a size`);
  if (value > 0 && value < min)
    throw invalidArgument(`${field(name)}: ${value} is below the minimum the kernel accepts (${min})`);
}

function inRange(value: number | undefined | null, name: string, min: number, max: number): void {
  if (value === undefined || value === null) return;
  integer(value, name);
  if (value < min || value > max)
    throw invalidArgument(
      `${field(name)}: ${value} is outside the range the kernel accepts (${min} to ${max})`,
    );
}

const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;

/** Checks every value against the kernel's ranges; drivers then only meet host-specific refusals. */
export function validateResources(r: Resources): void {
  const m = r.memory;
  if (m !== undefined) {
    if (m.limit !== undefined && m.limit > 0 && m.limit < MIN_MEMORY_LIMIT) {
      throw invalidArgument(
        `${field('memory.limit')}: ${m.limit} is below the minimum the kernel accepts (${MIN_MEMORY_LIMIT} bytes, one page)`,
      );
    }
    limitOrUnlimited(m.limit, 'memory.limit');
    limitOrUnlimited(m.reservation, 'memory.reservation');
    limitOrUnlimited(m.swap, 'memory.swap');
    limitOrUnlimited(m.kernelTCP, 'memory.kernelTCP');
    if (isSet(m.swap) && m.swap > 0 && isSet(m.limit) && m.limit > 0 && m.swap < m.limit) {
      throw invalidArgument(
        `${field('memory.swap')}: ${m.swap} is below ${field('memory.limit')} (${m.limit}); swap is the limit of memory plus swap`,
      );
    }
    if (isSet(m.swap) && m.swap > 0 && m.limit === -1)
      throw invalidArgument(`${field('memory.swap')}: cannot limit swap while memory is unlimited`);
    const swappiness = swappinessOf(m);
    if (swappiness !== undefined) inRange(swappiness, 'memory.swappiness', 0, 100);
  }
  const c = r.cpu;
  if (c !== undefined) {
    if (isSet(c.shares)) inRange(c.shares, 'cpu.shares', CPU_SHARES_MIN, CPU_SHARES_MAX);
    if (isSet(c.period)) inRange(c.period, 'cpu.period', CFS_PERIOD_MIN, CFS_PERIOD_MAX);
    limitOrUnlimited(c.quota, 'cpu.quota', CFS_QUOTA_MIN);
    if (c.burst !== undefined) inRange(c.burst, 'cpu.burst', 0, Number.MAX_SAFE_INTEGER);
    limitOrUnlimited(c.realtimeRuntime, 'cpu.realtimeRuntime');
    if (isSet(c.realtimePeriod)) inRange(c.realtimePeriod, 'cpu.realtimePeriod', 1, Number.MAX_SAFE_INTEGER);
    if (c.idle !== undefined) inRange(c.idle, 'cpu.idle', 0, 1);
    for (const key of ['cpus', 'mems'] as const) {
      const list = c[key];
      if (list !== undefined && list !== '' && !CPU_LIST.test(list))
        throw invalidArgument(`${field(`cpu.${key}`)}: "${list}" is not a list like "0-3,7"`);
    }
  }
  if (r.pids !== undefined) integer(r.pids.limit, 'pids.limit');
  const b = r.blockIO;
  if (b !== undefined) {
    if (isSet(b.weight)) inRange(b.weight, 'blockIO.weight', 10, 1000);
    if (isSet(b.leafWeight)) inRange(b.leafWeight, 'blockIO.leafWeight', 10, 1000);
    (b.weightDevice ?? []).forEach((d, i) => {
      inRange(d.major, `blockIO.weightDevice[${i}].major`, 0, 0xffffffff);
      inRange(d.minor, `blockIO.weightDevice[${i}].minor`, 0, 0xffffffff);
      if (isSet(d.weight)) inRange(d.weight, `blockIO.weightDevice[${i}].weight`, 10, 1000);
      if (isSet(d.leafWeight)) inRange(d.leafWeight, `blockIO.weightDevice[${i}].leafWeight`, 10, 1000);
    });
    for (const key of THROTTLE_KEYS) {
      (b[key] ?? []).forEach((d, i) => {
        inRange(d.major, `blockIO.${key}[${i}].major`, 0, 0xffffffff);
        inRange(d.minor, `blockIO.${key}[${i}].minor`, 0, 0xffffffff);
        inRange(d.rate, `blockIO.${key}[${i}].rate`, 0, Number.MAX_SAFE_INTEGER);
      });
    }
  }
  (r.hugepageLimits ?? []).forEach((h, i) => {
    if (!/^\d+[KMG]B$/.test(h.pageSize))
      throw invalidArgument(
        `${field(`hugepageLimits[${i}].pageSize`)}: "${h.pageSize}" is not a size like "2MB"`,
      );
    limitOrUnlimited(h.limit, `hugepageLimits[${i}].limit`);
  });
}

export const THROTTLE_KEYS = [
  'throttleReadBpsDevice',
  'throttleWriteBpsDevice',
  'throttleReadIOPSDevice',
  'throttleWriteIOPSDevice',
] as const;

/**
 * cpu.shares (2..262144, default 1024) -> cpu.weight (1..10000, default 100): runc's (since 1.3)
 * and crun's quadratic fit in log2(shares) that maps 2 -> 1, 1024 -> 100 and 262144 -> 10000.
 * (The older linear formula, 1 + (shares - 2) * 9999 / 262142, mapped 1024 to 39.)
 */
export function sharesToWeight(shares: number): number {
  if (shares <= CPU_SHARES_MIN) return 1;
  if (shares >= CPU_SHARES_MAX) return 10000;
  const l = Math.log2(shares);
  const exponent = (l * l + 125 * l) / 612 - 7 / 34;
  return Math.ceil(Math.pow(10, exponent));
}

/** blkio.weight (10..1000) -> io.weight (1..10000), as runc: 1 + (weight - 10) * 9999 / 990. */
export function blkioWeightToIoWeight(weight: number): number {
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/** One rdma.max line: "<device> hca_handle=N hca_object=N" with the limits that are set. */
export function rdmaLine(device: string, limits: { hcaHandles?: number; hcaObjects?: number }): string {
  if (!/^[\w.-]+$/.test(device))
    throw invalidArgument(`${field('rdma')}: "${device}" is not an RDMA device name`);
  const parts = [device];
  if (limits.hcaHandles !== undefined) parts.push(`hca_handle=${limits.hcaHandles}`);
  if (limits.hcaObjects !== undefined) parts.push(`hca_object=${limits.hcaObjects}`);
  return parts.join(' ');
}
