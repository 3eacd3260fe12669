/**
 * berth-spawn (native/spawn, docs/spawn-helper.md): a small coprocess that forks and execs
 * berth-shim for this process. child_process.spawn forks the whole Node process, which costs its
 * main thread milliseconds per shim under load; here a shim costs two unix-socket connections
 * (they become the shim's fd 3 and fd 4) and a line from the coprocess with the shim's pid, and,
 * when the shim exits, its exit code.
 *
 * The coprocess is started on first use and again after it died; a shim it failed to start is
 * started with spawn instead. Shims outlive it (they are re-parented), but their exits are then
 * only seen by /proc, without a code.
 */
import { nativeBinary } from '../common/native-binary.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unavailable } from '../common/errors.js';
import {
  LineReader,
  handshake,
  shimPath,
  spawnShim,
  type PendingShim,
  type ShimHandle,
} from './shim-process.js';
import { processStartTime } from './state.js';

/** The exit code given for a shim whose exit was seen without its code (the coprocess died). */
export const UNKNOWN_EXIT = 255;
const ORPHAN_POLL_MS = 20;
const STDERR_KEEP = 2000;

/** $BERTH_SPAWN, else native/build/berth-spawn of this checkout; undefined when it is not built. */
export function spawnHelperPath(): string | undefined {
  return nativeBinary('berth-spawn', 'BERTH_SPAWN');
}

interface ExitWatch {
  promise: Promise<number>;
  resolve(code: number): void;
  /** Whether a caller waits on it: the coprocess's output then keeps this process alive. */
  held: boolean;
}

interface Started {
  plan: Socket;
  sync: Socket;
  /** The shim's pid and exit code; rejects when the coprocess could not start it. */
  shim: Promise<{ pid: number; exited: Promise<number> }>;
}

type Waiter = { resolve(shim: { pid: number; exited: Promise<number> }): void; reject(err: Error): void };

/** One running berth-spawn. */
export class SpawnHelper {
  readonly pid: number;
  private readonly child: ChildProcess;
  private readonly dir: string;
  /** Where it listens (in a directory only this process's user can enter). */
  readonly socketPath: string;
  private readonly ready: Promise<void>;
  private readonly waiters = new Map<number, Waiter>();
  private readonly exits = new Map<number, ExitWatch>();
  private nextToken = 1;
  private stdout = '';
  private stderr = '';
  private failure: Error | undefined;

  constructor(binary: string, shim: string) {
    // A private directory: whoever can connect can have a shim run a plan.
    this.dir = mkdtempSync(join(tmpdir(), 'berth-spawn-'));
    this.socketPath = join(this.dir, 'spawn.sock');
    // In /: a working directory inherited from berthd would keep its filesystem busy.
    this.child = spawn(binary, [this.dir, shim], { cwd: '/', stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    this.pid = this.child.pid ?? 0;
    let onReady: () => void = () => undefined;
    this.ready = new Promise((resolve) => (onReady = resolve));
    this.child.stdin?.on('error', () => undefined);
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: string) => {
      this.stdout += chunk;
      let newline: number;
      while ((newline = this.stdout.indexOf('\n')) >= 0) {
        const line = this.stdout.slice(0, newline);
        this.stdout = this.stdout.slice(newline + 1);
        if (line === 'ready') onReady();
        else this.onLine(line);
      }
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-STDERR_KEEP);
    });
    this.child.on('error', (err) => this.fail(`cannot run berth-spawn (${binary}): ${err.message}`));
    // 'close' comes after stdout ended: every line written before the exit is handled first.
    this.child.once('close', (code, signal) =>
      this.fail(`berth-spawn ${signal ? `was killed by ${signal}` : `exited with ${String(code)}`}`),
    );
    this.child.unref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr])
      (stream as { unref?: () => void } | null)?.unref?.();
  }

  get alive(): boolean {
    return this.failure === undefined;
  }

  /** Ask for a shim: its fd 3 is `plan`, its fd 4 `sync`. */
  start(): Started {
    const token = this.nextToken++;
    const plan = new Socket();
    const sync = new Socket();
    const shim = new Promise<{ pid: number; exited: Promise<number> }>((resolve, reject) =>
      this.waiters.set(token, { resolve, reject }),
    );
    const failed = (err: Error): void => {
      const waiter = this.waiters.get(token);
      this.waiters.delete(token);
      this.updateRef();
      waiter?.reject(err);
    };
    this.updateRef();
    if (this.failure) failed(this.failure);
    else
      this.ready.then(() => {
        if (!this.waiters.has(token)) return;
        for (const [socket, kind] of [
          [plan, 'plan'],
          [sync, 'sync'],
        ] as const) {
          socket.once('error', (err) => failed(unavailable(`berth-spawn: connecting: ${err.message}`)));
          socket.connect(this.socketPath);
          socket.write(`${kind} ${token}\n`);
        }
      }, failed);
    return { plan, sync, shim };
  }

  /** Whether a caller waits for this shim's exit (keeps this process alive until it comes). */
  hold(pid: number, held: boolean): void {
    const watch = this.exits.get(pid);
    if (watch) watch.held = held;
    this.updateRef();
  }

  /** Stop following a shim (it runs on). */
  forget(pid: number): void {
    this.exits.delete(pid);
    this.updateRef();
  }

  /** Stop the coprocess (tests; berthd's exit ends it by closing its stdin). */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  private updateRef(): void {
    const stdout = this.child.stdout as { ref?: () => void; unref?: () => void } | null;
    // Its answers are awaited: a shim being started, or the exit of one a caller waits on.
    if (this.waiters.size > 0 || [...this.exits.values()].some((watch) => watch.held)) stdout?.ref?.();
    else stdout?.unref?.();
  }

  private onLine(line: string): void {
    const spawned = /^spawned (\d+) (\d+)$/.exec(line);
    if (spawned) {
      const pid = Number(spawned[2]);
      let resolve: (code: number) => void = () => undefined;
      const promise = new Promise<number>((r) => (resolve = r));
      this.exits.set(pid, { promise, resolve, held: true });
      const waiter = this.waiters.get(Number(spawned[1]));
      this.waiters.delete(Number(spawned[1]));
      this.updateRef();
      waiter?.resolve({ pid, exited: promise });
      return;
    }
    const exit = /^exit (\d+) (\d+) (\d+)$/.exec(line);
    if (exit) {
      const pid = Number(exit[1]);
      // Like a ChildProcess 'exit': the code, or 128 for a signal.
      this.exits.get(pid)?.resolve(Number(exit[3]) > 0 ? 128 : Number(exit[2]));
      this.forget(pid);
      return;
    }
    const failed = /^failed (\d+) \d+ (.*)$/.exec(line);
    if (failed) {
      const waiter = this.waiters.get(Number(failed[1]));
      this.waiters.delete(Number(failed[1]));
      this.updateRef();
      waiter?.reject(unavailable(`berth-spawn could not start berth-shim: ${failed[2] ?? ''}`));
    }
  }

  private fail(message: string): void {
    if (this.failure) return;
    const said = this.stderr.trim();
    this.failure = unavailable(`${message}${said ? `: ${said}` : ''}`);
    for (const waiter of this.waiters.values()) waiter.reject(this.failure);
    this.waiters.clear();
    rmSync(this.dir, { recursive: true, force: true });
    // Its shims were re-parented: their exits can only be seen as their pids going away.
    for (const [pid, watch] of this.exits) {
      const timer = setInterval(() => {
        if (processStartTime(pid) !== undefined) return;
        clearInterval(timer);
        watch.resolve(UNKNOWN_EXIT);
      }, ORPHAN_POLL_MS);
      if (!watch.held) timer.unref();
    }
    this.exits.clear();
    this.updateRef();
  }
}

