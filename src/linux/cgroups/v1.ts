/** The cgroup v1 driver: one directory per mounted hierarchy, one controller's files in each. */
import { posix } from 'node:path';
import { errnoCode, invalidArgument, unavailable } from '../../common/errors.js';
import type { BlockIO, Cpu, DeviceCgroup, Memory, Network, Resources } from '../../oci/runtime-spec.js';
import { addPid, CgroupDir, makeDirectory, parseFlatKeyed, parseSingle, parseV1Limit } from './cgroupfs.js';
import { normalizeRules, v1DeviceWrites } from './devices.js';
import type { CgroupLayout, V1Hierarchy } from './layout.js';
import type { CgroupPath } from './paths.js';
import { locate } from './paths.js';
import {
  blockIOIsSet,
  cpuIsSet,
  cpusetIsSet,
  field,
  isSet,
  memoryIsSet,
  rdmaLine,
  swappinessOf,
  THROTTLE_KEYS,
  validateResources,
} from './resources.js';
import { pidsStats, v1CpuStats, v1IoStats, v1MemoryStats } from './stats.js';
import { processesIn, removeTree, waitUntil } from './tree.js';
import type { CgroupEntry, CgroupManager, CgroupStats, FreezerState } from './types.js';

const THROTTLE_FILES: Record<(typeof THROTTLE_KEYS)[number], string> = {
  throttleReadBpsDevice: 'blkio.throttle.read_bps_device',
  throttleWriteBpsDevice: 'blkio.throttle.write_bps_device',
  throttleReadIOPSDevice: 'blkio.throttle.read_iops_device',
  throttleWriteIOPSDevice: 'blkio.throttle.write_iops_device',
};

export class V1Manager implements CgroupManager {
  readonly version = 'v1';
  readonly path: string;
  readonly directories: readonly string[];
  /** Controller name -> the cgroup's directory in that controller's hierarchy. */
  private readonly dirs = new Map<string, CgroupDir>();
  private readonly hierarchies: Array<{ hierarchy: V1Hierarchy; directory: string }> = [];

  constructor(layout: CgroupLayout, cgroupPath: CgroupPath) {
    let firstPath: string | undefined;
    for (const [controller, hierarchy] of Object.entries(layout.v1)) {
      const { path, directory } = locate(cgroupPath, hierarchy, layout.own[controller]);
      firstPath ??= path;
      this.dirs.set(controller, new CgroupDir(directory));
      if (!this.hierarchies.some((h) => h.directory === directory))
        this.hierarchies.push({ hierarchy, directory });
    }
    if (firstPath === undefined) throw unavailable('no cgroup v1 hierarchy is mounted');
    this.path = firstPath;
    this.directories = this.hierarchies.map((h) => h.directory);
    this.entry = { kind: 'self-write', files: this.directories.map((d) => posix.join(d, 'tasks')) };
  }

  readonly entry: CgroupEntry;

  /** The directory of a controller; an error naming the OCI field when the host lacks it. */
  private need(controller: string, fieldPath: string): CgroupDir {
    const dir = this.dirs.get(controller);
    if (dir === undefined)
      throw invalidArgument(
        `${field(fieldPath)}: the ${controller} cgroup controller is not available on this host`,
      );
    return dir;
  }

  async create(): Promise<void> {
    for (const { hierarchy, directory } of this.hierarchies) {
      if (hierarchy.controllers.includes('cpuset')) await createCpuset(hierarchy.mountPoint, directory);
      else await makeDirectory(directory);
    }
  }

  async addProcess(pid: number): Promise<void> {
    for (const directory of this.directories) await addPid(directory, pid);
  }

  apply(resources: Resources): Promise<void> {
    return this.set(resources, false);
  }

  update(resources: Resources): Promise<void> {
    return this.set(resources, true);
  }

