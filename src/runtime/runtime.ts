/**
 * The OCI runtime as a library: create, start, state, kill, delete, run, exec, ps, pause, resume,
 * list. berth-runtime's command line and berthd both use it.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { StdioOptions } from 'node:child_process';
import type { ContainerStatus, NamespaceType, Process, Resources, Spec, State } from '../oci/runtime-spec.js';
import type { CgroupEntry, CgroupStats } from '../linux/cgroups/types.js';
import { validateSpec } from '../oci/validate.js';
import { ownEffectiveCapabilities, ownLimits } from '../linux/rlimits.js';
import { writeFileAtomic } from '../common/atomic-file.js';
import {
  BerthError,
  conflict,
  errnoCode,
  invalidArgument,
  notFound,
  describeError,
} from '../common/errors.js';
import { encodePlan } from './plan.js';
import { buildCreatePlan, buildExecPlan, rootfsPath, type ContainerIo } from './plan-builder.js';
import { hostCgroupHierarchies } from './cgroup-mounts.js';
import {
  ShimOperationError,
  spawnShim,
  type PendingShim,
  type ShimHandle,
  type ShimOptions,
} from './shim-process.js';
import { WarmShim } from './warm-shim.js';
import { HookError, runHooks } from './hooks.js';
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
import { START_ANSWER_MS, StartHookError, waitForStartByte } from './start-fifo.js';

/** What the runtime needs from a cgroup driver (src/linux/cgroups implements it). */
export interface CgroupHandle {
  /** Path relative to each hierarchy's root, e.g. `/berth/<id>`. */
  readonly path: string;
  create(): Promise<void>;
  apply(resources: Resources | undefined): Promise<void>;
  /** How a new process starts out in this cgroup (the shim puts it there). */
  readonly entry: CgroupEntry;
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
  /** Keep one shim started ahead of need (src/runtime/warm-shim.ts): for processes that start many containers. */
  warmShim?: boolean;
}

