/**
 * Docker's health checks (moby daemon/health.go): while a container runs and is not paused, its
 * HEALTHCHECK command runs as an exec in it, first after one interval (the start interval while
 * the start period lasts and no probe passed yet), then one interval after each probe ends. The
 * state (State.Health) is starting until a probe passes; `Retries` failures in a row outside the
 * start period make it unhealthy. A status change publishes `health_status: <status>`.
 *
 * The monitor follows the engine through its events (start, die, pause, unpause, destroy), so the
 * engine does not know about it; containers already running when it starts are picked up too.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError } from '../common/errors.js';
import type { Process } from '../oci/runtime-spec.js';
import { attach, type AttachSession } from '../runtime/attach.js';
import { ExecFailedError } from '../runtime/shim-process.js';
import { isLive, type ContainerRecord, type HealthState } from './container-record.js';
import type { ContainerConfig, HealthConfig } from './docker-types.js';
import type { Engine } from './engine.js';
import type { EventBus, EventMessage } from './events.js';

/** Longest probe output kept; longer output is cut and ends in "...". */
export const MAX_OUTPUT = 4096;
export const MAX_LOG_ENTRIES = 5;

export interface HealthTimings {
  /** Milliseconds. */
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

const DEFAULTS: HealthTimings = {
  interval: 30_000,
  timeout: 30_000,
  startPeriod: 0,
  startInterval: 5_000,
  retries: 3,
};

/** The config's durations (nanoseconds; 0 or absent means the default) in milliseconds. */
export function healthTimings(config: HealthConfig | null | undefined): HealthTimings {
  const ms = (ns: number | undefined, fallback: number): number =>
    ns !== undefined && ns > 0 ? Math.max(1, Math.round(ns / 1e6)) : fallback;
  return {
    interval: ms(config?.Interval, DEFAULTS.interval),
    timeout: ms(config?.Timeout, DEFAULTS.timeout),
    startPeriod: ms(config?.StartPeriod, DEFAULTS.startPeriod),
    startInterval: ms(config?.StartInterval, DEFAULTS.startInterval),
    retries: config?.Retries !== undefined && config.Retries > 0 ? config.Retries : DEFAULTS.retries,
  };
}

/** The command a probe runs: `CMD` as given, `CMD-SHELL` through the config's shell; none for `NONE` or no check. */
export function probeCommand(config: ContainerConfig): string[] | undefined {
  const test = config.Healthcheck?.Test ?? [];
  const [kind, ...rest] = test;
  if (rest.length === 0) return undefined;
  if (kind === 'CMD') return rest;
  if (kind === 'CMD-SHELL') {
    const shell = config.Shell && config.Shell.length > 0 ? config.Shell : ['/bin/sh', '-c'];
    return [...shell, ...rest];
  }
  return undefined;
}

export interface ProbeResult {
  Start: string;
  End: string;
  ExitCode: number;
  Output: string;
}

/** The state after one probe (a new object; `state` is not changed). */
export function recordProbe(
  state: HealthState,
  result: ProbeResult,
  context: { startedAt: number; startPeriod: number; retries: number },
): HealthState {
  const next: HealthState = {
    Status: state.Status,
    FailingStreak: state.FailingStreak,
    Log: [...state.Log, result].slice(-MAX_LOG_ENTRIES),
  };
  if (result.ExitCode === 0) {
    next.FailingStreak = 0;
    next.Status = 'healthy';
    return next;
  }
  // While starting, failures inside the start period do not count.
  const inStartPeriod =
    state.Status === 'starting' && Date.parse(result.Start) - context.startedAt < context.startPeriod;
  if (!inStartPeriod) {
    next.FailingStreak += 1;
    if (next.FailingStreak >= context.retries) next.Status = 'unhealthy';
  }
  return next;
}

/** How long until the next probe: Docker's getInterval. */
export function nextProbeDelay(
  timings: HealthTimings,
  startedAt: number,
  now: number,
  status: HealthState['Status'],
): number {
  const elapsed = now - startedAt;
  if (elapsed >= timings.startPeriod) return timings.interval;
  const remaining = timings.startPeriod - elapsed;
  if (remaining < timings.interval) return remaining;
  return status === 'starting' ? timings.startInterval : timings.interval;
}

/** Go's time.Duration String for whole milliseconds: 500ms, 1s, 1.5s, 1m30s, 2h0m0s. */
export function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1000;
  const secondsText = `${Number.isInteger(seconds) ? seconds : seconds.toFixed(3).replace(/0+$/, '')}s`;
  if (hours > 0) return `${hours}h${minutes}m${secondsText}`;
  if (minutes > 0) return `${minutes}m${secondsText}`;
  return secondsText;
}

