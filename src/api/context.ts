/**
 * What a route handler sees of a request: parameters, query, API version, the body (bounded, or as
 * a stream), and ways to take the response over for streams: a chunked body (`stream`) or the raw
 * connection (`hijack`).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, Readable, type Duplex, type Writable } from 'node:stream';
import { invalidArgument } from '../common/errors.js';
import { ApiError } from './errors.js';
import type { Query } from './query.js';
import { hijackResponseHead, ResponseStream, streamMediaType } from './streams.js';

/** Default bound of a body read into memory (JSON bodies); streamed bodies are not bounded. */
export const DEFAULT_BODY_LIMIT = 16 * 1024 * 1024;

export interface HijackOptions {
  /** Output framed with the multiplexed stdio header (no TTY); picks the announced media type. */
  multiplexed: boolean;
}

/** A connection taken over by a handler: the client's input and the raw output. */
export interface HijackedConnection {
  /**
   * What the client sends after the request (stdin). It ends when the client closes its write
   * side; iterating it with for-await is safe (the connection stays open for the output).
   */
  input: Readable;
  /** Raw bytes to the client; end() it when the output is complete, which closes the connection. */
  output: Writable;
}

export interface RequestContext<P = Record<string, string>> {
  readonly method: string;
  /** The route path, without the /v1.xx prefix. */
  readonly path: string;
  readonly params: P;
  readonly query: Query;
  /** The API version the request is served at (from the path, else the newest). */
  readonly apiVersion: string;
  readonly headers: IncomingHttpHeaders;
  readonly req: IncomingMessage;
  /** Aborted when the client goes away or the daemon shuts down. */
  readonly signal: AbortSignal;
  /** A header's value (the first, if repeated). */
  header(name: string): string | undefined;
  /** Set a header on the reply this handler will return. */
  setHeader(name: string, value: string): void;
  /** The whole body, at most `limit` bytes (413 beyond). */
  body(limit?: number): Promise<Buffer>;
  /** The body parsed as JSON as Docker's ReadJSON does; undefined for an empty body. */
  json<T = unknown>(limit?: number): Promise<T | undefined>;
  /** The body as a stream (image load, build context, archive upload). */
  bodyStream(): Readable;
  /** Take the response over for a chunked body: logs, events, stats, JSON progress. */
  stream(contentType: string, status?: number): ResponseStream;
  /**
   * Take the connection over (attach, exec start): writes Docker's 101 (or 200) head and returns
   * the connection's input and output. Without an Upgrade header only output is possible: the
   * input ends at once.
   */
  hijack(options: HijackOptions): HijackedConnection;
  /** True once the handler took the response over (stream or hijack). */
  readonly takenOver: boolean;
}

/** How the request arrived: a normal exchange, or an upgrade whose body was read ahead. */
export type Transport =
  | { kind: 'http'; res: ServerResponse }
  | { kind: 'upgrade'; res: ServerResponse; socket: Duplex; body: Buffer };

export interface ContextInit<P> {
  req: IncomingMessage;
  transport: Transport;
  path: string;
  params: P;
  query: Query;
  apiVersion: string;
  signal: AbortSignal;
  /** Told of a connection the handler takes raw, so shutdown can close it. */
  track?: (socket: Duplex) => void;
}

const mediaTypeOf = (contentType: string): string => (contentType.split(';')[0] ?? '').trim().toLowerCase();

function parseJson<T>(buffer: Buffer, contentType: string | undefined): T | undefined {
  if (buffer.length === 0) return undefined;
  if (mediaTypeOf(contentType ?? '') !== 'application/json') {
    throw invalidArgument(
      `unsupported Content-Type header (${contentType ?? ''}): must be 'application/json'`,
    );
  }
  const text = buffer.toString('utf8');
  if (text.trim() === '') throw invalidArgument('invalid JSON: got EOF while reading request body');
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw invalidArgument(`invalid JSON: ${(err as Error).message}`);
  }
}

export class Context<P> implements RequestContext<P> {
  readonly method: string;
  readonly path: string;
  readonly params: P;
  readonly query: Query;
  readonly apiVersion: string;
  readonly req: IncomingMessage;
  readonly signal: AbortSignal;
  readonly transport: Transport;
  /** Headers the handler set for its reply. */
  readonly replyHeaders: Record<string, string> = {};
  private taken: 'stream' | 'hijack' | undefined;
  private consumed = false;
  private readonly track: (socket: Duplex) => void;
  /** Whether hijacked output is framed (set by hijack()). */
  multiplexed = false;