export interface CreateOptions {
  bundle: string;
  /**
   * The bundle's config.json as its writer had it (berthd writes it just before): not read back
   * from the file. It is checked all the same.
   */
  spec?: Spec;
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

// Bundle and state files are small and local: synchronous reads cost microseconds, where each
// thread-pool round trip of the promise API costs more than the read itself on a busy host.
function readSpec(bundle: string): unknown {
  const path = join(bundle, 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
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

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A prestart, createRuntime (run here) or createContainer hook (a HOOK op of init) failed. */
function isHookFailure(err: unknown): boolean {
  return err instanceof HookError || (err instanceof ShimOperationError && err.operation === 'HOOK');
}

/** How long `start` waits for init's answer: its startContainer hooks may take their timeouts. */
function startAnswerMs(spec: Spec): number {
  const hooks = spec.hooks?.startContainer ?? [];
  if (hooks.some((hook) => !hook.timeout)) return Infinity;
  return START_ANSWER_MS + hooks.reduce((sum, hook) => sum + (hook.timeout ?? 0) * 1000, 0);
}

export class Runtime {
  readonly store: StateStore;
  private readonly warm: WarmShim | undefined;

  constructor(private readonly options: RuntimeOptions) {
    this.store = new StateStore(options.root);
    this.warm = options.warmShim ? new WarmShim() : undefined;
  }

  private startShim(options: ShimOptions): PendingShim {
    return this.warm?.take(options) ?? spawnShim(options);
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
  async loadBundle(bundle: string, parsed?: Spec): Promise<Spec> {
    const spec = validateSpec(parsed ?? readSpec(bundle), {
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
    const spec = await this.loadBundle(options.bundle, options.spec);
    const seccomp = this.options.seccomp(spec);
    // The cgroup handle only names paths (and may fail): before anything exists that needs cleaning up.
    const cgroup = await this.cgroupFor(spec, id);
    const stateDir = await this.store.reserve(id);
    let pending: PendingShim | undefined;
    let shim: ShimHandle | undefined;
    let record: ContainerRecord | undefined;
    try {
      // The shim starts (exec, start-up) while the cgroup and the plan are made; it waits for the plan.
      pending = this.startShim({
        stdio: options.stdio ?? ['inherit', 'inherit', 'inherit'],
        detached: !options.foreground,
        preserveFds: options.preserveFds,
      });
      await cgroup.create();
      const plan = buildCreatePlan(spec, {
        id,
        bundle: options.bundle,
        stateDir,
        detach: !options.foreground,
        consoleSocket: options.consoleSocket,
        noPivot: options.noPivot,
        preserveFds: options.preserveFds,
        seccomp,
        cgroupHierarchies: hostCgroupHierarchies(),
        cgroupPath: cgroup.path,
        cgroupEntry: cgroup.entry,
        io: options.io,
      });
      // The plan goes out once the cgroup exists: the shim clones init into it while the resources
      // are written (init runs nothing before `go`).
      const launching = pending.launch(encodePlan(plan));
      pending = undefined;
      const [applied, launched] = await Promise.allSettled([
        cgroup.apply(effectiveResources(spec)),
        launching,
      ]);
      if (launched.status === 'rejected')
        throw applied.status === 'rejected' ? applied.reason : launched.reason;
      shim = launched.value;
      if (applied.status === 'rejected') throw applied.reason;
      record = {
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
      const hooks = spec.hooks ?? {};
      if (!hooks.prestart?.length && !hooks.createRuntime?.length && !hooks.createContainer?.length) {
        // No hook can look at the state: init goes on with its set-up (`go` is sent at once)
        // while the state is written.
        await Promise.all([shim.proceed(), this.store.save(record)]);
      } else {
        await this.store.save(record);
        const state = toOciState(record, 'creating');
        // As in runc, prestart and createRuntime hooks run here, in the runtime's namespaces, once
        // init has made its mounts and before pivot_root (init waits at its RUNTIME_HOOKS op).
        // createContainer hooks are HOOK ops after it: init runs them in the container's namespaces.
        await shim.proceed(async () => {
          await runHooks('prestart', hooks.prestart, state);
          await runHooks('createRuntime', hooks.createRuntime, state);
        });
      }
      if (options.pidFile) await writeFileAtomic(options.pidFile, String(shim.pid), { durable: false });
      if (!options.foreground) shim.release();
      return { record, shim };
    } catch (err) {
      if (pending) await pending.cancel();
      if (shim) await shim.abort();
      await cgroup.destroy().catch(() => undefined);
      // The runtime spec: a failed create hook stops the container and goes on to its destruction,
      // poststop hooks included.
      if (record && isHookFailure(err)) await this.poststop(record);
      await this.store.remove(id);
      throw err;
    }
  }

  private async poststop(record: ContainerRecord): Promise<void> {
    try {
      // No pid: the process is gone (runc leaves it out too).
      const { pid: _gone, ...state } = toOciState(record, 'stopped');
      await runHooks('poststop', record.config.hooks?.poststop, state);
    } catch (err) {
      this.warn(describeError(err));
    }
  }

  async status(record: ContainerRecord): Promise<ContainerStatus> {
    if (!initAlive(record)) return 'stopped';
    if (existsSync(join(this.store.dir(record.id), 'exec.fifo'))) return 'created';
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
    // init runs the startContainer hooks (HOOK ops) once the fifo is opened, then answers.
    const fifo = join(this.store.dir(id), 'exec.fifo');
    try {
      await waitForStartByte(fifo, id, () => initAlive(record), startAnswerMs(record.config));
    } catch (err) {
      // The runtime spec: a failed startContainer hook stops the container, which is then destroyed.
      if (err instanceof StartHookError)
        await this.delete(id, true).catch((cleanup: unknown) => this.warn(describeError(cleanup)));
      throw err;
    }
    rmSync(fifo, { force: true });
    this.warm?.refill();
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
    let record: ContainerRecord;
    try {
      record = await this.store.load(id);
    } catch (err) {
      // A create cut short between reserving the id and saving its record (the caller was
      // killed) leaves the reservation alone: force removes it, as it removes a container.
      if (force && err instanceof BerthError && err.kind === 'not-found' && this.store.reserved(id)) {
        await this.store.remove(id);
        return;
      }
      throw err;
    }
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
      if (!this.isShimOf(record)) break;
      await sleep(5);
    }
    await cgroup.destroy();
    await this.poststop(record);
    await this.store.remove(id);
  }

  /** Whether shimPid still names this container's shim (and not a reused pid). */
  private isShimOf(record: ContainerRecord): boolean {
    try {
      return readFileSync(`/proc/${record.shimPid}/cmdline`, 'utf8').includes('berth-shim');
    } catch {
      return false;
    }
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
    const listenerPath = record.config.linux?.seccomp?.listenerPath;
    const plan = buildExecPlan(spec, {
      pid: record.pid,
      namespaces: record.namespaces.filter((type) => type !== 'time'),
      detach: options.detach,
      consoleSocket: options.consoleSocket,
      preserveFds: options.preserveFds,
      seccomp,
      io: options.io,
      cgroupEntry: (await this.cgroupOf(record)).entry,
      seccompListener: listenerPath
        ? {
            path: listenerPath,
            metadata: record.config.linux?.seccomp?.listenerMetadata,
            container: { id, bundle: record.bundle, annotations: record.config.annotations },
          }
        : undefined,
    });
    const shim = await this.startShim({
      stdio: options.stdio ?? ['inherit', 'inherit', 'inherit'],
      detached: options.detach,
      preserveFds: options.preserveFds,
    }).launch(encodePlan(plan));
    try {
      await options.beforeStart?.(shim.pid);
      await shim.proceed();
    } catch (err) {
      await shim.abort();
      throw err;
    }
    if (options.pidFile) await writeFileAtomic(options.pidFile, String(shim.pid), { durable: false });
    if (options.detach) shim.release();
    this.warm?.refill();
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