  private async set(r: Resources, update: boolean): Promise<void> {
    validateResources(r);
    if (r.unified !== undefined && Object.keys(r.unified).length > 0)
      throw invalidArgument(`${field('unified')}: cgroup v2 settings cannot be applied on a cgroup v1 host`);
    if (r.memory !== undefined && memoryIsSet(r.memory))
      await setMemory(this.need('memory', 'memory'), r.memory, update);
    if (cpuIsSet(r.cpu) && r.cpu !== undefined) await setCpu(this.need('cpu', 'cpu'), r.cpu);
    if (cpusetIsSet(r.cpu) && r.cpu !== undefined) await setCpuset(this.need('cpuset', 'cpu'), r.cpu);
    if (r.pids !== undefined) {
      const limit = r.pids.limit > 0 ? String(r.pids.limit) : 'max';
      await this.need('pids', 'pids').write('pids.max', limit, field('pids.limit'));
    }
    if (blockIOIsSet(r.blockIO) && r.blockIO !== undefined)
      await setBlockIO(this.need('blkio', 'blockIO'), r.blockIO);
    for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
      const dir = this.need('hugetlb', `hugepageLimits[${i}]`);
      const file = `hugetlb.${h.pageSize}.limit_in_bytes`;
      if (!(await dir.has(file)))
        throw invalidArgument(
          `${field(`hugepageLimits[${i}].pageSize`)}: this kernel has no ${h.pageSize} huge pages`,
        );
      await dir.write(file, String(h.limit), field(`hugepageLimits[${i}].limit`));
    }
    if (r.devices !== undefined) setDevices(this.need('devices', 'devices'), r.devices);
    if (r.network !== undefined) await this.setNetwork(r.network);
    for (const [device, limits] of Object.entries(r.rdma ?? {})) {
      await this.need('rdma', 'rdma').write('rdma.max', rdmaLine(device, limits), field(`rdma.${device}`));
    }
  }

  private async setNetwork(network: Network): Promise<void> {
    if (network.classID !== undefined)
      await this.need('net_cls', 'network.classID').write(
        'net_cls.classid',
        String(network.classID),
        field('network.classID'),
      );
    for (const [i, p] of (network.priorities ?? []).entries()) {
      await this.need('net_prio', 'network.priorities').write(
        'net_prio.ifpriomap',
        `${p.name} ${p.priority}`,
        field(`network.priorities[${i}]`),
      );
    }
  }

  async stats(): Promise<CgroupStats> {
    const read = (controller: string, file: string): Promise<string | undefined> =>
      this.dirs.get(controller)?.read(file) ?? Promise.resolve(undefined);
    const [memory, cpu, pids, io] = await Promise.all([
      (async () =>
        v1MemoryStats({
          usage: await read('memory', 'memory.usage_in_bytes'),
          maxUsage: await read('memory', 'memory.max_usage_in_bytes'),
          limit: await read('memory', 'memory.limit_in_bytes'),
          stat: await read('memory', 'memory.stat'),
          failcnt: await read('memory', 'memory.failcnt'),
          memswUsage: await read('memory', 'memory.memsw.usage_in_bytes'),
          memswLimit: await read('memory', 'memory.memsw.limit_in_bytes'),
          oomControl: await read('memory', 'memory.oom_control'),
        }))(),
      (async () =>
        v1CpuStats({
          usage: await read('cpuacct', 'cpuacct.usage'),
          usagePerCpu: await read('cpuacct', 'cpuacct.usage_percpu'),
          usageUser: await read('cpuacct', 'cpuacct.usage_user'),
          usageSystem: await read('cpuacct', 'cpuacct.usage_sys'),
          stat: await read('cpuacct', 'cpuacct.stat'),
          cpuStat: await read('cpu', 'cpu.stat'),
        }))(),
      (async () => pidsStats(await read('pids', 'pids.current'), await read('pids', 'pids.max')))(),
      (async () => {
        // The throttling layer counts every I/O; the BFQ files only I/O that BFQ scheduled.
        const throttled = await read('blkio', 'blkio.throttle.io_service_bytes_recursive');
        if (throttled !== undefined)
          return v1IoStats(throttled, await read('blkio', 'blkio.throttle.io_serviced_recursive'));
        return v1IoStats(
          await read('blkio', 'blkio.bfq.io_service_bytes_recursive'),
          await read('blkio', 'blkio.bfq.io_serviced_recursive'),
        );
      })(),
    ]);
    return {
      ...(memory === undefined ? {} : { memory }),
      ...(cpu === undefined ? {} : { cpu }),
      ...(pids === undefined ? {} : { pids }),
      ...(io === undefined ? {} : { io }),
    };
  }

  private freezer(): CgroupDir {
    const dir = this.dirs.get('freezer');
    if (dir === undefined) throw unavailable('the freezer cgroup controller is not available on this host');
    return dir;
  }

  async freeze(): Promise<void> {
    const dir = this.freezer();
    await dir.write('freezer.state', 'FROZEN', 'freezing the cgroup');
    // A task in an uninterruptible sleep keeps the cgroup FREEZING; writing FROZEN again retries it.
    const frozen = await waitUntil(async () => {
      if ((await dir.read('freezer.state'))?.trim() === 'FROZEN') return true;
      await dir.writeRaw('freezer.state', 'FROZEN');
      return false;
    });
    if (!frozen) {
      await dir.write('freezer.state', 'THAWED', 'thawing the cgroup');
      throw unavailable(`cgroup ${dir.directory} did not freeze: a process stays in FREEZING`);
    }
  }

  async thaw(): Promise<void> {
    const dir = this.freezer();
    await dir.write('freezer.state', 'THAWED', 'thawing the cgroup');
    const thawed = await waitUntil(async () => (await dir.read('freezer.state'))?.trim() === 'THAWED');
    if (!thawed) throw unavailable(`cgroup ${dir.directory} did not thaw (is a parent cgroup frozen?)`);
  }

  async state(): Promise<FreezerState> {
    const state = await this.dirs.get('freezer')?.read('freezer.state');
    return state?.trim() === 'FROZEN' ? 'frozen' : 'thawed';
  }

  pids(): Promise<number[]> {
    const dir = this.dirs.get('pids') ?? this.dirs.get('freezer') ?? this.dirs.get('memory');
    return processesIn(dir?.directory ?? this.directories[0] ?? '');
  }

  async oomKillCount(): Promise<number> {
    const text = await this.dirs.get('memory')?.read('memory.oom_control');
    return parseFlatKeyed(text).oom_kill ?? 0;
  }

  async destroy(): Promise<void> {
    for (const directory of this.directories) await removeTree(directory);
  }
}

