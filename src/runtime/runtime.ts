/**
 * The OCI runtime as a library: create, start, state, kill, delete, run, exec, ps, pause, resume,
 * list. berth-runtime's command line and berthd both use it.
 */
import { constants } from 'node:fs';
import { open, readFile, unlink, access } from 'node:fs/promises';
import { join } from 'node:path';
import type { StdioOptions } from 'node:child_process';
import type { ContainerStatus, NamespaceType, Process, Resources, Spec, State } from '../oci/runtime-spec.js';
import type { CgroupStats } from '../linux/cgroups/types.js';
import { validateSpec } from '../oci/validate.js';
import { ownEffectiveCapabilities, ownLimits } from '../linux/rlimits.js';
import { writeFileAtomic } from '../common/atomic-file.js';
import { conflict, errnoCode, invalidArgument, notFound, describeError } from '../common/errors.js';
import { encodePlan } from './plan.js';
import { buildCreatePlan, buildExecPlan, rootfsPath, type ContainerIo } from './plan-builder.js';
import { hostCgroupHierarchies } from './cgroup-mounts.js';
import { launchShim, type ShimHandle } from './shim-process.js';
import { runHooks } from './hooks.js';
import {
  StateStore,
  initAlive,
  processStartTime,
  toOciState,
  validateId,
  type ContainerRecord,
} from './state.js';
import { parseSignal } from './signals.js';
import { effectiveResources } from './device-rules.js';

/** What the runtime needs from a cgroup driver (src/linux/cgroups implements it). */
export interface CgroupHandle {
  /** Path relative to each hierarchy's root, e.g. `/berth/<id>`. */
  readonly path: string;
  create(): Promise<void>;
  apply(resources: Resources | undefined): Promise<void>;
  addProcess(pid: number): Promise<void>;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  frozen(): Promise<boolean>;
  pids(): Promise<number[]>;
  /** Resource usage (src/linux/cgroups CgroupStats). */
  stats(): Promise<CgroupStats>;
  /** Processes the kernel's OOM killer killed in this cgroup. */
  oomKillCount(): Promise<number>;
  /** Change the limits of a running container. */
  update(resources: Resources): Promise<void>;
  destroy(): Promise<void>;
}

export type CgroupFactory = (
  cgroupsPath: string | undefined,
  id: string,
  options: { systemd: boolean },
) => Promise<CgroupHandle>;

export type SeccompCompiler = (spec: Spec) => { program: Uint8Array; flags: number } | undefined;

export interface RuntimeOptions {
  /** State directory root (runc's --root). */
  root: string;
  cgroups: CgroupFactory;
  seccomp: SeccompCompiler;
  systemdCgroup?: boolean;
  /** Where warnings go (poststart/poststop hook failures). */
  warn?: (message: string) => void;
}

export interface CreateOptions {
  bundle: string;
  consoleSocket?: string;
  pidFile?: string;
  preserveFds?: number;
  noPivot?: boolean;
  /** fds 0-2 of the container (default: this process's). */
  stdio?: StdioOptions;
  /** Keep the shim attached to this process (foreground `run`). */
  foreground?: boolean;
  /** The shim holds the container's stdio (log, attach socket) instead of passing this process's. */
  io?: ContainerIo;
}

export interface ExecOptions {
  detach: boolean;
  /** The shim holds the process's stdio on an attach socket. */
  io?: ContainerIo;
  /** Called with the process's pid before it runs (it waits): connect to its attach socket here. */
  beforeStart?: (pid: number) => Promise<void>;
  consoleSocket?: string;
  pidFile?: string;
  preserveFds?: number;
  stdio?: StdioOptions;
}

const NAMESPACE_ORDER: NamespaceType[] = ['user', 'ipc', 'uts', 'network', 'pid', 'cgroup', 'time', 'mount'];

