/**
 * berth's client of the Docker Engine API: HTTP/1.1 over a unix socket or TCP (optionally TLS),
 * API version negotiated with `/_ping` like the docker CLI, then `/v1.xx/...` paths; JSON helpers
 * that turn `{"message": ...}` error bodies into ApiError; streaming responses returned as they
 * come; hijacked connections (attach, exec start) handed back as a raw duplex socket.
 */
import type { Duplex, Readable } from 'node:stream';
import { API_VERSION, BERTH_VERSION } from '../common/version.js';
import { ApiError, ConnectError } from './errors.js';
import { HttpResponse, Http1Client, type Headers } from './http1.js';
import { cachedServerVersion, rememberServerVersion } from './version-cache.js';

export const DEFAULT_HOST = 'unix:///run/berth/berth.sock';
/** The version docker assumes when a daemon does not announce one. */
const FALLBACK_API_VERSION = '1.24';

export interface TlsFiles {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Verify the daemon's certificate against `ca` (--tlsverify). */
  verify: boolean;
}

export interface ClientOptions {
  host: string;
  tls?: TlsFiles;
  /** A fixed API version (DOCKER_API_VERSION): no negotiation. */
  apiVersion?: string;
  /** Where the versions that daemons on unix sockets announced are remembered (version-cache.ts). */
  versionCacheDir?: string;
}

export type QueryValue = string | number | boolean | string[] | undefined;
export type Query = Record<string, QueryValue>;

export interface RequestOptions {
  query?: Query;
  /** A JSON body. */
  json?: unknown;
  /** A raw body (tar archives, images). */
  body?: Buffer | Readable;
  contentType?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Where to connect, parsed from a Docker-style host string. */
export interface Endpoint {
  socketPath?: string;
  hostname?: string;
  port?: number;
}

/** Parses `unix:///path`, `tcp://host:port` (or `host:port`) as dockerd and the docker CLI do. */
export function parseHost(host: string, tls: boolean): Endpoint {
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    if (socketPath === '') throw new ConnectError(`invalid host "${host}": the socket path is empty`);
    return { socketPath };
  }
  let rest = host;
  if (rest.startsWith('tcp://')) rest = rest.slice('tcp://'.length);
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest)) {
    throw new ConnectError(`invalid host "${host}": berth connects to unix:// and tcp:// hosts only`);
  }
  rest = rest.replace(/\/+$/, '');
  const match = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(rest);
  if (match === null) throw new ConnectError(`invalid host "${host}"`);
  const hostname = (match[1] ?? '').replace(/^\[|\]$/g, '') || '127.0.0.1';
  const port = match[2] !== undefined ? Number(match[2]) : tls ? 2376 : 2375;
  if (!Number.isInteger(port) || port <= 0 || port > 65535)
    throw new ConnectError(`invalid host "${host}": bad port`);
  return { hostname, port };
}

/** Go's url.Values.Encode: keys sorted, values query-escaped (space as '+'). */
export function encodeQuery(query: Query | undefined): string {
  if (!query) return '';
  const parts: string[] = [];
  for (const key of Object.keys(query).sort()) {
    const value = query[key];
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value])
      parts.push(`${queryEscape(key)}=${queryEscape(String(item))}`);
  }
  return parts.length > 0 ? `?${parts.join('&')}` : '';
}

const queryEscape = (value: string): string =>
  encodeURIComponent(value)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');

/** Escapes one path element the way Go's URL.EscapedPath does (slashes and `:@` kept). */
export const pathEscape = (value: string): string =>
  encodeURIComponent(value).replace(/%(2F|3A|40|24|26|2B|2C|3B|3D)/gi, (m) => decodeURIComponent(m));

function compareVersions(a: string, b: string): number {
  const left = a.split('.').map((n) => Number.parseInt(n, 10) || 0);
  const right = b.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const x = left[i] ?? 0;
    const y = right[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export const versionAtLeast = (version: string, minimum: string): boolean =>
  compareVersions(version, minimum) >= 0;

/** What the docker CLI calls "cannot connect", worded for berthd. */
export function cannotConnectMessage(host: string): string {
  return (
    `Cannot connect to the berth daemon at ${host}. Is berthd running? ` +
    'Start it with: sudo berthd (or: systemctl start berthd)'
  );
}

const CONNECT_ERRORS = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'ENOTSOCK',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
]);

