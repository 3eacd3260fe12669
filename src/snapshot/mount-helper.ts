/**
 * Client of berth-mount (native/mount, docs/mount-helper.md): one long-lived coprocess performs
 * mount(2) and umount2(2) for this process, so mounting a container's root filesystem costs a
 * line on a pipe instead of a fork and exec of mount(8) (which, from a large Node.js process,
 * also blocks the event loop for the fork). It starts on the first request and again after it
 * died; requests are answered in order, one line each.
 */
import { nativeBinary } from '../common/native-binary.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { BerthError, internal, invalidArgument, unavailable } from '../common/errors.js';

/** berth-mount's longest request line, without its newline (native/mount/berth-mount.c). */
export const MAX_REQUEST_BYTES = 20480;
/** A request unanswered this long means a hung helper: it is killed and started again. */
const REQUEST_TIMEOUT_MS = 30_000;
const STDERR_KEEP = 2048;

/** A mount(2) call as berth-mount takes it. */
export interface MountCall {
  source: string;
  target: string;
  fstype: string;
  /** berth-mount's flag names (mount-options.ts). */
  flags: string[];
  data: string;
  /** The working directory of the call (relative overlay lowerdirs); '' for none. */
  cwd: string;
}

/** A request berth-mount carried out and the kernel (or berth-mount) refused. */
export class MountError extends BerthError {
  constructor(
    /** The errno's name (ENOENT, EINVAL, EBUSY, ...), or EOTHER. */
    readonly errno: string,
    message: string,
  ) {
    super('internal', message);
    this.name = 'MountError';
  }
}

/**
 * One field of a request: every byte that would end or split it (space, control characters) and
 * the backslash as `\ooo`; the empty string as `-`, and a lone `-` escaped.
 */
export function escapeField(value: string): string {
  if (value.includes('\0'))
    throw invalidArgument(`mount path or option ${JSON.stringify(value)} contains a NUL byte`);
  if (value === '') return '-';
  if (value === '-') return '\\055';
  let field = '';
  for (const c of value) {
    const code = c.charCodeAt(0);
    field += c === '\\' || code <= 0x20 || code === 0x7f ? `\\${code.toString(8).padStart(3, '0')}` : c;
  }
  return field;
}

export function mountRequest(call: MountCall): string {
  const fields = [call.source, call.target, call.fstype, call.flags.join(','), call.data, call.cwd];
  return ['mount', ...fields.map(escapeField)].join(' ');
}

export function umountRequest(target: string, flags: string[]): string {
  return ['umount', escapeField(target), escapeField(flags.join(','))].join(' ');
}

/** Parses an answer line: undefined for `ok`, else the error it reports. */
export function parseAnswer(line: string): MountError | undefined {
  if (line === 'ok') return undefined;
  const match = /^error (E[A-Z0-9]+) (.*)$/.exec(line);
  if (!match) throw internal(`berth-mount said something unexpected: ${JSON.stringify(line)}`);
  return new MountError(match[1] ?? 'EOTHER', match[2] ?? '');
}

/** $BERTH_MOUNT, else native/build/berth-mount of the checkout this code runs from. */
export function mountHelperPath(): string {
  const path = nativeBinary('berth-mount', 'BERTH_MOUNT');
  if (path === undefined)
    throw unavailable('berth-mount is not built: run `npm run build` (or set BERTH_MOUNT to its path)');
  return path;
}

interface Pending {
  resolve: (line: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One running berth-mount. Idle, it keeps no event loop alive: tools that mount can still exit. */
class Coprocess {
  private readonly child: ChildProcess;
  private readonly pending: Pending[] = [];
  private stdout = '';
  private stderr = '';
  private failure: BerthError | undefined;

  constructor(binary: string) {
    // In /: a working directory inherited from berthd would keep its filesystem busy.
    this.child = spawn(binary, [], { cwd: '/', stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdin?.on('error', () => undefined); // a dead child shows up as 'close' below
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: string) => this.onData(chunk));
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-STDERR_KEEP);
    });
    this.child.on('error', (err) =>
      this.fail(unavailable(`cannot run berth-mount (${binary}): ${err.message}`)),
    );
    // 'close' comes after stdout ended, so every answer written before an exit is delivered first.
    this.child.once('close', (code, signal) => {
      const how = signal ? `was killed by ${signal}` : `exited with ${String(code)}`;
      const said = this.stderr.trim();
      this.fail(unavailable(`berth-mount ${how}${said ? `: ${said}` : ''}`));
    });
    this.child.unref();
    for (const stream of [this.child.stdin, this.child.stdout, this.child.stderr])
      (stream as { unref?: () => void } | null)?.unref?.();
  }

  get alive(): boolean {
    return this.failure === undefined;
  }

  send(line: string): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => this.kill(unavailable(`berth-mount did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`)),
        REQUEST_TIMEOUT_MS,
      );
      timer.unref();
      if (this.pending.length === 0) this.hold(true);
      this.pending.push({ resolve, reject, timer });
      this.child.stdin?.write(`${line}\n`);
    });
  }

  /**
   * While an answer is due, the pipe and the process keep the event loop alive: both, since a
   * helper that dies closes its stdout before its exit is seen, and that exit fails the requests.
   */
  private hold(on: boolean): void {
    const stdout = this.child.stdout as { ref?: () => void; unref?: () => void } | null;
    if (on) {
      this.child.ref();
      stdout?.ref?.();
    } else {
      this.child.unref();
      stdout?.unref?.();
    }
  }

  private settled(): Pending | undefined {
    const waiter = this.pending.shift();
    if (waiter) clearTimeout(waiter.timer);
    if (this.pending.length === 0) this.hold(false);
    return waiter;
  }

  private onData(chunk: string): void {
    this.stdout += chunk;
    let newline: number;
    while ((newline = this.stdout.indexOf('\n')) >= 0) {
      const line = this.stdout.slice(0, newline);
      this.stdout = this.stdout.slice(newline + 1);
      const waiter = this.settled();
      if (waiter) waiter.resolve(line);
      else this.kill(internal(`berth-mount answered a request it was not sent: ${JSON.stringify(line)}`));
    }
  }

  /** Rejects every request in flight and marks the process unusable. */
  private fail(err: BerthError): void {
    if (!this.failure) this.failure = err;
    for (let waiter = this.settled(); waiter; waiter = this.settled()) waiter.reject(this.failure);
  }

  kill(err: BerthError): void {
    this.fail(err);
    this.child.kill('SIGKILL');
  }
}

let shared: Coprocess | undefined;

/**
 * Sends one request line to this process's berth-mount (started if needed) and waits for its
 * answer: MountError when the kernel refused, `unavailable` when the helper is missing or died.
 */
export async function mountHelperRequest(line: string): Promise<void> {
  if (Buffer.byteLength(line) > MAX_REQUEST_BYTES)
    throw invalidArgument(`a mount request is longer than berth-mount's ${MAX_REQUEST_BYTES} bytes`);
  if (!shared?.alive) shared = new Coprocess(mountHelperPath());
  const proc = shared;
  const answer = await proc.send(line);
  let error: MountError | undefined;
  try {
    error = parseAnswer(answer);
  } catch (err) {
    // Out of step with the protocol: later answers cannot be trusted, so start afresh.
    if (err instanceof BerthError) proc.kill(err);
    throw err;
  }
  if (error) throw error;
}
