/**
 * HTTP for the registry client: every request is bounded by an idle timeout (no bytes moving for
 * `timeoutMs` aborts it), transient failures (connection errors, 429, 5xx) are retried a bounded
 * number of times with exponential backoff, and redirects are followed by hand so the
 * Authorization header is dropped when the redirect leaves the registry's host (blob storage).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BerthError, unavailable } from '../../common/errors.js';

export interface TransportOptions {
  /** Abort a request when no bytes moved for this long (default 30 s). */
  timeoutMs?: number;
  /** Retries after the first attempt for transient failures (default 3). */
  retries?: number;
  /** First backoff delay; doubles each retry (default 250 ms). */
  backoffMs?: number;
  /** Cap on one backoff delay (default 8 s). */
  maxBackoffMs?: number;
  /** Redirects followed for one request (default 5). */
  maxRedirects?: number;
  userAgent?: string;
}

/** Body bytes; a function so the body can be produced again for a retry or a redirect. */
export type RequestBody = () => Uint8Array | AsyncIterable<Uint8Array>;

export interface RequestSpec {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Retry transient failures (only for requests that may be repeated; default true). */
  retry?: boolean;
  signal?: AbortSignal;
}

const TRANSIENT_STATUS = new Set([429, 500, 502, 503, 504]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const NOT_TRANSIENT_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ERR_INVALID_URL', 'CERT_HAS_EXPIRED']);

/** Aborts its controller when `touch` was not called for `ms`. */
class IdleTimer {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly controller: AbortController,
  ) {
    this.touch();
  }

  touch(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.controller.abort(unavailable(`no data from the registry for ${this.ms / 1000} s`)),
      this.ms,
    );
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/** A response whose body reads keep the idle timer alive; call one of the body methods or discard. */
export class HttpResponse {
  constructor(
    readonly status: number,
    readonly headers: Headers,
    readonly url: string,
    private readonly body: ReadableStream<Uint8Array> | null,
    private readonly timer: IdleTimer,
    private readonly controller: AbortController,
    /** Stops the timer and detaches from the caller's signal. */
    private readonly release: () => void,
  ) {}

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  async *stream(): AsyncIterable<Uint8Array> {
    try {
      if (!this.body) return;
      for await (const chunk of this.body) {
        this.timer.touch();
        yield chunk;
      }
    } catch (err) {
      throw this.controller.signal.aborted && this.controller.signal.reason instanceof BerthError
        ? this.controller.signal.reason
        : err;
    } finally {
      this.release();
      // Leaving early (an error, a size limit) must release the connection.
      if (!this.controller.signal.aborted) this.controller.abort();
    }
  }

  /** The whole body, refused when larger than `limit` bytes. */
  async buffer(limit: number): Promise<Buffer> {
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of this.stream()) {
      size += chunk.length;
      if (size > limit) throw unavailable(`response from ${this.url} is larger than ${limit} bytes`);
      chunks.push(chunk);
    }
    return Buffer.concat(chunks);
  }

  async text(limit = 1024 * 1024): Promise<string> {
    return (await this.buffer(limit)).toString('utf8');
  }

  async discard(): Promise<void> {
    this.release();
    if (!this.controller.signal.aborted) this.controller.abort();
    await this.body?.cancel().catch(() => undefined);
  }
}

function errorCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 4 && typeof current === 'object' && current !== null; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Connection resets, refused connections, idle timeouts: worth another attempt. */
export function isTransientNetworkError(err: unknown): boolean {
  if (err instanceof BerthError) return err.kind === 'unavailable';
  const code = errorCode(err);
  if (code !== undefined && NOT_TRANSIENT_CODES.has(code)) return false;
  return err instanceof TypeError || code !== undefined;
}

function describeNetworkError(err: unknown): string {
  if (err instanceof BerthError) return err.message;
  const code = errorCode(err);
  const cause = (err as { cause?: { message?: string } }).cause;
  return [err instanceof Error ? err.message : String(err), cause?.message, code]
    .filter((part) => part !== undefined && part !== '')
    .join(': ');
}

function retryAfterMs(headers: Headers): number | undefined {
  const value = headers.get('retry-after');
  if (value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value.trim()) * 1000;
}

