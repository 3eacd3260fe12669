/** Starting berth-shim with a plan and speaking its sync protocol (docs/shim-plan.md). */
import { nativeBinary } from '../common/native-binary.js';
import { spawn, type StdioOptions } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import type { Socket } from 'node:net';
import { BerthError, internal, unavailable } from '../common/errors.js';

/** $BERTH_SHIM, else native/build/berth-shim of the checkout this code runs from. */
export function shimPath(): string {
  const path = nativeBinary('berth-shim', 'BERTH_SHIM');
  if (path === undefined)
    throw unavailable('berth-shim is not built: run `npm run build` (or set BERTH_SHIM to its path)');
  return path;
}

/** A failure the shim reported for one plan operation. */
export class ShimOperationError extends BerthError {
  constructor(
    readonly index: number,
    readonly operation: string,
    readonly errno: number,
    readonly detail: string,
  ) {
    // A HOOK's detail says which hook failed and how; anything else is named by its plan step.
    super(
      'internal',
      operation === 'HOOK'
        ? detail
        : `container setup failed at ${operation} (plan step ${index}): ${detail}`,
    );
  }
}

/**
 * The container's program cannot be executed: the shim's look-up before `created` (runc's
 * exec.LookPath, reported as a failure of the EXEC op) or, when the file changed after it, execve.
 * The message is runc's ("unable to start container process: exec: ...").
 */
export class ExecFailedError extends BerthError {
  constructor(
    readonly errno: number,
    readonly detail: string,
  ) {
    super('invalid-argument', `unable to start container process: ${detail}`);
  }

  /** The shell's (and Docker's) convention: 127 when nothing is there to run, 126 when it cannot be run. */
  get exitCode(): number {
    return this.errno === ENOENT || this.errno === ENOTDIR ? 127 : 126;
  }
}

const ENOENT = 2;
const ENOTDIR = 20;

/** Lines of the sync protocol. */
export class LineReader {
  private buffer = '';
  private lines: string[] = [];
  private waiters: Array<(line: string | undefined) => void> = [];
  private ended = false;

  constructor(stream: Readable) {
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.buffer += chunk;
      let newline: number;
      while ((newline = this.buffer.indexOf('\n')) >= 0) {
        this.push(this.buffer.slice(0, newline));
        this.buffer = this.buffer.slice(newline + 1);
      }
    });
    const end = (): void => {
      this.ended = true;
      for (const waiter of this.waiters.splice(0)) waiter(undefined);
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  }

  private push(line: string): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(line);
    else this.lines.push(line);
  }

  next(): Promise<string | undefined> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

function protocolError(line: string): BerthError {
  const error = /^error (\d+) (\S+) (\d+) (.*)$/.exec(line);
  if (error?.[2] === 'EXEC') return new ExecFailedError(Number(error[3]), error[4] ?? '');
  if (error)
    return new ShimOperationError(Number(error[1]), error[2] ?? '', Number(error[3]), error[4] ?? '');
  const exec = /^exec-failed (\d+) (.*)$/.exec(line);
  if (exec) return new ExecFailedError(Number(exec[1]), exec[2] ?? '');
  return internal(`berth-shim said something unexpected: ${JSON.stringify(line)}`);
}

export interface ShimHandle {
  /** The berth-shim process: its pid, and its stdout and stderr when they are pipes to this process. */
  child: ShimChild;
  /** The container process (init, or the exec'd process). */
  pid: number;
  /**
   * Let the process run its operations; resolves at `created`. At a RUNTIME_HOOKS op init waits
   * until `runtimeHooks` resolves (a rejection is passed on: the caller then aborts).
   */
  proceed(runtimeHooks?: () => Promise<void>): Promise<void>;
  /** Kill the process and make the shim exit. */
  abort(): Promise<void>;
  /** Resolves with the shim's exit code (the container's, in foreground mode). */
  exited: Promise<number>;
  /** Further protocol lines (e.g. `exec-failed` after `start`). */
  nextLine(): Promise<string | undefined>;
  /** Stop listening, so this process can exit while the shim runs on. */
  release(): void;
}

export interface ShimOptions {
  stdio: StdioOptions;
  detached: boolean;
  preserveFds?: number;
}

