/**
 * The Docker API's stream formats:
 * - hijacked connections (attach, exec start): the response head Docker writes by hand before the
 *   socket becomes a raw byte pipe in both directions;
 * - the multiplexed stdio framing: an 8-byte header (stream type 0 stdin, 1 stdout, 2 stderr,
 *   3 system error; three zero bytes; big-endian uint32 payload length) before each payload;
 * - newline-delimited JSON messages (pull/push/load progress, build output, errors);
 * - chunked HTTP bodies written as data arrives (logs, events, stats), with backpressure.
 */
import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { invalidArgument } from '../common/errors.js';
import { versionAtLeast } from './versions.js';

export const MediaType = {
  RawStream: 'application/vnd.docker.raw-stream',
  MultiplexedStream: 'application/vnd.docker.multiplexed-stream',
  Json: 'application/json',
} as const;

export const StdStream = { Stdin: 0, Stdout: 1, Stderr: 2, Systemerr: 3 } as const;
export type StdStreamType = (typeof StdStream)[keyof typeof StdStream];

/**
 * The media type of an attach/exec/logs stream: multiplexed framing when there is no TTY, announced
 * as such from API 1.42 on (older clients only know raw-stream, whatever the framing).
 */
export function streamMediaType(apiVersion: string, multiplexed: boolean): string {
  return multiplexed && versionAtLeast(apiVersion, '1.42')
    ? MediaType.MultiplexedStream
    : MediaType.RawStream;
}

/**
 * The bytes Docker writes on a hijacked connection before the raw stream: 101 when the client
 * asked to upgrade, else 200; then the headers already set on the response, sorted by name as Go
 * writes them.
 */
export function hijackResponseHead(
  upgrade: boolean,
  contentType: string,
  headers: Record<string, string>,
): Buffer {
  let head = upgrade
    ? `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n`
    : `HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\n`;
  for (const name of Object.keys(headers).sort()) head += `${name}: ${headers[name]}\r\n`;
  return Buffer.from(head + '\r\n', 'latin1');
}

export const FRAME_HEADER_SIZE = 8;
const MAX_FRAME_PAYLOAD = 0xffffffff;

/** One frame of the multiplexed stream. */
export function encodeFrame(stream: StdStreamType, payload: Uint8Array | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  if (body.length > MAX_FRAME_PAYLOAD)
    throw new RangeError(`frame payload of ${body.length} bytes is too large`);
  const frame = Buffer.alloc(FRAME_HEADER_SIZE + body.length);
  frame[0] = stream;
  frame.writeUInt32BE(body.length, 4);
  frame.set(body, FRAME_HEADER_SIZE);
  return frame;
}

export interface Frame {
  stream: StdStreamType;
  payload: Buffer;
}

/** Incremental reader of the multiplexed stream: push bytes as they come, take whole frames. */
export class FrameDecoder {
  private buffered: Buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): Frame[] {
    this.buffered = this.buffered.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buffered, chunk]);
    const frames: Frame[] = [];
    while (this.buffered.length >= FRAME_HEADER_SIZE) {
      const type = this.buffered[0] ?? 0;
      if (
        type > StdStream.Systemerr ||
        this.buffered[1] !== 0 ||
        this.buffered[2] !== 0 ||
        this.buffered[3] !== 0
      ) {
        throw invalidArgument(
          `unrecognized multiplexed stream header ${this.buffered.subarray(0, 4).toString('hex')}`,
        );
      }
      const length = this.buffered.readUInt32BE(4);
      if (this.buffered.length < FRAME_HEADER_SIZE + length) break;
      frames.push({
        stream: type as StdStreamType,
        payload: Buffer.from(this.buffered.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + length)),
      });
      this.buffered = this.buffered.subarray(FRAME_HEADER_SIZE + length);
    }
    return frames;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  get pending(): number {
    return this.buffered.length;
  }

  /** Call at the end of the input: a partial frame left over means the stream was cut. */
  finish(): void {
    if (this.buffered.length > 0) {
      throw invalidArgument(
        `multiplexed stream ended inside a frame (${this.buffered.length} bytes left over)`,
      );
    }
  }
}

/** All frames of a byte stream, in order. */
export async function* readFrames(source: AsyncIterable<Uint8Array>): AsyncGenerator<Frame> {
  const decoder = new FrameDecoder();
  for await (const chunk of source) yield* decoder.push(chunk);
  decoder.finish();
}

/** A writable that frames everything written to it as one stream of the multiplexed output. */
export class FrameWriter extends Writable {
  private readonly target: Writable;
  private readonly stream: StdStreamType;

  constructor(target: Writable, stream: StdStreamType) {
    super();
    this.target = target;
    this.stream = stream;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (chunk.length === 0) return callback();
    this.target.write(encodeFrame(this.stream, chunk), callback);
  }
}

/** Docker's JSONProgress: what the CLI draws its progress bars from. */
export interface JsonProgress {
  current?: number;
  total?: number;
  start?: number;
  hidecounts?: boolean;
  units?: string;
}

