/**
 * The little HTTP/1.1 that berth speaks to one daemon: requests with a buffered or streamed
 * (chunked) body, responses framed by Content-Length, chunks or the end of the connection,
 * kept-alive connections, and the upgrade of attach and exec. node:http does all this with far
 * more machinery: its first request costs ~10 ms of CPU, a tenth of a whole `berth run`.
 */
import type { Duplex, Readable as ReadableType } from 'node:stream';
import { Readable } from 'node:stream';

/** Header names in lower case; repeated headers joined with ", ". */
export type Headers = Record<string, string>;

export interface HttpRequest {
  method: string;
  /** Path and query, already escaped. */
  path: string;
  headers: Record<string, string>;
  body?: Buffer | ReadableType;
  signal?: AbortSignal;
}

/** A response: its status and headers, and its body as a stream. */
export class HttpResponse extends Readable {
  constructor(
    readonly statusCode: number,
    readonly statusMessage: string,
    readonly headers: Headers,
    private readonly resumeSource: () => void,
  ) {
    super();
  }

  override _read(): void {
    this.resumeSource();
  }
}

/** A response that switched protocols (101), or a daemon streaming on the same connection. */
export interface Upgraded {
  statusCode: number;
  headers: Headers;
  socket: Duplex;
}

const MAX_HEAD_BYTES = 64 * 1024;
const CRLF = Buffer.from('\r\n');

/** What an error before the response head is called (node:http's wording). */
function hangUp(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
}