/**
 * cpuset.cpus and cpuset.mems of a new v1 cgroup start empty, and a process cannot join a cgroup
 * with no CPUs or memory nodes: fill every empty level from its parent on the way down.
 */
async function createCpuset(mountPoint: string, directory: string): Promise<void> {
  let parent = new CgroupDir(mountPoint);
  for (const part of posix.relative(mountPoint, directory).split('/').filter(Boolean)) {
    const current = new CgroupDir(posix.join(parent.directory, part));
    await makeDirectory(current.directory);
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if (((await current.read(file)) ?? '').trim() !== '') continue;
      const inherited = ((await parent.read(file)) ?? '').trim();
      await current.write(file, inherited, `copying ${file} from the parent cgroup`);
    }
    parent = current;
  }
}

async function setMemory(dir: CgroupDir, m: Memory, update: boolean): Promise<void> {
  const limit = isSet(m.limit) ? m.limit : undefined;
  // Unlimited memory with swap left unset means unlimited swap too, or memsw would stay below memory.
  const swap = isSet(m.swap) ? m.swap : limit === -1 ? -1 : undefined;
  const usage = parseSingle(await dir.read('memory.usage_in_bytes')) ?? 0;
  if (update && m.checkBeforeUpdate === true && limit !== undefined && limit > 0 && limit < usage)
    throw invalidArgument(`${field('memory.limit')}: ${limit} is below the current memory usage (${usage})`);

  const hasMemsw = await dir.has('memory.memsw.limit_in_bytes');
  const currentLimit = parseV1Limit(await dir.read('memory.limit_in_bytes')) ?? Infinity;
  const currentMemsw = parseV1Limit(await dir.read('memory.memsw.limit_in_bytes')) ?? Infinity;
  const writeLimit = async (): Promise<void> => {
    if (limit === undefined) return;
    await dir.write(
      'memory.limit_in_bytes',
      String(limit),
      field('memory.limit'),
      `${field('memory.limit')}: ${limit} is below what the cgroup uses and the kernel cannot reclaim enough`,
    );
  };
  const writeSwap = async (): Promise<void> => {
    if (swap === undefined) return;
    if (!hasMemsw) {
      // Without swap accounting nothing can swap beyond the memory limit anyway.
      if (swap === -1 || swap === limit) return;
      throw invalidArgument(
        `${field('memory.swap')}: this kernel does not account swap (no memory.memsw.limit_in_bytes); use -1 or the memory limit`,
      );
    }
    await dir.write('memory.memsw.limit_in_bytes', String(swap), field('memory.swap'));
  };
  // The kernel keeps memory.limit <= memory.memsw.limit at every moment: raise memsw first, lower it last.
  if (swap !== undefined && (swap === -1 || swap >= currentLimit)) {
    await writeSwap();
    await writeLimit();
  } else {
    if (swap !== undefined && limit === undefined)
      throw invalidArgument(
        `${field('memory.swap')}: ${swap} is below the current memory limit (${currentLimit})`,
      );
    if (limit !== undefined && swap === undefined && hasMemsw && limit > currentMemsw)
      throw invalidArgument(
        `${field('memory.limit')}: ${limit} is above the current memory+swap limit (${currentMemsw}); set memory.swap too`,
      );
    await writeLimit();
    await writeSwap();
  }
  if (isSet(m.kernelTCP))
    await dir.write('memory.kmem.tcp.limit_in_bytes', String(m.kernelTCP), field('memory.kernelTCP'));
  if (isSet(m.reservation))
    await dir.write('memory.soft_limit_in_bytes', String(m.reservation), field('memory.reservation'));
  if (m.disableOOMKiller === true)
    await dir.write('memory.oom_control', '1', field('memory.disableOOMKiller'));
  const swappiness = swappinessOf(m);
  if (swappiness !== undefined)
    await dir.write('memory.swappiness', String(swappiness), field('memory.swappiness'));
  if (m.useHierarchy !== undefined)
    await dir.write('memory.use_hierarchy', m.useHierarchy ? '1' : '0', field('memory.useHierarchy'));
}