export interface HijackedStream {
  /** Paused, holding what came with the 101: listen, then resume() (or pipe it). */
  socket: Duplex;
  /** Content type of the upgraded stream: multiplexed frames or raw bytes. */
  contentType: string;
}

export class ApiClient {
  readonly host: string;
  private readonly endpoint: Endpoint;
  /** Opened on the first request: node:net (and node:tls) are not loaded for `berth --help`. */
  private http?: Promise<Http1Client>;
  private opened?: Http1Client;
  private readonly tls?: TlsFiles;
  private negotiated?: Promise<string>;
  private fixedVersion?: string;
  private readonly versionCacheDir?: string;
  private serverHeaders: Headers = {};

  constructor(options: ClientOptions) {
    this.host = options.host;
    this.tls = options.tls;
    this.endpoint = parseHost(options.host, options.tls !== undefined);
    this.fixedVersion = options.apiVersion;
    this.versionCacheDir = options.versionCacheDir;
  }

  private connection(): Promise<Http1Client> {
    this.http ??= (async () => {
      const { socketPath, hostname = '', port } = this.endpoint;
      let open: () => Duplex;
      if (socketPath !== undefined) {
        const net = await import('node:net');
        open = () => net.connect(socketPath);
      } else if (!this.tls) {
        const net = await import('node:net');
        open = () => net.connect(port ?? 2375, hostname);
      } else {
        const tls = await import('node:tls');
        const { ca, cert, key, verify } = this.tls;
        open = () => tls.connect({ host: hostname, port, ca, cert, key, rejectUnauthorized: verify });
      }
      const hostHeader =
        socketPath !== undefined
          ? 'localhost'
          : `${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`;
      this.opened = new Http1Client(open, hostHeader);
      return this.opened;
    })();
    return this.http;
  }

  /** The API version used for requests: negotiated once with the daemon. */
  version(): Promise<string> {
    if (this.fixedVersion !== undefined) return Promise.resolve(this.fixedVersion);
    this.negotiated ??= this.negotiate();
    return this.negotiated;
  }

  /** docker's negotiation: the daemon's version when older than berth's, 1.24 when it names none. */
  private async negotiate(): Promise<string> {
    const { socketPath } = this.endpoint;
    const dir = this.versionCacheDir;
    const cached = socketPath !== undefined && dir !== undefined;
    let server = cached ? cachedServerVersion(dir, socketPath) : undefined;
    if (server === undefined) {
      server = (await this.ping())['api-version'] ?? '';
      // A daemon that names no version is asked again next time rather than pinned to 1.24.
      if (cached && server !== '') rememberServerVersion(dir, socketPath, server);
    }
    if (server === '') return FALLBACK_API_VERSION;
    return compareVersions(server, API_VERSION) < 0 ? server : API_VERSION;
  }

  /** Headers of the last ping (OSType, Docker-Experimental). */
  get pingHeaders(): Headers {
    return this.serverHeaders;
  }

  /** HEAD /_ping, falling back to GET as the docker CLI does when HEAD is refused. */
  async ping(): Promise<Headers> {
    let res = await this.send('HEAD', '/_ping', {});
    res.resume();
    if (res.statusCode >= 400 && res.headers['api-version'] === undefined) {
      res = await this.send('GET', '/_ping', {});
      res.resume();
    }
    this.serverHeaders = res.headers;
    return res.headers;
  }

  /** A request on the versioned path; statuses of 400 and above become ApiError. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<HttpResponse> {
    const version = await this.version();
    const res = await this.send(method, `/v${version}${path}`, options);
    if (res.statusCode >= 400) throw await errorFrom(res);
    return res;
  }

  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.request(method, path, options);
    const text = await readText(res);
    if (text.trim() === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ConnectError(`the daemon sent a response that is not JSON for ${method} ${path}`);
    }
  }

  /** A request whose response body does not matter. */
  async call(method: string, path: string, options: RequestOptions = {}): Promise<void> {
    const res = await this.request(method, path, options);
    await readText(res);
  }

