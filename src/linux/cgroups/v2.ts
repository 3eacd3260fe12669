/**
 * The cgroup v2 driver: one directory in the unified hierarchy. Its filesystem root is injectable
 * (`mountPoint`), so it is tested against a fake cgroupfs tree in a temporary directory.
 */
import { posix } from 'node:path';
import { invalidArgument, unavailable } from '../../common/errors.js';
import type { BlockIO, Cpu, Memory, Resources } from '../../oci/runtime-spec.js';
import { addPid, CgroupDir, makeDirectory, parseFlatKeyed, parseSingle } from './cgroupfs.js';
import type { DeviceProgramAttacher } from './device-attach.js';
import { deviceProgram } from './device-bpf.js';
import type { CgroupMount } from './layout.js';
import type { CgroupPath } from './paths.js';
import { locate } from './paths.js';
import {
  blkioWeightToIoWeight,
  blockIOIsSet,
  cpuIsSet,
  cpusetIsSet,
  field,
  isSet,
  memoryIsSet,
  rdmaLine,
  sharesToWeight,
  swappinessOf,
  validateResources,
} from './resources.js';
import { pidsStats, v2CpuStats, v2IoStats, v2MemoryStats } from './stats.js';
import { processesIn, removeTree, waitUntil } from './tree.js';
import type { CgroupEntry, CgroupManager, CgroupStats, FreezerState } from './types.js';

/** The controllers create() enables by default, where the parent offers them. */
export const V2_CONTROLLERS = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'];

export interface V2Options {
  /** The cgroup2 mount (mount point and the hierarchy directory mounted there). */
  mount: CgroupMount;
  cgroupPath: CgroupPath;
  /** This process's cgroup in the unified hierarchy, for relative paths. */
  own?: string;
  /** Attaches the device program; without it, device rules are an error. */
  attachDevices?: DeviceProgramAttacher;
  /** Controllers to enable in the ancestors' cgroup.subtree_control; default V2_CONTROLLERS. */
  controllers?: readonly string[];
}

export class V2Manager implements CgroupManager {
  readonly version = 'v2';
  readonly path: string;
  readonly directories: readonly string[];
  readonly entry: CgroupEntry;
  private readonly dir: CgroupDir;
  private readonly mountPoint: string;
  private readonly attachDevices: DeviceProgramAttacher | undefined;
  private readonly controllers: readonly string[];

  constructor(options: V2Options) {
    const { path, directory } = locate(options.cgroupPath, options.mount, options.own);
    this.path = path;
    this.directories = [directory];
    this.entry = { kind: 'clone-into', directory };
    this.dir = new CgroupDir(directory);
    this.mountPoint = options.mount.mountPoint;
    this.attachDevices = options.attachDevices;
    this.controllers = options.controllers ?? V2_CONTROLLERS;
  }

  /** Makes the directories top-down, enabling the controllers in each ancestor first. */
  async create(): Promise<void> {
    let current = this.mountPoint;
    for (const part of posix.relative(this.mountPoint, this.dir.directory).split('/').filter(Boolean)) {
      await this.enableControllers(new CgroupDir(current));
      current = posix.join(current, part);
      await makeDirectory(current);
    }
  }

  /**
   * Enables the wanted controllers the cgroup offers in its subtree_control. A cgroup holding
   * processes refuses (no internal processes); then each is tried alone and refusals are left to
   * surface as "controller not available" when a resource needs it.
   */
  private async enableControllers(dir: CgroupDir): Promise<void> {
    const offered = words(await dir.read('cgroup.controllers'));
    const enabled = new Set(words(await dir.read('cgroup.subtree_control')));
    const missing = this.controllers.filter((c) => offered.includes(c) && !enabled.has(c));
    if (missing.length === 0) return;
    try {
      await dir.writeRaw('cgroup.subtree_control', missing.map((c) => `+${c}`).join(' '));
    } catch {
      for (const controller of missing)
        await dir.writeRaw('cgroup.subtree_control', `+${controller}`).catch(() => undefined);
    }
  }

  addProcess(pid: number): Promise<void> {
    return addPid(this.dir.directory, pid);
  }

  apply(resources: Resources): Promise<void> {
    return this.set(resources, false);
  }

  update(resources: Resources): Promise<void> {
    return this.set(resources, true);
  }