export class Transport {
  readonly timeoutMs: number;
  readonly retries: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxRedirects: number;
  private readonly userAgent: string;

  constructor(options: TransportOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retries = options.retries ?? 3;
    this.backoffMs = options.backoffMs ?? 250;
    this.maxBackoffMs = options.maxBackoffMs ?? 8_000;
    this.maxRedirects = options.maxRedirects ?? 5;
    this.userAgent = options.userAgent ?? 'berth';
  }

  /** The delay before retry number `attempt` (0-based). */
  backoff(attempt: number): number {
    return Math.min(this.backoffMs * 2 ** attempt, this.maxBackoffMs);
  }

  /** Send with retries; a transient status that persists is returned as the final response. */
  async send(spec: RequestSpec): Promise<HttpResponse> {
    const attempts = spec.retry === false ? 1 : this.retries + 1;
    for (let attempt = 0; ; attempt++) {
      const last = attempt + 1 >= attempts;
      let response: HttpResponse;
      try {
        response = await this.followRedirects(spec);
      } catch (err) {
        spec.signal?.throwIfAborted();
        if (last || !isTransientNetworkError(err)) {
          throw unavailable(`${spec.method} ${spec.url} failed: ${describeNetworkError(err)}`);
        }
        await sleep(this.backoff(attempt), undefined, { signal: spec.signal });
        continue;
      }
      if (last || !TRANSIENT_STATUS.has(response.status)) return response;
      const delay = Math.min(retryAfterMs(response.headers) ?? this.backoff(attempt), this.maxBackoffMs);
      await response.discard();
      await sleep(delay, undefined, { signal: spec.signal });
    }
  }

  private async followRedirects(spec: RequestSpec): Promise<HttpResponse> {
    let url = spec.url;
    let method = spec.method;
    let body = spec.body;
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...spec.headers };
    const origin = new URL(url).host;
    for (let hop = 0; ; hop++) {
      const response = await this.once(method, url, headers, body, spec.signal);
      const location = response.headers.get('location');
      if (!REDIRECT_STATUS.has(response.status) || location === null) return response;
      await response.discard();
      if (hop >= this.maxRedirects) {
        throw new BerthError(
          'unavailable',
          `${spec.method} ${spec.url}: more than ${this.maxRedirects} redirects`,
        );
      }
      url = new URL(location, url).toString();
      // Blob storage behind a redirect gets its own credentials in the URL, never the registry's.
      if (new URL(url).host !== origin) delete headers.authorization;
      if (
        response.status === 303 ||
        ((response.status === 301 || response.status === 302) && method === 'POST')
      ) {
        method = 'GET';
        body = undefined;
        delete headers['content-type'];
        delete headers['content-length'];
      }
    }
  }

  private async once(
    method: string,
    url: string,
    headers: Record<string, string>,
    body: RequestBody | undefined,
    signal: AbortSignal | undefined,
  ): Promise<HttpResponse> {
    const controller = new AbortController();
    const timer = new IdleTimer(this.timeoutMs, controller);
    const onAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const release = (): void => {
      timer.stop();
      signal?.removeEventListener('abort', onAbort);
    };
    try {
      const init: RequestInit & { duplex?: 'half' } = {
        method,
        headers,
        redirect: 'manual',
        signal: controller.signal,
      };
      if (body) {
        const produced = body();
        if (produced instanceof Uint8Array) {
          init.body = produced;
        } else {
          init.body = touching(produced, timer) as unknown as NonNullable<RequestInit['body']>;
          init.duplex = 'half';
        }
      }
      const response = await fetch(url, init);
      timer.touch();
      return new HttpResponse(
        response.status,
        response.headers,
        url,
        response.body,
        timer,
        controller,
        release,
      );
    } catch (err) {
      release();
      if (controller.signal.aborted && controller.signal.reason instanceof BerthError) {
        throw controller.signal.reason;
      }
      throw err;
    }
  }
}

/** Pass chunks through, keeping the idle timer alive while an upload body is being sent. */
async function* touching(source: AsyncIterable<Uint8Array>, timer: IdleTimer): AsyncIterable<Uint8Array> {
  for await (const chunk of source) {
    timer.touch();
    yield chunk;
  }
}
