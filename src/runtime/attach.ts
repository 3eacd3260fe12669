/**
 * Client of berth-shim's attach socket (ATTACH_SOCKET, docs/shim-plan.md "Container stdio"): the
 * container's live output, its stdin, pty resizes and the exit code. Any number of clients may be
 * attached at once; one that stops reading is dropped by the shim once it is 1 MiB behind.
 *
 * Frames are `[u8 kind][u32 BE length][payload]` both ways.
 */
import { connect, type Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { BerthError, errnoCode, invalidArgument, notFound } from '../common/errors.js';

/** Shim -> client frame kinds. */
export const OUTPUT_FRAME = { STDOUT: 1, STDERR: 2, EXIT: 3 } as const;
/** Client -> shim frame kinds. */
export const INPUT_FRAME = { STDIN: 0, CLOSE_STDIN: 1, RESIZE: 2 } as const;

/** The shim sends data frames of at most 16 KiB; anything far larger means the peer is not a shim. */
const MAX_FRAME = 1 << 20;

export type StdStream = 'stdout' | 'stderr';

export interface OutputChunk {
  stream: StdStream;
  data: Buffer;
}

export interface AttachSession {
  /** Object-mode stream of OutputChunk, from the moment of attaching; ends when the shim closes. */
  output: Readable;
  /** The container's stdin: each write is one stdin frame, end() closes stdin. */
  stdin: Writable;
  write(data: Buffer | string): Promise<void>;
  /** Close the container's stdin (a pipe is closed; a pty gets its EOF character). */
  closeStdin(): Promise<void>;
  /** Set the pty's size (ignored by the shim when the container has no terminal). */
  resize(rows: number, cols: number): Promise<void>;
  /**
   * The container's exit code, or undefined when the connection ended without one (dropped, shim
   * gone). Settles once `output` has been read to its end.
   */
  exit: Promise<number | undefined>;
  /** Detach: the container keeps running. */
  close(): void;
}

function frame(kind: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(kind, 0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** Splits the shim's byte stream into frames; resolves `exit` from the exit frame. */
class FrameReader extends Readable {
  private pending: Buffer = Buffer.alloc(0);
  exitCode: number | undefined;

  constructor(private readonly socket: Socket) {
    super({ objectMode: true, highWaterMark: 16 });
  }

  override _read(): void {
    this.socket.resume();
  }

  /** false when the peer broke the protocol. */
  feed(chunk: Buffer): boolean {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let offset = 0;
    let more = true;
    while (this.pending.length - offset >= 5) {
      const kind = this.pending.readUInt8(offset);
      const length = this.pending.readUInt32BE(offset + 1);
      if (length > MAX_FRAME || kind < OUTPUT_FRAME.STDOUT || kind > OUTPUT_FRAME.EXIT) return false;
      if (this.pending.length - offset - 5 < length) break;
      const payload = this.pending.subarray(offset + 5, offset + 5 + length);
      offset += 5 + length;
      if (kind === OUTPUT_FRAME.EXIT) {
        if (length !== 4) return false;
        this.exitCode = payload.readUInt32BE(0);
      } else {
        // Copied: the payload would otherwise pin the whole read buffer.
        const data = Buffer.from(payload);
        more = this.push({ stream: kind === OUTPUT_FRAME.STDOUT ? 'stdout' : 'stderr', data }) && more;
      }
    }
    this.pending = this.pending.subarray(offset);
    if (!more) this.socket.pause(); // backpressure: the shim buffers, then drops us
    return true;
  }
}

/** Connect to a shim's attach socket. */
export async function attach(socketPath: string): Promise<AttachSession> {
  const socket = connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (err) => {
      const code = errnoCode(err);
      reject(
        code === 'ENOENT' || code === 'ECONNREFUSED'
          ? notFound(`no container is attached at ${socketPath} (its shim has exited)`)
          : new BerthError('unavailable', `cannot attach to ${socketPath}: ${err.message}`, { cause: err }),
      );
    });
  });
  socket.removeAllListeners('error');
  const output = new FrameReader(socket);
  const exit = new Promise<number | undefined>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      if (!output.feed(chunk)) socket.destroy(new Error(`${socketPath} does not speak the attach protocol`));
    });
    // The shim drops a client by closing it (a reset when unread data was pending): not an error.
    socket.on('error', (err) => {
      if (errnoCode(err) !== 'ECONNRESET' && errnoCode(err) !== 'EPIPE') output.destroy(err);
    });
    socket.on('close', () => {
      output.push(null);
      resolve(output.exitCode);
    });
  });

  const send = (data: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      if (socket.destroyed || !socket.writable) {
        reject(new BerthError('unavailable', `the attach connection to ${socketPath} is closed`));
        return;
      }
      socket.write(data, (err) => (err ? reject(err) : resolve()));
    });

  const stdin = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      send(frame(INPUT_FRAME.STDIN, chunk)).then(() => callback(), callback);
    },
    final(callback) {
      send(frame(INPUT_FRAME.CLOSE_STDIN)).then(() => callback(), callback);
    },
  });

  return {
    output,
    stdin,
    write: (data) => send(frame(INPUT_FRAME.STDIN, typeof data === 'string' ? Buffer.from(data) : data)),
    closeStdin: () => send(frame(INPUT_FRAME.CLOSE_STDIN)),
    resize: (rows, cols) => {
      for (const [name, value] of [
        ['rows', rows],
        ['cols', cols],
      ] as const) {
        if (!Number.isInteger(value) || value < 0 || value > 0xffff)
          return Promise.reject(
            invalidArgument(`terminal ${name} must be an integer from 0 to 65535, not ${value}`),
          );
      }
      const size = Buffer.alloc(4);
      size.writeUInt16BE(rows, 0);
      size.writeUInt16BE(cols, 2);
      return send(frame(INPUT_FRAME.RESIZE, size));
    },
    exit,
    close: () => socket.destroy(),
  };
}