  private async set(r: Resources, update: boolean): Promise<void> {
    validateResources(r);
    const available = new Set(words(await this.dir.read('cgroup.controllers')));
    const need = (controller: string, fieldPath: string): CgroupDir => {
      if (!available.has(controller))
        throw invalidArgument(
          `${field(fieldPath)}: the ${controller} controller is not enabled for cgroup ${this.dir.directory}`,
        );
      return this.dir;
    };
    if (r.pids !== undefined)
      await need('pids', 'pids').write(
        'pids.max',
        r.pids.limit > 0 ? String(r.pids.limit) : 'max',
        field('pids.limit'),
      );
    if (r.memory !== undefined && memoryIsSet(r.memory))
      await setMemory(need('memory', 'memory'), r.memory, update);
    if (blockIOIsSet(r.blockIO) && r.blockIO !== undefined) await setIo(need('io', 'blockIO'), r.blockIO);
    if (cpuIsSet(r.cpu) && r.cpu !== undefined) await setCpu(need('cpu', 'cpu'), r.cpu);
    if (cpusetIsSet(r.cpu) && r.cpu !== undefined) {
      const dir = need('cpuset', 'cpu');
      if ((r.cpu.cpus ?? '') !== '') await dir.write('cpuset.cpus', r.cpu.cpus ?? '', field('cpu.cpus'));
      if ((r.cpu.mems ?? '') !== '') await dir.write('cpuset.mems', r.cpu.mems ?? '', field('cpu.mems'));
    }
    for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
      const dir = need('hugetlb', `hugepageLimits[${i}]`);
      const file = `hugetlb.${h.pageSize}.max`;
      if (!(await dir.has(file)))
        throw invalidArgument(
          `${field(`hugepageLimits[${i}].pageSize`)}: this kernel has no ${h.pageSize} huge pages`,
        );
      const value = h.limit === -1 ? 'max' : String(h.limit);
      await dir.write(file, value, field(`hugepageLimits[${i}].limit`));
      // Reservations are limited separately where the kernel has them (5.7+); keep them in step.
      const reserved = `hugetlb.${h.pageSize}.rsvd.max`;
      if (await dir.has(reserved)) await dir.write(reserved, value, field(`hugepageLimits[${i}].limit`));
    }
    if (
      r.network !== undefined &&
      (r.network.classID !== undefined || (r.network.priorities?.length ?? 0) > 0)
    )
      throw invalidArgument(`${field('network')}: cgroup v2 has no net_cls or net_prio controller`);
    for (const [device, limits] of Object.entries(r.rdma ?? {}))
      await need('rdma', 'rdma').write('rdma.max', rdmaLine(device, limits), field(`rdma.${device}`));
    if (r.devices !== undefined) {
      if (this.attachDevices === undefined)
        throw unavailable(
          `${field('devices')}: no way to attach a cgroup v2 device program (berth-shim not configured)`,
        );
      await this.attachDevices(this.dir.directory, deviceProgram(r.devices));
    }
    // Last, so that a unified value overrides what the fields above set.
    for (const [key, value] of Object.entries(r.unified ?? {})) {
      if (!/^[a-z][a-z0-9_]*\.[a-z0-9_.]+$/.test(key))
        throw invalidArgument(`${field(`unified.${key}`)}: not a cgroup interface file name`);
      const controller = key.slice(0, key.indexOf('.'));
      if (controller !== 'cgroup' && !available.has(controller) && !(await this.dir.has(key)))
        throw invalidArgument(
          `${field(`unified.${key}`)}: the ${controller} controller is not enabled for cgroup ${this.dir.directory}`,
        );
      await this.dir.write(key, value, field(`unified.${key}`));
    }
  }

  async stats(): Promise<CgroupStats> {
    const read = (file: string): Promise<string | undefined> => this.dir.read(file);
    const [memory, cpu, pids, io] = await Promise.all([
      (async () =>
        v2MemoryStats({
          current: await read('memory.current'),
          peak: await read('memory.peak'),
          max: await read('memory.max'),
          stat: await read('memory.stat'),
          events: await read('memory.events'),
          swapCurrent: await read('memory.swap.current'),
          swapMax: await read('memory.swap.max'),
        }))(),
      (async () => v2CpuStats(await read('cpu.stat')))(),
      (async () => pidsStats(await read('pids.current'), await read('pids.max')))(),
      (async () => v2IoStats(await read('io.stat')))(),
    ]);
    return {
      ...(memory === undefined ? {} : { memory }),
      ...(cpu === undefined ? {} : { cpu }),
      ...(pids === undefined ? {} : { pids }),
      ...(io === undefined ? {} : { io }),
    };
  }

  /** cgroup.events says whether the kernel has finished freezing (or thawing) every process. */
  private async frozen(): Promise<boolean> {
    const events = parseFlatKeyed(await this.dir.read('cgroup.events'));
    if (events.frozen !== undefined) return events.frozen === 1;
    return (await this.dir.read('cgroup.freeze'))?.trim() === '1';
  }

  private async setFrozen(frozen: boolean): Promise<void> {
    if (!(await this.dir.has('cgroup.freeze')))
      throw unavailable(
        `cgroup ${this.dir.directory} has no cgroup.freeze (freezing needs Linux 5.2 or later)`,
      );
    const what = frozen ? 'freezing the cgroup' : 'thawing the cgroup';
    await this.dir.write('cgroup.freeze', frozen ? '1' : '0', what);
    if (await waitUntil(async () => (await this.frozen()) === frozen)) return;
    if (frozen) await this.dir.write('cgroup.freeze', '0', 'thawing the cgroup');
    throw unavailable(
      frozen
        ? `cgroup ${this.dir.directory} did not freeze`
        : `cgroup ${this.dir.directory} did not thaw (is a parent cgroup frozen?)`,
    );
  }

  freeze(): Promise<void> {
    return this.setFrozen(true);
  }

  thaw(): Promise<void> {
    return this.setFrozen(false);
  }

  async state(): Promise<FreezerState> {
    return (await this.frozen()) ? 'frozen' : 'thawed';
  }

  pids(): Promise<number[]> {
    return processesIn(this.dir.directory);
  }

  async oomKillCount(): Promise<number> {
    return parseFlatKeyed(await this.dir.read('memory.events')).oom_kill ?? 0;
  }

  destroy(): Promise<void> {
    return removeTree(this.dir.directory);
  }
}