/** Docker's JSONMessage: one line of a pull, push, load or build stream. */
export interface JsonMessage {
  stream?: string;
  status?: string;
  progressDetail?: JsonProgress;
  progress?: string;
  id?: string;
  from?: string;
  time?: number;
  timeNano?: number;
  errorDetail?: { code?: number; message: string };
  error?: string;
  aux?: unknown;
}

const MESSAGE_KEYS = [
  'stream',
  'status',
  'progressDetail',
  'progress',
  'id',
  'from',
  'time',
  'timeNano',
  'errorDetail',
  'error',
  'aux',
] as const;
const PROGRESS_KEYS = ['current', 'total', 'start', 'hidecounts', 'units'] as const;

/** Go's omitempty: zero values are left out. */
const isEmpty = (value: unknown): boolean =>
  value === undefined || value === null || value === '' || value === 0 || value === false;

/** One message as Docker encodes it: Go's field order, empty fields left out, newline-terminated. */
export function encodeJsonMessage(message: JsonMessage): string {
  const out: Record<string, unknown> = {};
  for (const key of MESSAGE_KEYS) {
    const value = message[key];
    if (key === 'progressDetail' && value !== undefined) {
      const progress: Record<string, unknown> = {};
      for (const field of PROGRESS_KEYS) {
        const detail = (value as JsonProgress)[field];
        if (!isEmpty(detail)) progress[field] = detail;
      }
      out[key] = progress;
    } else if (key === 'errorDetail' && value !== undefined) {
      const detail = value as { code?: number; message: string };
      out[key] = isEmpty(detail.code)
        ? { message: detail.message }
        : { code: detail.code, message: detail.message };
    } else if (!isEmpty(value)) {
      out[key] = value;
    }
  }
  return JSON.stringify(out) + '\n';
}

const SIZE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** Decimal size with four significant digits, as Docker's units.HumanSize ("1.5MB", "999B"). */
export function humanSize(bytes: number): string {
  let size = bytes;
  let unit = 0;
  while (size >= 1000 && unit < SIZE_UNITS.length - 1) {
    size /= 1000;
    unit++;
  }
  return `${Number(size.toPrecision(4))}${SIZE_UNITS[unit]}`;
}

/** The `progress` text of a message: Docker's bar and counts for a 200-column terminal (no time left). */
export function progressText(progress: JsonProgress): string {
  const current = progress.current ?? 0;
  const total = progress.total ?? 0;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return progress.units ? `${current} ${progress.units}` : humanSize(current).padStart(8);
  const percentage = Math.min(50, Math.trunc(Math.trunc((current / total) * 100) / 2));
  const bar = `[${'='.repeat(percentage)}>${' '.repeat(50 - percentage)}] `;
  if (progress.hidecounts) return bar;
  if (progress.units) {
    return bar + (current > total ? `${current} ${progress.units}` : `${current}/${total} ${progress.units}`);
  }
  const counts =
    current > total
      ? humanSize(current).padStart(8)
      : `${humanSize(current).padStart(8)}/${humanSize(total)}`;
  return bar + counts;
}

/** Where a stream writes: resolves once the chunk is accepted; false when the client has gone. */
export interface ChunkSink {
  write(chunk: string | Uint8Array): Promise<boolean>;
}

/** Writes newline-delimited JSONMessages: status lines, progress, build output, a final error. */
export class JsonMessageWriter {
  private readonly sink: ChunkSink;

  constructor(sink: ChunkSink) {
    this.sink = sink;
  }

  send(message: JsonMessage): Promise<boolean> {
    return this.sink.write(encodeJsonMessage(message));
  }

  status(status: string, id?: string): Promise<boolean> {
    return this.send({ status, id });
  }

  progress(id: string, status: string, detail: JsonProgress): Promise<boolean> {
    return this.send({ status, progressDetail: detail, progress: progressText(detail), id });
  }

  stream(text: string): Promise<boolean> {
    return this.send({ stream: text });
  }

  aux(value: unknown): Promise<boolean> {
    return this.send({ aux: value });
  }

  error(message: string): Promise<boolean> {
    return this.send({ errorDetail: { message }, error: message });
  }
}

/**
 * A chunked response body written as data arrives. write() waits for the socket to drain, so a
 * slow client slows the producer instead of filling memory; it resolves false (and `signal` is
 * aborted) once the client has gone.
 */
export class ResponseStream implements ChunkSink {
  private readonly res: ServerResponse;
  private readonly controller = new AbortController();

  constructor(res: ServerResponse, status: number, contentType: string) {
    this.res = res;
    res.statusCode = status;
    res.setHeader('Content-Type', contentType);
    res.on('close', () => {
      if (!res.writableFinished) this.controller.abort();
    });
    // The client sees the response start before the first chunk (docker events, logs -f).
    res.flushHeaders();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get closed(): boolean {
    return this.controller.signal.aborted || this.res.destroyed;
  }

  write(chunk: string | Uint8Array): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.res.write(chunk)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve(!this.closed);
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }
}