/** Collects up to MAX_OUTPUT bytes; "..." marks that more was dropped. */
export class LimitedOutput {
  private readonly chunks: Buffer[] = [];
  private length = 0;
  private truncated = false;

  write(data: Buffer): void {
    const keep = Math.min(MAX_OUTPUT - this.length, data.length);
    if (keep > 0) {
      this.chunks.push(data.subarray(0, keep));
      this.length += keep;
    }
    if (keep < data.length) this.truncated = true;
  }

  toString(): string {
    const text = Buffer.concat(this.chunks).toString('utf8');
    return this.truncated ? `${text}...` : text;
  }
}

/** Runs a probe command in a container; resolves with its exit code (-1 when it timed out) and output. */
export type ProbeRunner = (
  record: ContainerRecord,
  command: string[],
  timeoutMs: number,
) => Promise<{ exitCode: number; output: string }>;

/** Bound on waiting for a probe to go after it was killed. */
const KILL_WAIT_MS = 10_000;

/** The processes the probe's shim started (the probe itself), to kill on a timeout. */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text
    .split(' ')
    .filter((part) => part.trim() !== '')
    .map(Number);
}

const signal = (pid: number, name: NodeJS.Signals): void => {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
};

/** Probes as execs through the engine's runtime: the container's user, environment and working directory. */
export function execProbeRunner(engine: Engine): ProbeRunner {
  const { runtime, execRoot } = engine.services;
  return async (record, command, timeoutMs) => {
    const state = await runtime.store.load(record.id);
    const base = state.config.process;
    const spec: Process = {
      terminal: false,
      user: base?.user ?? { uid: 0, gid: 0 },
      args: command,
      env: base?.env ?? [],
      cwd: base?.cwd ?? '/',
      ...(base?.capabilities ? { capabilities: base.capabilities } : {}),
      ...(base?.rlimits ? { rlimits: base.rlimits } : {}),
      noNewPrivileges: base?.noNewPrivileges ?? false,
    };
    const socket = join(execRoot, 'a', `h${randomBytes(7).toString('hex')}`);
    const holder: { session?: AttachSession } = {};
    let shimPid: number;
    try {
      ({ pid: shimPid } = await runtime.exec(record.id, spec, {
        detach: true,
        stdio: ['ignore', 'ignore', 'ignore'],
        io: { attachSocket: socket, openStdin: false },
        beforeStart: async () => {
          holder.session = await attach(socket);
        },
      }));
    } catch (err) {
      holder.session?.close();
      if (err instanceof ExecFailedError) return { exitCode: -1, output: err.message };
      throw err;
    }
    const session = holder.session;
    if (session === undefined) return { exitCode: -1, output: 'the probe could not be attached to' };
    const output = new LimitedOutput();
    session.output.on('data', (chunk: { data: Buffer }) => output.write(chunk.data));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([session.exit, timedOut]);
    clearTimeout(timer);
    if (outcome !== 'timeout') return { exitCode: outcome ?? -1, output: output.toString() };
    // Kill the probe (the shim forwards what it can catch; SIGKILL goes to the probe itself).
    const children = await childrenOf(shimPid);
    if (children.length > 0) for (const child of children) signal(child, 'SIGKILL');
    else signal(shimPid, 'SIGTERM');
    let wait: NodeJS.Timeout | undefined;
    await Promise.race([session.exit, new Promise((resolve) => (wait = setTimeout(resolve, KILL_WAIT_MS)))]);
    clearTimeout(wait);
    session.close();
    const text = output.toString();
    return {
      exitCode: -1,
      output: `Health check exceeded timeout (${goDuration(timeoutMs)})${text === '' ? '' : `: ${text}`}`,
    };
  };
}

export interface HealthMonitorDeps {
  containers: {
    find(reference: string): ContainerRecord | undefined;
    list(): ContainerRecord[];
    save(record: ContainerRecord): Promise<void>;
  };
  events: EventBus;
  runProbe: ProbeRunner;
  log: { error(message: string): void };
}

const FOLLOWED = new Set(['start', 'die', 'pause', 'unpause', 'destroy']);

