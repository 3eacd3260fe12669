/**
 * The local end of an attached container or exec: the daemon's hijacked socket carries stdin one
 * way and output the other, as raw bytes with a TTY or as Docker's multiplexed frames
 * (`[stream, 0, 0, 0, size u32 BE]` + payload) without one. With a TTY the local terminal goes into
 * raw mode, resizes follow SIGWINCH, and the detach keys (ctrl-p ctrl-q by default) end the
 * session without stopping the container.
 */
import type { Duplex, Writable } from 'node:stream';
import type { CliContext, InputStream } from './context.js';
import { CommandError } from './errors.js';

/** Where demultiplexed output goes; read on each write, so an unused process stream is never made. */
export interface Outputs {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** Splits the multiplexed stream into stdout (1) and stderr (2); a stream-3 frame is an error. */
export class FrameDemuxer {
  private buffered: Buffer = Buffer.alloc(0);
  systemError = '';

  constructor(private readonly outputs: Outputs) {}

  /** Writes the complete frames; false when an output asked to wait for 'drain'. */
  push(chunk: Buffer): boolean {
    let flowing = true;
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 8) {
      const type = this.buffered[0] ?? 0;
      const size = this.buffered.readUInt32BE(4);
      if (type > 3 || this.buffered[1] !== 0 || this.buffered[2] !== 0 || this.buffered[3] !== 0) {
        throw new CommandError(`Unrecognized input header: ${type}`);
      }
      if (this.buffered.length < 8 + size) break;
      const payload = this.buffered.subarray(8, 8 + size);
      this.buffered = this.buffered.subarray(8 + size);
      if (type === 2) flowing = this.outputs.stderr.write(payload) && flowing;
      else if (type === 3) this.systemError += payload.toString('utf8');
      else flowing = this.outputs.stdout.write(payload) && flowing;
    }
    return flowing;
  }
}

/** docker's detach key syntax: "ctrl-p,ctrl-q", "a,ctrl-@". */
export function parseDetachKeys(spec: string): number[] {
  const keys: number[] = [];
  for (const part of spec.split(',')) {
    const key = part.trim();
    if (key.length === 1) {
      keys.push(key.charCodeAt(0));
      continue;
    }
    const match = /^ctrl-(.)$/i.exec(key);
    const ch = match?.[1]?.toLowerCase();
    if (ch === undefined) throw new CommandError(`Unknown character: '${key}'`);
    if (ch >= 'a' && ch <= 'z') keys.push(ch.charCodeAt(0) - 96);
    else if (ch === '@') keys.push(0);
    else if ('[\\]^_'.includes(ch)) keys.push(27 + '[\\]^_'.indexOf(ch));
    else throw new CommandError(`Unknown character: '${key}'`);
  }
  return keys;
}

export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/**
 * Watches input for the detach sequence: bytes that may start it are held back, and let through
 * when the sequence breaks off (as docker's escape proxy does).
 */
export class DetachWatcher {
  private matched = 0;
  constructor(private readonly keys: number[]) {}

  /** The bytes to forward, and whether the sequence completed. */
  feed(chunk: Buffer): { forward: Buffer; detached: boolean } {
    const out: number[] = [];
    for (const byte of chunk) {
      if (this.keys.length > 0 && byte === this.keys[this.matched]) {
        this.matched++;
        if (this.matched === this.keys.length) return { forward: Buffer.from(out), detached: true };
        continue;
      }
      if (this.matched > 0) {
        out.push(...this.keys.slice(0, this.matched));
        this.matched = 0;
        if (byte === this.keys[0]) {
          this.matched = 1;
          continue;
        }
      }
      out.push(byte);
    }
    return { forward: Buffer.from(out), detached: false };
  }
}

export interface SessionOptions {
  tty: boolean;
  /** Send local stdin to the container. */
  stdin: boolean;
  detachKeys: string;
  /** Called once when the session starts, to send the first resize (TTY only). */
  resize?: () => Promise<void>;
}

export interface SessionResult {
  detached: boolean;
}

/** Puts a TTY stdin into raw mode until the command ends. */
export function rawTerminal(ctx: CliContext, stdin: InputStream): void {
  if (!stdin.isTTY || typeof stdin.setRawMode !== 'function') return;
  stdin.setRawMode(true);
  ctx.onCleanup(() => stdin.setRawMode?.(false));
}

/** Resizes the container's TTY now and on every SIGWINCH; resolves when the first resize is done. */
export function followTerminalSize(ctx: CliContext, resize: () => Promise<void>): Promise<void> {
  const onResize = (): void => void resize().catch(() => undefined);
  process.on('SIGWINCH', onResize);
  ctx.onCleanup(() => process.off('SIGWINCH', onResize));
  return resize().catch(() => undefined);
}

/** Copies between the hijacked socket and the local streams until the output ends or the user detaches. */
export function runSession(ctx: CliContext, socket: Duplex, options: SessionOptions): Promise<SessionResult> {
  // The process's stdout and stderr are made on first use (main.ts): a container that prints
  // nothing costs no stream set-up.
  const outputs = ctx.streams;
  // Only when it is used: creating process.stdin has a cost, and it would hold the process open.
  const stdin = options.stdin ? ctx.streams.stdin : undefined;
  const demuxer = options.tty ? undefined : new FrameDemuxer(outputs);
  let initialResize: Promise<void> = Promise.resolve();
  return new Promise<SessionResult>((resolve, reject) => {
    let finished = false;
    const finish = (result: SessionResult | Error): void => {
      if (finished) return;
      finished = true;
      if (stdin) {
        stdin.off('data', onInput);
        stdin.off('end', onInputEnd);
        stdin.pause();
      }
      // The first resize is in flight as the session starts; a short session must not cut it off.
      void initialResize.then(() => settle(result));
    };
    const settle = (result: SessionResult | Error): void => {
      if (result instanceof Error) reject(result);
      else {
        if (demuxer?.systemError) {
          reject(new CommandError(demuxer.systemError.trim()));
          return;
        }
        resolve(result);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      try {
        if (demuxer) demuxer.push(chunk);
        else outputs.stdout.write(chunk);
      } catch (err) {
        socket.destroy();
        finish(err as Error);
      }
    });
    socket.on('end', () => finish({ detached: false }));
    socket.on('close', () => finish({ detached: false }));
    socket.on('error', (err) => finish(err));
    // A short session may have ended before it was handed over (an end without data is emitted
    // even by a paused stream): nothing was lost, and its events will not come again.
    if (socket.readableEnded || socket.destroyed) finish({ detached: false });
    socket.resume();

    const watcher = new DetachWatcher(options.tty ? parseDetachKeys(options.detachKeys) : []);
    const onInput = (chunk: Buffer | string): void => {
      const { forward, detached } = watcher.feed(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      if (forward.length > 0) socket.write(forward);
      if (detached) {
        socket.destroy();
        finish({ detached: true });
      }
    };
    // End of local input closes the container's stdin: half-close, keep reading output.
    const onInputEnd = (): void => void (socket as Duplex & Writable).end();
    if (stdin) {
      if (options.tty) rawTerminal(ctx, stdin);
      stdin.on('data', onInput);
      stdin.on('end', onInputEnd);
      stdin.resume();
    }
    if (options.tty && options.resize) initialResize = followTerminalSize(ctx, options.resize);
  });
}

/** Streams signals the CLI receives to the container (docker's --sig-proxy). */
export function proxySignals(ctx: CliContext, kill: (signal: string) => Promise<void>): void {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];
  const handlers = signals.map((signal) => {
    const handler = (): void => void kill(signal).catch(() => undefined);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  ctx.onCleanup(() => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  });
}