  /**
   * POST with `Connection: Upgrade` / `Upgrade: tcp`: after the daemon's 101 the socket carries the
   * container's stdio both ways. A daemon that answers 2xx without upgrading streams on the same
   * connection.
   */
  async hijack(path: string, options: RequestOptions = {}): Promise<HijackedStream> {
    const version = await this.version();
    const headers: Record<string, string> = {
      'User-Agent': userAgent(),
      Connection: 'Upgrade',
      Upgrade: 'tcp',
      ...options.headers,
    };
    let body: Buffer | undefined;
    if (options.json !== undefined) {
      body = Buffer.from(JSON.stringify(options.json));
      headers['Content-Type'] = 'application/json';
    }
    const http = await this.connection();
    const result = await http
      .upgrade({ method: 'POST', path: `/v${version}${path}${encodeQuery(options.query)}`, headers, body })
      .catch((err: unknown) => Promise.reject(this.connectError(err)));
    if (result instanceof HttpResponse) throw await errorFrom(result);
    return { socket: result.socket, contentType: result.headers['content-type'] ?? '' };
  }

  /** Closes the daemon connections so the process can exit. */
  close(): void {
    this.opened?.close();
  }

  private async send(method: string, path: string, options: RequestOptions): Promise<HttpResponse> {
    const http = await this.connection();
    const headers: Record<string, string> = { 'User-Agent': userAgent(), ...options.headers };
    let body: Buffer | Readable | undefined;
    if (options.json !== undefined) {
      body = Buffer.from(JSON.stringify(options.json));
      headers['Content-Type'] = 'application/json';
    } else if (options.body !== undefined) {
      body = options.body;
      headers['Content-Type'] = options.contentType ?? 'application/x-tar';
    }
    try {
      return await http.request({
        method,
        path: path + encodeQuery(options.query),
        headers,
        body,
        signal: options.signal,
      });
    } catch (err) {
      throw this.connectError(err);
    }
  }

  private connectError(err: unknown): Error {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECT_ERRORS.has(code)) {
      return new ConnectError(cannotConnectMessage(this.host), err);
    }
    if (code === 'EACCES') {
      return new ConnectError(
        `permission denied while trying to connect to the berth daemon socket at ${this.host}: ` +
          'run berth as root or as a member of the berth group',
        err,
      );
    }
    return err instanceof Error ? err : new Error(String(err));
  }
}

export function userAgent(): string {
  return `berth/${BERTH_VERSION} (linux)`;
}

/**
 * The whole body as text. With events rather than `for await`: a stream's async iterator is costly
 * machinery to set up the first time, and every command reads at least one body.
 */
export function readText(res: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    if (res.errored) return reject(res.errored);
    if (res.readableEnded) return resolve('');
    if (res.destroyed) return reject(prematureClose());
    const parts: Buffer[] = [];
    const onData = (chunk: Buffer | string): number =>
      parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    const onEnd = (): void => {
      settle();
      resolve(Buffer.concat(parts).toString('utf8'));
    };
    const onError = (err: Error): void => {
      settle();
      reject(err);
    };
    const onClose = (): void => {
      settle();
      reject(res.errored ?? prematureClose());
    };
    const settle = (): void => {
      res.off('data', onData);
      res.off('end', onEnd);
      res.off('error', onError);
      res.off('close', onClose);
    };
    res.on('data', onData);
    res.once('end', onEnd);
    res.once('error', onError);
    res.once('close', onClose);
  });
}

/** What `for await` reports for a stream destroyed before its end. */
const prematureClose = (): Error =>
  Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });

/** ApiError from an error response: `{"message": ...}`, or the body as text. */
async function errorFrom(res: HttpResponse): Promise<ApiError> {
  const status = res.statusCode;
  const text = (await readText(res)).trim();
  let message = text;
  try {
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // Not JSON: docker shows the body as it is.
  }
  if (message === '') message = `${status} ${res.statusMessage}`.trim();
  return new ApiError(status, message);
}