let current: SpawnHelper | undefined;

/** The running coprocess, started now if there is none (or it died); undefined when not built. */
export function spawnHelper(): SpawnHelper | undefined {
  if (current?.alive) return current;
  const binary = spawnHelperPath();
  if (!binary) return undefined;
  current = new SpawnHelper(binary, shimPath());
  return current;
}

/**
 * A shim started by the coprocess: stdio /dev/null, no preserved fds, its own session (the case
 * of berthd's containers and warm shims). Undefined when berth-spawn is not built.
 */
export function spawnShimViaHelper(): PendingShim | undefined {
  const helper = spawnHelper();
  if (!helper) return undefined;
  const { plan, sync, shim } = helper.start();
  plan.on('error', () => undefined);
  sync.on('error', () => undefined);
  const reader = new LineReader(sync);
  const pid = shim.then((started) => started.pid);
  pid.catch(() => undefined); // seen through `exited` and `failed`
  let held = true;
  let failed = false;
  let code: number | undefined;
  const exited = shim.then(
    (started) => {
      helper.hold(started.pid, held);
      return started.exited;
    },
    () => {
      failed = true;
      return 127;
    },
  );
  void exited.then((c) => (code = c));
  const setHeld = (value: boolean): void => {
    held = value;
    void pid.then(
      (shimPid) => helper.hold(shimPid, held),
      () => undefined,
    );
  };
  return {
    async launch(planBytes): Promise<ShimHandle> {
      let shimPid: number;
      try {
        shimPid = await pid;
      } catch {
        // The coprocess failed (the next shim gets a new one): this one is started by Node.
        plan.destroy();
        sync.destroy();
        return spawnShim({ stdio: ['ignore', 'ignore', 'ignore'], detached: true }).launch(planBytes);
      }
      plan.end(planBytes);
      return handshake(
        {
          child: { pid: shimPid, stdout: null, stderr: null },
          exited,
          release: () => {
            plan.destroy();
            helper.forget(shimPid);
          },
        },
        sync,
        reader,
      );
    },
    async cancel() {
      let shimPid: number;
      try {
        shimPid = await pid;
      } catch {
        return;
      }
      try {
        process.kill(shimPid, 'SIGKILL');
      } catch {
        // gone already
      }
      await exited;
      plan.destroy();
      sync.destroy();
    },
    alive: () => !failed && code === undefined,
    ref() {
      plan.ref();
      sync.ref();
      setHeld(true);
    },
    unref() {
      plan.unref();
      sync.unref();
      setHeld(false);
    },
  };
}