async function readSpec(bundle: string): Promise<unknown> {
  const path = join(bundle, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw notFound(`${path} does not exist`);
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`${path} is not valid JSON: ${describeError(err)}`);
  }
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Runtime {
  readonly store: StateStore;

  constructor(private readonly options: RuntimeOptions) {
    this.store = new StateStore(options.root);
  }

  private cgroupFor(spec: Spec, id: string): Promise<CgroupHandle> {
    return this.options.cgroups(spec.linux?.cgroupsPath, id, {
      systemd: this.options.systemdCgroup ?? false,
    });
  }

  /** The cgroup of an existing container, by the absolute path recorded at create. */
  private cgroupOf(record: ContainerRecord): Promise<CgroupHandle> {
    return this.options.cgroups(record.cgroupPath, record.id, { systemd: false });
  }

  private warn(message: string): void {
    (this.options.warn ?? ((m: string) => process.stderr.write(`berth-runtime: warning: ${m}\n`)))(message);
  }

  /** Check a bundle's config without creating anything. */
  async loadBundle(bundle: string): Promise<Spec> {
    const spec = validateSpec(await readSpec(bundle), {
      callerLimits: ownLimits(),
      callerHasSysResource: (ownEffectiveCapabilities() & (1n << 24n)) !== 0n,
    });
    return spec;
  }

  /**
   * Create a container: its process is set up in its namespaces and cgroups and held before the
   * user's program until start(). Returns the shim handle (callers of foreground runs wait on it).
   */
  async create(id: string, options: CreateOptions): Promise<{ record: ContainerRecord; shim: ShimHandle }> {
    validateId(id);
    const spec = await this.loadBundle(options.bundle);
    const seccomp = this.options.seccomp(spec);
    const stateDir = await this.store.reserve(id);
    const cgroup = await this.cgroupFor(spec, id);
    let shim: ShimHandle | undefined;
    try {
      await cgroup.create();
      await cgroup.apply(effectiveResources(spec));
      const plan = buildCreatePlan(spec, {
        bundle: options.bundle,
        stateDir,
        detach: !options.foreground,
        consoleSocket: options.consoleSocket,
        noPivot: options.noPivot,
        preserveFds: options.preserveFds,
        seccomp,
        cgroupHierarchies: hostCgroupHierarchies(),
        cgroupPath: cgroup.path,
        io: options.io,
      });
      shim = await launchShim(encodePlan(plan), {
        stdio: options.stdio ?? ['inherit', 'inherit', 'inherit'],
        detached: !options.foreground,
        preserveFds: options.preserveFds,
      });
      await cgroup.addProcess(shim.pid);
      const record: ContainerRecord = {
        id,
        bundle: options.bundle,
        rootfs: rootfsPath(spec, options.bundle),
        pid: shim.pid,
        pidStartTime: processStartTime(shim.pid) ?? '',
        shimPid: shim.child.pid ?? 0,
        created: new Date().toISOString(),
        cgroupPath: cgroup.path,
        namespaces: NAMESPACE_ORDER.filter((type) => spec.linux?.namespaces?.some((ns) => ns.type === type)),
        config: spec,
        owner: String(process.getuid?.() ?? 0),
      };
      await this.store.save(record);
      const state = toOciState(record, 'creating');
      await runHooks('prestart', spec.hooks?.prestart, state);
      await runHooks('createRuntime', spec.hooks?.createRuntime, state);
      await runHooks('createContainer', spec.hooks?.createContainer, state);
      await shim.proceed();
      if (options.pidFile) await writeFileAtomic(options.pidFile, String(shim.pid), { durable: false });
      if (!options.foreground) shim.release();
      return { record, shim };
    } catch (err) {
      if (shim) await shim.abort();
      await cgroup.destroy().catch(() => undefined);
      await this.store.remove(id);
      throw err;
    }
  }

  async status(record: ContainerRecord): Promise<ContainerStatus> {
    if (!initAlive(record)) return 'stopped';
    if (await exists(join(this.store.dir(record.id), 'exec.fifo'))) return 'created';
    const cgroup = await this.cgroupOf(record);
    if (await cgroup.frozen().catch(() => false)) return 'paused';
    return 'running';
  }

  async state(id: string): Promise<State> {
    const record = await this.store.load(id);
    return toOciState(record, await this.status(record));
  }

  /** Let a created container run its program. */
  async start(id: string): Promise<void> {
    const record = await this.store.load(id);
    const status = await this.status(record);
    if (status !== 'created') throw conflict(`cannot start container ${id}: it is ${status}, not created`);
    await runHooks('startContainer', record.config.hooks?.startContainer, toOciState(record, 'created'));
    const fifo = join(this.store.dir(id), 'exec.fifo');
    const handle = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const byte = Buffer.alloc(1);
      // The container opens the fifo for writing once we are a reader, then writes one byte.
      for (let attempt = 0; ; attempt++) {
        let count = 0;
        try {
          count = (await handle.read(byte, 0, 1, null)).bytesRead;
        } catch (err) {
          if (errnoCode(err) !== 'EAGAIN') throw err;
        }
        if (count === 1) break;
        if (!initAlive(record)) throw conflict(`container ${id} exited before it was started`);
        if (attempt > 10_000) throw conflict(`container ${id} did not answer start`);
        await sleep(attempt < 100 ? 0 : 1);
      }
    } finally {
      await handle.close();
    }
    await unlink(fifo).catch(() => undefined);
    try {
      await runHooks('poststart', record.config.hooks?.poststart, toOciState(record, 'running'));
    } catch (err) {
      this.warn(describeError(err));
    }
  }

  async kill(id: string, signal: string, all = false): Promise<void> {
    const record = await this.store.load(id);
    const status = await this.status(record);
    if (status === 'stopped') throw conflict(`container ${id} is not running`);
    const number = parseSignal(signal);
    const pids = all ? await (await this.cgroupOf(record)).pids() : [record.pid];
    for (const pid of pids) {
      try {
        process.kill(pid, number);
      } catch (err) {
        if (errnoCode(err) !== 'ESRCH') throw err;
      }
    }
  }

  async delete(id: string, force = false): Promise<void> {
    const record = await this.store.load(id);
    const status = await this.status(record);
    const cgroup = await this.cgroupOf(record);
    if (status === 'running' || status === 'paused') {
      if (!force) throw conflict(`cannot delete container ${id} that is not stopped: ${status}`);
    }
    if (status !== 'stopped') {
      if (status === 'paused') await cgroup.thaw();
      await this.killAll(record, cgroup);
    }
    // Processes left in the cgroup (exec'd ones, children of a dead init) go too.
    await this.killAll(record, cgroup);
    // The shim records the exit in the state directory and then exits: let it finish first.
    for (let i = 0; i < 200 && record.shimPid > 0 && processStartTime(record.shimPid) !== undefined; i++) {
      if (!(await this.isShimOf(record))) break;
      await sleep(5);
    }
    await cgroup.destroy();
    try {
      await runHooks('poststop', record.config.hooks?.poststop, toOciState(record, 'stopped'));
    } catch (err) {
      this.warn(describeError(err));
    }
    await this.store.remove(id);
  }

  /** Whether shimPid still names this container's shim (and not a reused pid). */
  private async isShimOf(record: ContainerRecord): Promise<boolean> {
    const cmdline = await readFile(`/proc/${record.shimPid}/cmdline`, 'utf8').catch(() => '');
    return cmdline.includes('berth-shim');
  }

  private async killAll(record: ContainerRecord, cgroup: CgroupHandle): Promise<void> {
    for (let round = 0; round < 200; round++) {
      const pids = new Set(await cgroup.pids().catch(() => [] as number[]));
      if (initAlive(record)) pids.add(record.pid);
      if (pids.size === 0) return;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await sleep(round < 20 ? 1 : 25);
    }
    throw conflict(`container ${record.id}: processes survive SIGKILL`);
  }

  async exec(id: string, spec: Process, options: ExecOptions): Promise<{ pid: number; shim: ShimHandle }> {
    const record = await this.store.load(id);
    const status = await this.status(record);
    if (status !== 'running' && status !== 'created')
      throw conflict(`cannot exec in container ${id}: it is ${status}`);
    const seccomp = this.options.seccomp(record.config);
    const plan = buildExecPlan(spec, {
      pid: record.pid,
      namespaces: record.namespaces.filter((type) => type !== 'time'),
      detach: options.detach,
      consoleSocket: options.consoleSocket,
      preserveFds: options.preserveFds,
      seccomp,
      io: options.io,
    });
    const shim = await launchShim(encodePlan(plan), {
      stdio: options.stdio ?? ['inherit', 'inherit', 'inherit'],
      detached: options.detach,
      preserveFds: options.preserveFds,
    });
    try {
      await (await this.cgroupOf(record)).addProcess(shim.pid);
      await options.beforeStart?.(shim.pid);
      await shim.proceed();
    } catch (err) {
      await shim.abort();
      throw err;
    }
    if (options.pidFile) await writeFileAtomic(options.pidFile, String(shim.pid), { durable: false });
    if (options.detach) shim.release();
    return { pid: shim.pid, shim };
  }

  async pids(id: string): Promise<number[]> {
    const record = await this.store.load(id);
    return (await this.cgroupOf(record)).pids();
  }

  async stats(id: string): Promise<CgroupStats> {
    const record = await this.store.load(id);
    return (await this.cgroupOf(record)).stats();
  }

  /** Live resource changes (`docker update`). */
  async update(id: string, resources: Resources): Promise<void> {
    const record = await this.store.load(id);
    await (await this.cgroupOf(record)).update(resources);
  }

  /** How many of the container's processes the OOM killer killed (before delete removes the cgroup). */
  async oomKills(id: string): Promise<number> {
    const record = await this.store.load(id);
    return (await this.cgroupOf(record)).oomKillCount();
  }

  async pause(id: string): Promise<void> {
    const record = await this.store.load(id);
    const status = await this.status(record);
    if (status !== 'running') throw conflict(`cannot pause container ${id}: it is ${status}`);
    await (await this.cgroupOf(record)).freeze();
  }

  async resume(id: string): Promise<void> {
    const record = await this.store.load(id);
    const status = await this.status(record);
    if (status !== 'paused') throw conflict(`cannot resume container ${id}: it is ${status}`);
    await (await this.cgroupOf(record)).thaw();
  }

  async list(): Promise<Array<{ record: ContainerRecord; status: ContainerStatus }>> {
    const result: Array<{ record: ContainerRecord; status: ContainerStatus }> = [];
    for (const id of await this.store.ids()) {
      try {
        const record = await this.store.load(id);
        result.push({ record, status: await this.status(record) });
      } catch {
        // a directory without a complete state.json is a container being created or deleted
      }
    }
    return result;
  }
}