async function setCpu(dir: CgroupDir, c: Cpu): Promise<void> {
  // Real-time bandwidth: the period first, so the runtime fits in it.
  if (isSet(c.realtimePeriod))
    await dir.write('cpu.rt_period_us', String(c.realtimePeriod), field('cpu.realtimePeriod'));
  if (isSet(c.realtimeRuntime))
    await dir.write('cpu.rt_runtime_us', String(c.realtimeRuntime), field('cpu.realtimeRuntime'));
  if (isSet(c.shares)) await dir.write('cpu.shares', String(c.shares), field('cpu.shares'));
  // A shorter period can be refused while the old quota no longer fits the parent's; then it is
  // written again after the quota (as runc does).
  let periodPending = false;
  if (isSet(c.period)) {
    try {
      await dir.writeRaw('cpu.cfs_period_us', String(c.period));
    } catch (err) {
      if (errnoCode(err) !== 'EINVAL' || !isSet(c.quota))
        throw dir.failure(err, 'cpu.cfs_period_us', String(c.period), field('cpu.period'));
      periodPending = true;
    }
  }
  if (isSet(c.quota)) await dir.write('cpu.cfs_quota_us', String(c.quota), field('cpu.quota'));
  if (periodPending) await dir.write('cpu.cfs_period_us', String(c.period), field('cpu.period'));
  if (c.burst !== undefined) await dir.write('cpu.cfs_burst_us', String(c.burst), field('cpu.burst'));
  if (c.idle !== undefined) await dir.write('cpu.idle', String(c.idle), field('cpu.idle'));
}

async function setCpuset(dir: CgroupDir, c: Cpu): Promise<void> {
  if ((c.cpus ?? '') !== '') await dir.write('cpuset.cpus', c.cpus ?? '', field('cpu.cpus'));
  if ((c.mems ?? '') !== '') await dir.write('cpuset.mems', c.mems ?? '', field('cpu.mems'));
}

async function setBlockIO(dir: CgroupDir, b: BlockIO): Promise<void> {
  // CFQ had blkio.weight; BFQ, the proportional scheduler of current kernels, has blkio.bfq.weight.
  const weightFile = (await dir.has('blkio.weight'))
    ? 'blkio.weight'
    : (await dir.has('blkio.bfq.weight'))
      ? 'blkio.bfq.weight'
      : undefined;
  const needWeightFile = (name: string): string => {
    if (weightFile === undefined)
      throw invalidArgument(
        `${field(name)}: no proportional I/O scheduler here (neither blkio.weight nor blkio.bfq.weight in ${dir.directory})`,
      );
    return weightFile;
  };
  if (isSet(b.weight))
    await dir.write(needWeightFile('blockIO.weight'), String(b.weight), field('blockIO.weight'));
  if (isSet(b.leafWeight))
    await dir.write('blkio.leaf_weight', String(b.leafWeight), field('blockIO.leafWeight'));
  for (const [i, d] of (b.weightDevice ?? []).entries()) {
    const name = `blockIO.weightDevice[${i}]`;
    if (d.weight !== undefined)
      await dir.write(
        `${needWeightFile(name)}_device`,
        `${d.major}:${d.minor} ${d.weight}`,
        field(`${name}.weight`),
      );
    if (d.leafWeight !== undefined)
      await dir.write(
        'blkio.leaf_weight_device',
        `${d.major}:${d.minor} ${d.leafWeight}`,
        field(`${name}.leafWeight`),
      );
  }
  for (const key of THROTTLE_KEYS) {
    for (const [i, d] of (b[key] ?? []).entries())
      await dir.write(THROTTLE_FILES[key], `${d.major}:${d.minor} ${d.rate}`, field(`blockIO.${key}[${i}]`));
  }
}

function setDevices(dir: CgroupDir, devices: readonly DeviceCgroup[]): void {
  const writes = v1DeviceWrites(normalizeRules(devices));
  dir.writeInOrder(
    writes.map(({ file, line }, index) => ({
      file,
      value: line,
      // The first write is the deny-all that every rule list starts from.
      field: index === 0 ? field('devices') : field(`devices[${index - 1}]`),
    })),
  );
}