const words = (text: string | undefined): string[] => (text ?? '').split(/\s+/).filter(Boolean);

/**
 * OCI's swap is memory plus swap; memory.swap.max is swap alone. With the memory limit left out of
 * an update, the current memory.max is the base.
 */
export function swapMaxValue(
  limit: number | undefined,
  swap: number | undefined,
  currentMax: number | undefined,
): string | undefined {
  if (swap === undefined) return limit === -1 ? 'max' : undefined;
  if (swap === -1) return 'max';
  const base = limit ?? currentMax;
  if (base === undefined || base === -1)
    throw invalidArgument(`${field('memory.swap')}: cannot limit swap while memory is unlimited`);
  if (swap < base)
    throw invalidArgument(
      `${field('memory.swap')}: ${swap} is below the memory limit (${base}); swap is the limit of memory plus swap`,
    );
  return String(swap - base);
}

async function setMemory(dir: CgroupDir, m: Memory, update: boolean): Promise<void> {
  if (swappinessOf(m) !== undefined)
    throw invalidArgument(`${field('memory.swappiness')}: cgroup v2 has no per-cgroup swappiness`);
  if (isSet(m.kernelTCP))
    throw invalidArgument(`${field('memory.kernelTCP')}: cgroup v2 has no TCP memory limit`);
  if (m.disableOOMKiller === true)
    throw invalidArgument(`${field('memory.disableOOMKiller')}: cgroup v2 cannot disable the OOM killer`);
  if (m.useHierarchy === false)
    throw invalidArgument(`${field('memory.useHierarchy')}: cgroup v2 is always hierarchical`);
  const limit = isSet(m.limit) ? m.limit : undefined;
  if (update && m.checkBeforeUpdate === true && limit !== undefined && limit > 0) {
    const usage = parseSingle(await dir.read('memory.current')) ?? 0;
    if (limit < usage)
      throw invalidArgument(
        `${field('memory.limit')}: ${limit} is below the current memory usage (${usage})`,
      );
  }
  const swap = isSet(m.swap) ? m.swap : undefined;
  const swapMax = swapMaxValue(
    limit,
    swap,
    swap !== undefined && limit === undefined ? (parseSingle(await dir.read('memory.max')) ?? -1) : undefined,
  );
  if (swapMax !== undefined) {
    if (await dir.has('memory.swap.max')) await dir.write('memory.swap.max', swapMax, field('memory.swap'));
    // Without swap accounting nothing can swap beyond the memory limit anyway.
    else if (swapMax !== 'max' && swapMax !== '0')
      throw invalidArgument(
        `${field('memory.swap')}: this kernel does not account swap (no memory.swap.max)`,
      );
  }
  if (limit !== undefined)
    await dir.write('memory.max', limit === -1 ? 'max' : String(limit), field('memory.limit'));
  if (isSet(m.reservation))
    await dir.write(
      'memory.low',
      m.reservation === -1 ? 'max' : String(m.reservation),
      field('memory.reservation'),
    );
}