  constructor(init: ContextInit<P>) {
    this.req = init.req;
    this.method = init.req.method ?? 'GET';
    this.transport = init.transport;
    this.path = init.path;
    this.params = init.params;
    this.query = init.query;
    this.apiVersion = init.apiVersion;
    this.signal = init.signal;
    this.track = init.track ?? (() => undefined);
  }

  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }

  get takenOver(): boolean {
    return this.taken !== undefined;
  }

  /** 'hijack' once the connection is raw: errors can no longer be sent as an HTTP response. */
  get takeover(): 'stream' | 'hijack' | undefined {
    return this.taken;
  }

  header(name: string): string | undefined {
    const value = this.req.headers[name.toLowerCase()];
    return Array.isArray(value) ? value[0] : value;
  }

  setHeader(name: string, value: string): void {
    this.replyHeaders[name] = value;
  }

  private claimBody(): void {
    if (this.consumed) throw new Error('the request body was already read');
    this.consumed = true;
  }

  async body(limit = DEFAULT_BODY_LIMIT): Promise<Buffer> {
    this.claimBody();
    if (this.transport.kind === 'upgrade') {
      if (this.transport.body.length > limit) throw tooLarge(limit);
      return this.transport.body;
    }
    const declared = Number(this.header('content-length') ?? '0');
    if (declared > limit) throw tooLarge(limit);
    const req = this.req;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (chunk: Buffer): void => {
        size += chunk.length;
        if (size <= limit) return void chunks.push(chunk);
        // Stop collecting but let the rest drain: destroying the request would take the
        // connection, and the 413 with it.
        cleanup();
        req.resume();
        reject(tooLarge(limit));
      };
      const onEnd = (): void => {
        cleanup();
        resolve(Buffer.concat(chunks));
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const onClose = (): void =>
        onError(invalidArgument('the client closed the connection before the body was complete'));
      const cleanup = (): void => {
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('close', onClose);
      };
      req.on('data', onData);
      req.once('end', onEnd);
      req.once('error', onError);
      req.once('close', onClose);
    });
  }

  async json<T = unknown>(limit = DEFAULT_BODY_LIMIT): Promise<T | undefined> {
    const buffer = await this.body(limit);
    return parseJson<T>(buffer, this.header('content-type'));
  }

  bodyStream(): Readable {
    this.claimBody();
    return this.transport.kind === 'upgrade' ? Readable.from([this.transport.body]) : this.req;
  }

  private claimResponse(kind: 'stream' | 'hijack'): void {
    if (this.taken !== undefined) throw new Error('the response was already taken over');
    this.taken = kind;
  }

  stream(contentType: string, status = 200): ResponseStream {
    this.claimResponse('stream');
    const res = this.transport.res;
    for (const [name, value] of Object.entries(this.replyHeaders)) res.setHeader(name, value);
    return new ResponseStream(res, status, contentType);
  }

  hijack(options: HijackOptions): HijackedConnection {
    this.claimResponse('hijack');
    this.multiplexed = options.multiplexed;
    const contentType = streamMediaType(this.apiVersion, options.multiplexed);
    const res = this.transport.res;
    const headers: Record<string, string> = {};
    for (const name of res.getHeaderNames()) headers[canonicalHeader(name)] = String(res.getHeader(name));
    for (const [name, value] of Object.entries(this.replyHeaders)) headers[canonicalHeader(name)] = value;
    // The input goes through a pass-through: a consumer that destroys it (for-await does, on its
    // way out) must not take the connection, and with it the output, down.
    const input = new PassThrough();
    if (this.transport.kind === 'upgrade') {
      const socket = this.transport.socket;
      socket.write(hijackResponseHead(true, contentType, headers));
      socket.pipe(input);
      socket.once('close', () => input.end());
      return { input, output: socket };
    }
    // No Upgrade header: the HTTP parser still owns the socket's input, so only output flows.
    const socket = this.req.socket;
    this.track(socket);
    socket.setTimeout(0);
    socket.write(hijackResponseHead(false, contentType, headers));
    input.end();
    return { input, output: socket };
  }
}

const tooLarge = (limit: number): ApiError => new ApiError(413, `request body is larger than ${limit} bytes`);

/** "api-version" -> "Api-Version", the form Go writes header names in. */
export const canonicalHeader = (name: string): string =>
  name
    .split('-')
    .map((part) => (part === '' ? part : part[0]?.toUpperCase() + part.slice(1).toLowerCase()))
    .join('-');
