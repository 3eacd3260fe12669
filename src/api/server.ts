/**
 * The HTTP side of the API: one handler for every listener (unix, TCP+TLS, socket activation).
 * It sets Docker's response headers, strips and checks the /v1.xx version prefix, routes, reads
 * bodies with a bound, turns handler results into responses and errors into `{"message": ...}`
 * with the status of their kind. Requests that ask for a connection upgrade (attach, exec start)
 * arrive on node's 'upgrade' event and get the same treatment over the raw socket.
 */
import { ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { API_VERSION, BERTH_VERSION } from '../common/version.js';
import { describeError, invalidArgument } from '../common/errors.js';
import { Context, type Transport } from './context.js';
import { ApiError, statusOf } from './errors.js';
import { Query } from './query.js';
import { Reply, type HandlerResult, type Router } from './router.js';
import { encodeFrame, StdStream } from './streams.js';
import { negotiateVersion, splitVersionedPath } from './versions.js';

export interface ApiLogger {
  debug(message: string): void;
  error(message: string): void;
}

export interface ApiServerOptions {
  router: Router;
  logger?: ApiLogger;
  experimental?: boolean;
  /** Bound of the body of an upgrade request, which is read before routing (default 1 MiB). */
  upgradeBodyLimit?: number;
}

const silent: ApiLogger = { debug: () => undefined, error: () => undefined };

/**
 * The reason a request's signal carries. Made once: abort() without one builds a DOMException
 * with a stack for every connection that closes (~0.4 ms of berthd's thread per container run).
 */
const CONNECTION_GONE = new DOMException('the connection closed or berthd is shutting down', 'AbortError');

/** Headers on every response, as dockerd's middlewares set them. */
export function commonHeaders(experimental: boolean): Record<string, string> {
  return {
    'Api-Version': API_VERSION,
    'Docker-Experimental': String(experimental),
    Ostype: 'linux',
    Server: `Berth/${BERTH_VERSION} (linux)`,
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

function sendResult(res: ServerResponse, result: HandlerResult): void {
  if (result === undefined) {
    res.statusCode = 204;
    res.end();
  } else if (result instanceof Reply) {
    for (const [name, value] of Object.entries(result.headers)) res.setHeader(name, value);
    if (result.body === undefined) {
      res.statusCode = result.status;
      res.end();
    } else if (Buffer.isBuffer(result.body)) {
      res.statusCode = result.status;
      res.setHeader('Content-Length', result.body.length);
      res.end(result.body);
    } else {
      sendJson(res, result.status, result.body);
    }
  } else {
    sendJson(res, 200, result);
  }
}

/** Reads exactly `length` body bytes of an upgrade request; what follows is the client's stream. */
function readAhead(socket: Duplex, head: Buffer, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffered = head;
    const finish = (): void => {
      cleanup();
      const rest = buffered.subarray(length);
      if (rest.length > 0) socket.unshift(rest);
      resolve(buffered.subarray(0, length));
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= length) {
        socket.pause();
        finish();
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(invalidArgument('the connection ended before the request body was complete'));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    if (buffered.length >= length) return finish();
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
  });
}

export class ApiServer {
  private readonly router: Router;
  private readonly logger: ApiLogger;
  private readonly headers: Record<string, string>;
  private readonly upgradeBodyLimit: number;
  private readonly shutdown = new AbortController();
  /** Upgraded and hijacked connections: node's server no longer tracks them. */
  private readonly rawSockets = new Set<Duplex>();

  constructor(options: ApiServerOptions) {
    this.router = options.router;
    this.logger = options.logger ?? silent;
    this.headers = commonHeaders(options.experimental ?? false);
    this.upgradeBodyLimit = options.upgradeBodyLimit ?? 1024 * 1024;
  }

  /** Serve this server's requests, upgrade requests included. */
  attach(server: Server): void {
    server.on('request', this.handleRequest);
    server.on('upgrade', this.handleUpgrade);
  }

  readonly handleRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void this.dispatch(req, { kind: 'http', res });
  };

  readonly handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // The socket is ours now: without a listener a reset connection would crash the daemon.
    socket.on('error', () => undefined);
    // The client ends its input (stdin EOF) by half-closing; the output must go on.
    socket.allowHalfOpen = true;
    this.track(socket);
    const res = new ServerResponse(req);
    res.assignSocket(socket as never);
    res.shouldKeepAlive = false;
    res.on('finish', () => socket.end());
    const refuse = (err: unknown): void => {
      this.applyHeaders(res);
      res.setHeader('Connection', 'close');
      sendJson(res, statusOf(err), { message: describeError(err) });
    };
    if (req.headers['transfer-encoding'] !== undefined) {
      refuse(invalidArgument('an upgrade request must send its body with Content-Length'));
      return;
    }
    const length = Number(req.headers['content-length'] ?? '0');
    if (!Number.isSafeInteger(length) || length < 0) {
      refuse(invalidArgument('invalid Content-Length'));
      return;
    }
    if (length > this.upgradeBodyLimit) {
      refuse(new ApiError(413, `request body is larger than ${this.upgradeBodyLimit} bytes`));
      return;
    }
    readAhead(socket, head, length).then(
      (body) => this.dispatch(req, { kind: 'upgrade', res, socket, body }),
      () => socket.destroy(),
    );
  };

  /** Ends every long-lived stream and raw connection (daemon shutdown). */
  close(): void {
    this.shutdown.abort();
    for (const socket of this.rawSockets) socket.destroy();
  }

  private track(socket: Duplex): void {
    this.rawSockets.add(socket);
    socket.once('close', () => this.rawSockets.delete(socket));
  }

  private applyHeaders(res: ServerResponse): void {
    for (const [name, value] of Object.entries(this.headers)) res.setHeader(name, value);
  }

  private async dispatch(req: IncomingMessage, transport: Transport): Promise<void> {
    const res = transport.res;
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const rawPath = queryAt < 0 ? url : url.slice(0, queryAt);
    this.logger.debug(`Calling ${method} ${rawPath}`);
    this.applyHeaders(res);
    let ctx: Context<Record<string, string>> | undefined;
    try {
      const { version, path } = splitVersionedPath(rawPath);
      const apiVersion = negotiateVersion(version);
      const match = this.router.match(method, path);
      if (match === undefined) throw new ApiError(404, 'page not found');
      // Aborted when the client goes away or the daemon shuts down.
      const controller = new AbortController();
      const abort = (): void => controller.abort(CONNECTION_GONE);
      if (this.shutdown.signal.aborted) abort();
      else this.shutdown.signal.addEventListener('abort', abort, { once: true });
      const connection = transport.kind === 'upgrade' ? transport.socket : res;
      connection.once('close', () => {
        this.shutdown.signal.removeEventListener('abort', abort);
        abort();
      });
      ctx = new Context({
        req,
        transport,
        path,
        params: match.params,
        query: new Query(new URLSearchParams(queryAt < 0 ? '' : url.slice(queryAt + 1))),
        apiVersion,
        signal: controller.signal,
        track: (socket) => this.track(socket),
      });
      const result = await match.route.handler(ctx);
      if (ctx.takenOver) return;
      for (const [name, value] of Object.entries(ctx.replyHeaders)) res.setHeader(name, value);
      sendResult(res, result);
    } catch (err) {
      this.fail(req, res, ctx, err);
    }
  }

  private fail(
    req: IncomingMessage,
    res: ServerResponse,
    ctx: Context<Record<string, string>> | undefined,
    err: unknown,
  ): void {
    const status = statusOf(err);
    const where = `${req.method ?? 'GET'} ${req.url ?? '/'}`;
    if (status >= 500) this.logger.error(`Handler for ${where} returned error: ${describeError(err)}`);
    else this.logger.debug(`Handler for ${where} returned error: ${describeError(err)}`);
    if (ctx?.takeover === 'hijack') {
      // The connection is raw by now: the error goes into the stream, as dockerd does.
      const socket = ctx.transport.kind === 'upgrade' ? ctx.transport.socket : req.socket;
      const message = describeError(err);
      socket.end(ctx.multiplexed ? encodeFrame(StdStream.Systemerr, message) : `${message}\r\n`);
      return;
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    if (status === 413) res.setHeader('Connection', 'close');
    sendJson(res, status, { message: describeError(err) });
  }
}