interface Running {
  timer: NodeJS.Timeout | undefined;
}

export class HealthMonitor {
  private readonly running = new Map<string, Running>();
  private closed = false;
  private subscription: ReturnType<EventBus['subscribe']> | undefined;

  constructor(private readonly deps: HealthMonitorDeps) {}

  /** Follow the engine's events until close(); containers running now are checked too. */
  start(): void {
    void this.follow();
  }

  close(): void {
    this.closed = true;
    this.subscription?.close();
    for (const id of [...this.running.keys()]) this.halt(id);
  }

  private async follow(): Promise<void> {
    while (!this.closed) {
      const subscription = this.deps.events.subscribe({
        filter: (event) => event.Type === 'container' && FOLLOWED.has(event.Action),
      });
      this.subscription = subscription;
      // After subscribing, so no start between the two is missed.
      for (const record of this.deps.containers.list())
        if (isLive(record.state) && !record.state.Paused) this.begin(record, true);
      for await (const event of subscription) this.onEvent(event);
      // Cut off for falling behind: subscribe again and look at every container afresh.
      if (!subscription.overflowed) return;
    }
  }

  private onEvent(event: EventMessage): void {
    const record = this.deps.containers.find(event.Actor.ID);
    switch (event.Action) {
      case 'start':
        if (record) this.begin(record, true);
        return;
      case 'unpause':
        if (record) this.begin(record, false);
        return;
      default:
        this.halt(event.Actor.ID);
    }
  }

  /** Start (or restart) the probes of a running container; `reset` makes its status starting again. */
  private begin(record: ContainerRecord, reset: boolean): void {
    this.halt(record.id);
    if (probeCommand(record.config) === undefined) return;
    if (reset || record.state.Health === undefined) {
      record.state.Health = { Status: 'starting', FailingStreak: 0, Log: record.state.Health?.Log ?? [] };
    }
    const entry: Running = { timer: undefined };
    this.running.set(record.id, entry);
    this.schedule(record.id, entry);
  }

  private halt(id: string): void {
    const entry = this.running.get(id);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.running.delete(id);
  }

  private schedule(id: string, entry: Running): void {
    const record = this.deps.containers.find(id);
    if (record === undefined || this.running.get(id) !== entry) return;
    const timings = healthTimings(record.config.Healthcheck);
    const delay = nextProbeDelay(
      timings,
      Date.parse(record.state.StartedAt),
      Date.now(),
      record.state.Health?.Status ?? 'starting',
    );
    entry.timer = setTimeout(() => void this.probe(id, entry), delay);
    entry.timer.unref();
  }

  private async probe(id: string, entry: Running): Promise<void> {
    const record = this.deps.containers.find(id);
    const command = record ? probeCommand(record.config) : undefined;
    if (record === undefined || command === undefined || this.running.get(id) !== entry) return;
    const timings = healthTimings(record.config.Healthcheck);
    const start = new Date().toISOString();
    let result: ProbeResult;
    try {
      const { exitCode, output } = await this.deps.runProbe(record, command, timings.timeout);
      result = { Start: start, End: new Date().toISOString(), ExitCode: exitCode, Output: output };
    } catch (err) {
      result = { Start: start, End: new Date().toISOString(), ExitCode: -1, Output: describeError(err) };
    }
    // Stopped, paused or restarted while probing: the result no longer counts.
    if (this.running.get(id) !== entry) return;
    const before = record.state.Health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
    const after = recordProbe(before, result, {
      startedAt: Date.parse(record.state.StartedAt),
      startPeriod: timings.startPeriod,
      retries: timings.retries,
    });
    record.state.Health = after;
    if (after.Status !== before.Status) {
      this.deps.events.publish({
        Type: 'container',
        Action: `health_status: ${after.Status}`,
        Actor: {
          ID: record.id,
          Attributes: { ...(record.config.Labels ?? {}), image: record.imageRef, name: record.name },
        },
      });
      await this.deps.containers
        .save(record)
        .catch((err: unknown) => this.deps.log.error(`saving ${record.id}: ${describeError(err)}`));
    }
    this.schedule(id, entry);
  }
}

/** The health monitor of berthd's engine, started. */
export function startHealthChecks(engine: Engine): HealthMonitor {
  const monitor = new HealthMonitor({
    containers: engine.containers,
    events: engine.services.events,
    runProbe: execProbeRunner(engine),
    log: engine.services.log,
  });
  monitor.start();
  return monitor;
}