/** A started shim that waits for its plan. */
export interface PendingShim {
  /** Send the plan; resolves once init exists (`pid N`). */
  launch(plan: Buffer): Promise<ShimHandle>;
  /** No plan after all: the shim is killed. */
  cancel(): Promise<void>;
  /** Whether the shim still waits (a warm one may have been killed meanwhile). */
  alive(): boolean;
  /** Whether it keeps this process alive (as a running child does). */
  ref(): void;
  unref(): void;
}

export interface ShimChild {
  pid?: number;
  stdout: Readable | null;
  stderr: Readable | null;
}

/** A started shim as the sync protocol sees it, whoever started it (Node or berth-spawn). */
export interface ShimProcess {
  child: ShimChild;
  /** The exit code: the code, or 128 when a signal ended it. */
  exited: Promise<number>;
  /** Stop following it (it runs on). */
  release(): void;
}

/**
 * Start the shim: the plan on its fd 3, the sync socket on fd 4, and this process's fds
 * 3 .. 3+preserveFds-1 as its fds 5 and up (the container gets them as 3 and up). The shim reads
 * its plan to EOF before doing anything, so it can be started before the plan is ready: its
 * exec and start-up then overlap the caller's own set-up (cgroups, plan building).
 */
export function spawnShim(options: ShimOptions): PendingShim {
  const [s0, s1, s2] = Array.isArray(options.stdio)
    ? options.stdio
    : [options.stdio, options.stdio, options.stdio];
  const preserved = Array.from({ length: options.preserveFds ?? 0 }, (_, i) => 3 + i);
  const child = spawn(shimPath(), ['launch'], {
    stdio: [s0 ?? 'ignore', s1 ?? 'ignore', s2 ?? 'inherit', 'pipe', 'pipe', ...preserved],
    detached: options.detached,
    // The shim reads no environment (EXEC carries the container's): nothing to copy.
    env: {},
  });
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    child.once('error', () => resolve(127));
  });
  const planStream = child.stdio[3] as Socket;
  planStream.on('error', () => undefined);
  const sync = child.stdio[4] as Socket;
  sync.on('error', () => undefined);
  const reader = new LineReader(sync);
  const started: ShimProcess = {
    child,
    exited,
    release() {
      for (const stream of child.stdio) (stream as Readable | Writable | null)?.destroy();
      child.unref();
    },
  };
  return {
    launch(plan) {
      planStream.end(plan);
      return handshake(started, sync, reader);
    },
    async cancel() {
      child.kill('SIGKILL');
      await exited;
    },
    alive: () => child.exitCode === null && child.signalCode === null,
    ref() {
      child.ref();
      planStream.ref();
      sync.ref();
    },
    unref() {
      child.unref();
      planStream.unref();
      sync.unref();
    },
  };
}

/** The sync protocol from `pid N` on, over the shim's fd 4 (`sync`, read through `reader`). */
export async function handshake(shim: ShimProcess, sync: Socket, reader: LineReader): Promise<ShimHandle> {
  const { exited } = shim;
  const first = await reader.next();
  if (first === undefined) {
    const code = await exited;
    throw internal(`berth-shim exited (${code}) before starting the container`);
  }
  const pidMatch = /^pid (\d+)$/.exec(first);
  if (!pidMatch) {
    await exited;
    throw protocolError(first);
  }
  const pid = Number(pidMatch[1]);

  return {
    child: shim.child,
    pid,
    exited,
    nextLine: () => reader.next(),
    async proceed(runtimeHooks) {
      sync.write('go\n');
      let line = await reader.next();
      if (line === 'runtime-hooks') {
        await runtimeHooks?.();
        sync.write('resume\n');
        line = await reader.next();
      }
      if (line === 'created') return;
      if (line === undefined) {
        const code = await exited;
        throw internal(`berth-shim exited (${code}) while setting the container up`);
      }
      await exited;
      throw protocolError(line);
    },
    async abort() {
      if (sync.writable) sync.write('abort\n');
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await exited;
    },
    release() {
      sync.destroy();
      shim.release();
    },
  };
}

export { protocolError };