function parseHead(text: string): { statusCode: number; statusMessage: string; headers: Headers } {
  const [statusLine = '', ...lines] = text.split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine);
  if (!match) throw new Error(`the daemon sent a malformed HTTP status line: ${JSON.stringify(statusLine)}`);
  const headers: Headers = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`the daemon sent a malformed HTTP header: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  return { statusCode: Number(match[1]), statusMessage: match[2] ?? '', headers };
}

/** Decodes a chunked body; push() gets the data, and true once the last chunk and trailers came. */
class ChunkDecoder {
  private state: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  private remaining = 0;
  private pending: Buffer = Buffer.alloc(0);
  done = false;

  /** Feeds bytes; returns the body bytes in them and any bytes after the body's end. */
  feed(input: Buffer): { data: Buffer[]; rest: Buffer } {
    let buf: Buffer = this.pending.length > 0 ? Buffer.concat([this.pending, input]) : input;
    this.pending = Buffer.alloc(0);
    const data: Buffer[] = [];
    while (!this.done) {
      if (this.state === 'data') {
        if (buf.length === 0) break;
        const take = Math.min(this.remaining, buf.length);
        data.push(buf.subarray(0, take));
        buf = buf.subarray(take);
        this.remaining -= take;
        if (this.remaining === 0) this.state = 'data-end';
        continue;
      }
      const eol = buf.indexOf(CRLF);
      if (eol < 0) {
        if (buf.length > 4096) throw new Error('the daemon sent a malformed chunked body');
        this.pending = buf;
        return { data, rest: Buffer.alloc(0) };
      }
      const line = buf.subarray(0, eol).toString('latin1');
      buf = buf.subarray(eol + 2);
      if (this.state === 'data-end') {
        if (line !== '') throw new Error('the daemon sent a malformed chunked body');
        this.state = 'size';
      } else if (this.state === 'size') {
        const size = Number.parseInt(line.split(';')[0] ?? '', 16);
        if (!Number.isInteger(size) || size < 0) throw new Error('the daemon sent a malformed chunk size');
        if (size === 0) this.state = 'trailer';
        else {
          this.remaining = size;
          this.state = 'data';
        }
      } else if (line === '') this.done = true;
    }
    return { data, rest: buf };
  }
}

/** One daemon: kept-alive connections, opened by `open` (a unix, TCP or TLS socket). */
export class Http1Client {
  private readonly idle: Duplex[] = [];
  private readonly sockets = new Set<Duplex>();

  constructor(
    private readonly open: () => Duplex,
    /** The Host header. */
    private readonly host: string,
  ) {}

  private connect(): Duplex {
    const socket = this.open();
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      const at = this.idle.indexOf(socket);
      if (at >= 0) this.idle.splice(at, 1);
    });
    return socket;
  }

  private release(socket: Duplex): void {
    for (const event of ['data', 'end', 'error', 'close'] as const) socket.removeAllListeners(event);
    socket.once('close', () => {
      this.sockets.delete(socket);
      const at = this.idle.indexOf(socket);
      if (at >= 0) this.idle.splice(at, 1);
    });
    // Whatever an idle connection says, or its failure, ends it.
    for (const event of ['data', 'end', 'error'] as const) socket.on(event, () => socket.destroy());
    this.idle.push(socket);
  }

  private takeIdle(): Duplex | undefined {
    const socket = this.idle.pop();
    for (const event of ['data', 'end', 'error'] as const) socket?.removeAllListeners(event);
    return socket;
  }

  /** Writes the request; resolves when a streamed body has been sent in full. */
  private async writeRequest(socket: Duplex, request: HttpRequest): Promise<void> {
    const headers: Record<string, string> = { Host: this.host, ...request.headers };
    const { body } = request;
    if (Buffer.isBuffer(body)) headers['Content-Length'] = String(body.length);
    else if (body !== undefined) headers['Transfer-Encoding'] = 'chunked';
    else if (!['GET', 'HEAD', 'DELETE', 'OPTIONS'].includes(request.method)) headers['Content-Length'] = '0';
    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    head += '\r\n';
    if (body === undefined || Buffer.isBuffer(body)) {
      socket.write(body && body.length > 0 ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : head);
      return;
    }
    socket.write(head);
    for await (const chunk of body) {
      const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      if (socket.destroyed) return;
      if (data.length === 0) continue;
      if (!socket.write(Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, CRLF])))
        await new Promise((resolve) => socket.once('drain', resolve));
    }
    socket.write('0\r\n\r\n');
  }

  /** Sends a request; resolves at the response head, the body streaming from the result. */
  request(request: HttpRequest): Promise<HttpResponse> {
    return this.exchange(request, false) as Promise<HttpResponse>;
  }

  /**
   * Sends a request asking for an upgrade: a 101 (or a 2xx that streams on) hands over the
   * connection; any other status is an HttpResponse to read the error from.
   */
  upgrade(request: HttpRequest): Promise<Upgraded | HttpResponse> {
    return this.exchange(request, true);
  }

  private exchange(request: HttpRequest, upgrade: boolean): Promise<HttpResponse | Upgraded> {
    // Upgraded connections, and those that carried a streamed body (which may still be going out
    // when the answer comes), are not reused.
    const streamed = request.body !== undefined && !Buffer.isBuffer(request.body);
    const socket = (!upgrade && this.takeIdle()) || this.connect();
    return new Promise((resolve, reject) => {
      let head: Buffer = Buffer.alloc(0);
      let response: HttpResponse | undefined;
      /** Takes body bytes once the head is parsed. */
      let onBody: ((input: Buffer) => void) | undefined;
      /** A body that only the end of the connection ends. */
      let untilEnd = false;
      let settled = false;
      const fail = (err: Error): void => {
        socket.destroy();
        if (!response) reject(err);
        else if (!response.readableEnded) response.destroy(err);
      };
      const onAbort = (): void => fail(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
      const done = (reusable: boolean): void => {
        settled = true;
        request.signal?.removeEventListener('abort', onAbort);
        response?.push(null);
        if (reusable && !streamed && !upgrade && !socket.destroyed) this.release(socket);
        else socket.destroy();
      };
      const unlisten = (): void => {
        socket.removeListener('data', onData);
        socket.removeListener('end', onEnd);
        socket.removeListener('close', onClose);
        socket.removeListener('error', fail);
      };
      const onHead = (input: Buffer): void => {
        head = head.length > 0 ? Buffer.concat([head, input]) : input;
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > MAX_HEAD_BYTES) throw new Error('the daemon sent an HTTP head that is too large');
          return;
        }
        const parsed = parseHead(head.subarray(0, end).toString('latin1'));
        const rest = head.subarray(end + 4);
        head = Buffer.alloc(0);
        if (parsed.statusCode < 200 && parsed.statusCode !== 101) {
          // An interim answer (100 Continue): the real one follows.
          if (rest.length > 0) onHead(rest);
          return;
        }
        if (upgrade && (parsed.statusCode === 101 || (parsed.statusCode >= 200 && parsed.statusCode < 300))) {
          settled = true;
          request.signal?.removeEventListener('abort', onAbort);
          unlisten();
          socket.pause();
          if (rest.length > 0) socket.unshift(rest);
          resolve({ statusCode: parsed.statusCode, headers: parsed.headers, socket });
          return;
        }
        const current = new HttpResponse(parsed.statusCode, parsed.statusMessage, parsed.headers, () =>
          socket.resume(),
        );
        response = current;
        const keepAlive = !/\bclose\b/i.test(parsed.headers.connection ?? '');
        const push = (part: Buffer): void => {
          if (part.length > 0 && !current.push(part)) socket.pause();
        };
        const length = parsed.headers['content-length'];
        resolve(current);
        if (request.method === 'HEAD' || parsed.statusCode === 204 || parsed.statusCode === 304) {
          done(keepAlive && rest.length === 0);
        } else if (/\bchunked\b/i.test(parsed.headers['transfer-encoding'] ?? '')) {
          const decoder = new ChunkDecoder();
          onBody = (bytes) => {
            const { data, rest: after } = decoder.feed(bytes);
            data.forEach(push);
            if (decoder.done) done(keepAlive && after.length === 0);
          };
        } else if (length !== undefined) {
          let remaining = Number(length);
          if (!Number.isSafeInteger(remaining) || remaining < 0)
            throw new Error(`the daemon sent a bad Content-Length: ${length}`);
          onBody = (bytes) => {
            const part = bytes.subarray(0, remaining);
            remaining -= part.length;
            push(part);
            if (remaining === 0) done(keepAlive && bytes.length === part.length);
          };
          if (remaining === 0) done(keepAlive && rest.length === 0);
        } else {
          untilEnd = true;
          onBody = push;
        }
        if (!settled && rest.length > 0) onBody?.(rest);
      };
      const onData = (input: Buffer): void => {
        try {
          if (onBody) onBody(input);
          else onHead(input);
        } catch (err) {
          fail(err as Error);
        }
      };
      const onEnd = (): void => {
        if (untilEnd) done(false);
        else if (!settled) fail(hangUp());
      };
      const onClose = (): void => {
        if (!settled) fail(hangUp());
      };
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('close', onClose);
      socket.on('error', fail);
      if (request.signal?.aborted) {
        onAbort();
        return;
      }
      request.signal?.addEventListener('abort', onAbort, { once: true });
      this.writeRequest(socket, request).catch((err: unknown) =>
        fail(err instanceof Error ? err : new Error(String(err))),
      );
    });
  }

  /** Closes every connection: kept-alive ones and those still in use. */
  close(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.idle.length = 0;
  }
}