async function setCpu(dir: CgroupDir, c: Cpu): Promise<void> {
  if (isSet(c.realtimeRuntime) || isSet(c.realtimePeriod))
    throw invalidArgument(
      `${field(isSet(c.realtimeRuntime) ? 'cpu.realtimeRuntime' : 'cpu.realtimePeriod')}: cgroup v2 has no real-time CPU bandwidth`,
    );
  if (isSet(c.shares)) await dir.write('cpu.weight', String(sharesToWeight(c.shares)), field('cpu.shares'));
  if (isSet(c.quota) || isSet(c.period)) {
    // cpu.max is "quota period"; a field left out keeps its current value.
    const quota = isSet(c.quota) ? (c.quota === -1 ? 'max' : String(c.quota)) : undefined;
    const value = isSet(c.period)
      ? `${quota ?? words(await dir.read('cpu.max'))[0] ?? 'max'} ${c.period}`
      : (quota ?? 'max');
    await dir.write('cpu.max', value, field(isSet(c.quota) ? 'cpu.quota' : 'cpu.period'));
  }
  if (c.burst !== undefined) await dir.write('cpu.max.burst', String(c.burst), field('cpu.burst'));
  if (c.idle !== undefined) await dir.write('cpu.idle', String(c.idle), field('cpu.idle'));
}

/** io.max takes one device per write, with all four limits; 0 (no limit, as in v1) becomes "max". */
export function ioMaxLines(b: BlockIO): string[] {
  const keys = [
    ['throttleReadBpsDevice', 'rbps'],
    ['throttleWriteBpsDevice', 'wbps'],
    ['throttleReadIOPSDevice', 'riops'],
    ['throttleWriteIOPSDevice', 'wiops'],
  ] as const;
  const devices = new Map<string, string[]>();
  for (const [key, name] of keys) {
    for (const d of b[key] ?? []) {
      const device = `${d.major}:${d.minor}`;
      const parts = devices.get(device) ?? [];
      parts.push(`${name}=${d.rate === 0 ? 'max' : d.rate}`);
      devices.set(device, parts);
    }
  }
  return [...devices].map(([device, parts]) => `${device} ${parts.join(' ')}`);
}

async function setIo(dir: CgroupDir, b: BlockIO): Promise<void> {
  if (isSet(b.leafWeight) || (b.weightDevice ?? []).some((d) => d.leafWeight !== undefined))
    throw invalidArgument(`${field('blockIO.leafWeight')}: cgroup v2 has no leaf weights`);
  // With BFQ, io.bfq.weight takes blkio's 1..1000 range as it is; otherwise io.weight takes 1..10000.
  const bfq = await dir.has('io.bfq.weight');
  const weightFile = bfq ? 'io.bfq.weight' : 'io.weight';
  const convert = (weight: number): string => String(bfq ? weight : blkioWeightToIoWeight(weight));
  if (isSet(b.weight)) await dir.write(weightFile, convert(b.weight), field('blockIO.weight'));
  for (const [i, d] of (b.weightDevice ?? []).entries()) {
    if (d.weight === undefined) continue;
    // 0 removes a device's own weight: v1 takes 0 for that, v2 "default".
    const value = d.weight === 0 ? 'default' : convert(d.weight);
    await dir.write(weightFile, `${d.major}:${d.minor} ${value}`, field(`blockIO.weightDevice[${i}].weight`));
  }
  for (const line of ioMaxLines(b)) await dir.write('io.max', line, field('blockIO'));
}
