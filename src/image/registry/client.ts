/**
 * Distribution v2 client: one RegistryClient per configuration (credentials, insecure registries,
 * mirrors, limits) and a RepositoryClient per repository on one endpoint, which does the HTTP
 * calls of the spec with authentication.
 */
import { invalidArgument, unavailable } from '../../common/errors.js';
import { sha256Of } from '../../content/digest.js';
import type { SourceStream } from '../../content/store.js';
import type { CredentialProvider } from '../auth/credentials.js';
import { Authorizer, repositoryScope } from './authorizer.js';
import { responseError, UnauthorizedError } from './errors.js';
import { resolveEndpoints, type Endpoint, type HostsConfig } from './hosts.js';
import { MANIFEST_ACCEPT, MANIFEST_SIZE_LIMIT } from './manifest.js';
import { Transport, type HttpResponse, type RequestBody, type TransportOptions } from './transport.js';

export interface RegistryClientOptions extends TransportOptions, HostsConfig {
  credentials?: CredentialProvider;
}

export interface FetchedManifest {
  digest: string;
  /** Content-Type the registry served it with. */
  contentType: string | undefined;
  data: Buffer;
}

export class RegistryClient {
  readonly transport: Transport;
  readonly authorizer: Authorizer;
  private readonly pinged = new Map<string, Promise<void>>();

  constructor(readonly options: RegistryClientOptions = {}) {
    this.transport = new Transport(options);
    this.authorizer = new Authorizer(this.transport, options.credentials);
  }

  endpoints(domain: string, purpose: 'pull' | 'push'): Endpoint[] {
    return resolveEndpoints(domain, this.options, purpose);
  }

  /** `GET /v2/` once per endpoint: checks the API version and learns the auth scheme. */
  ping(endpoint: Endpoint, signal?: AbortSignal): Promise<void> {
    let done = this.pinged.get(endpoint.url);
    if (!done) {
      done = this.doPing(endpoint, signal);
      this.pinged.set(endpoint.url, done);
      done.catch(() => this.pinged.delete(endpoint.url));
    }
    return done;
  }

  private async doPing(endpoint: Endpoint, signal?: AbortSignal): Promise<void> {
    const spec = { method: 'GET', url: `${endpoint.url}/v2/`, ...(signal ? { signal } : {}) };
    const response = await this.transport.send(spec);
    if (response.status === 200 || response.status === 401) {
      this.authorizer.learn(endpoint, response.status, response.headers);
      await response.discard();
      return;
    }
    throw await responseError(response, `registry ${endpoint.url} does not serve the v2 API`);
  }

  /** A client for `path` on `endpoint`; `actions` is what the token must allow (`pull`, `pull,push`). */
  repository(endpoint: Endpoint, path: string, actions: 'pull' | 'pull,push'): RepositoryClient {
    return new RepositoryClient(this, endpoint, path, actions);
  }
}

export interface RepoRequest {
  method: string;
  /** Relative to `/v2/<name>/`, or an absolute URL (an upload location). */
  path: string;
  headers?: Record<string, string>;
  body?: RequestBody;
  retry?: boolean;
  /** Further scopes the token needs, e.g. pull access to a repository a blob is mounted from. */
  extraScopes?: string[];
  signal?: AbortSignal;
}

/** Content-Range of a 206: `bytes <start>-<end>/<total>`. */
function rangeStart(header: string | null): number | undefined {
  const match = header === null ? null : /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(header.trim());
  return match ? Number(match[1]) : undefined;
}

export class RepositoryClient {
  private readonly scopes: string[];

  constructor(
    readonly registry: RegistryClient,
    readonly endpoint: Endpoint,
    readonly path: string,
    actions: string,
  ) {
    this.scopes = [repositoryScope(path, actions)];
  }

  /** Resolve an upload Location (relative or absolute) against the endpoint. */
  resolve(location: string): string {
    return new URL(location, `${this.endpoint.url}/v2/${this.path}/`).toString();
  }

  /**
   * One request with authentication. A 401 teaches the authorizer (a scheme, a wider scope) and
   * the request is sent once more; a second 401 is the caller's to report.
   */
  async request(request: RepoRequest): Promise<HttpResponse> {
    await this.registry.ping(this.endpoint, request.signal);
    let scopes = [...this.scopes, ...(request.extraScopes ?? [])];
    const url = /^https?:\/\//.test(request.path)
      ? request.path
      : `${this.endpoint.url}/v2/${this.path}/${request.path}`;
    for (let attempt = 0; ; attempt++) {
      const authorization = await this.registry.authorizer.header(this.endpoint, scopes);
      const headers = { ...request.headers, ...(authorization ? { authorization } : {}) };
      const response = await this.registry.transport.send({
        method: request.method,
        url,
        headers,
        ...(request.body ? { body: request.body } : {}),
        ...(request.retry !== undefined ? { retry: request.retry } : {}),
        ...(request.signal ? { signal: request.signal } : {}),
      });
      if (response.status !== 401 || attempt >= 1) return response;
      const before = this.registry.authorizer.known(this.endpoint);
      const after = this.registry.authorizer.learn(this.endpoint, 401, response.headers);
      const wanted = this.registry.authorizer.challengedScopes(response.headers);
      const widened = wanted.filter((scope) => !scopes.includes(scope));
      scopes = [...scopes, ...widened];
      // Without credentials a second anonymous attempt only helps if the scheme or scope changed.
      if (before?.scheme === after.scheme && widened.length === 0 && authorization === undefined)
        return response;
      this.registry.authorizer.invalidate(this.endpoint);
      await response.discard();
    }
  }

  private async failed(response: HttpResponse, what: string): Promise<Error> {
    const err = await responseError(response, what);
    if (err instanceof UnauthorizedError && response.status === 401) {
      return new UnauthorizedError(
        `${err.message}; the repository may not exist or may require 'docker login'`,
      );
    }
    return err;
  }

  /** GET a manifest by tag or digest; the digest is computed here and checked against the registry's. */
  async getManifest(reference: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const response = await this.request({
      method: 'GET',
      path: `manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
      ...(signal ? { signal } : {}),
    });
    const what = `manifest for ${this.endpoint.registry}/${this.path}:${reference}`;
    if (!response.ok) throw await this.failed(response, what);
    const data = await response.buffer(MANIFEST_SIZE_LIMIT);
    const digest = sha256Of(data);
    if (reference.includes(':') && reference !== digest) {
      throw invalidArgument(`${what}: the registry sent content with digest ${digest}`);
    }
    const served = response.headers.get('docker-content-digest');
    if (served !== null && served.startsWith('sha256:') && served !== digest) {
      throw invalidArgument(`${what}: the registry says ${served} but the content has digest ${digest}`);
    }
    return { digest, contentType: response.headers.get('content-type') ?? undefined, data };
  }

  /** HEAD a manifest; its digest, or undefined when absent. */
  async manifestDigest(reference: string): Promise<string | undefined> {
    const response = await this.request({
      method: 'HEAD',
      path: `manifests/${reference}`,
      headers: { accept: MANIFEST_ACCEPT },
    });
    await response.discard();
    if (response.status === 404) return undefined;
    if (!response.ok) throw await this.failed(response, `manifest ${this.path}:${reference}`);
    return response.headers.get('docker-content-digest') ?? undefined;
  }

  /** HEAD a blob: its size, or undefined when the repository does not have it. */
  async blobSize(digest: string, signal?: AbortSignal): Promise<number | undefined> {
    const response = await this.request({
      method: 'HEAD',
      path: `blobs/${digest}`,
      ...(signal ? { signal } : {}),
    });
    await response.discard();
    if (response.status === 404) return undefined;
    if (!response.ok) throw await this.failed(response, `blob ${digest} in ${this.path}`);
    return Number(response.headers.get('content-length') ?? NaN);
  }

  /** GET a blob from `offset` (a Range request when resuming); for the content store's ingest. */
  async openBlob(digest: string, offset: number, signal?: AbortSignal): Promise<SourceStream> {
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    let response = await this.request({
      method: 'GET',
      path: `blobs/${digest}`,
      headers,
      ...(signal ? { signal } : {}),
    });
    if (response.status === 416 && offset > 0) {
      // The registry will not serve the range: start over.
      await response.discard();
      response = await this.request({
        method: 'GET',
        path: `blobs/${digest}`,
        ...(signal ? { signal } : {}),
      });
    }
    const what = `blob ${digest} of ${this.endpoint.registry}/${this.path}`;
    if (response.status === 206) {
      const start = rangeStart(response.headers.get('content-range'));
      if (start === undefined) {
        await response.discard();
        throw unavailable(`${what}: partial response without a valid Content-Range`);
      }
      return { offset: start, stream: response.stream() };
    }
    if (response.status === 200) return { offset: 0, stream: response.stream() };
    throw await this.failed(response, what);
  }

  /**
   * Ask the registry to mount `digest` from `from` (same registry) into this repository.
   * Returns true when mounted; otherwise the upload session the registry opened instead.
   */
  async mountBlob(digest: string, from: string): Promise<true | { location: string }> {
    const response = await this.request({
      method: 'POST',
      path: `blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
      extraScopes: [repositoryScope(from, 'pull')],
      retry: false,
    });
    if (response.status === 201) {
      await response.discard();
      return true;
    }
    return { location: await this.uploadLocation(response, `mount of ${digest} from ${from}`) };
  }

  /** Start an upload session: `POST /v2/<name>/blobs/uploads/`. */
  async startUpload(): Promise<string> {
    const response = await this.request({ method: 'POST', path: 'blobs/uploads/', retry: false });
    return this.uploadLocation(response, `blob upload to ${this.path}`);
  }

  private async uploadLocation(response: HttpResponse, what: string): Promise<string> {
    const location = response.headers.get('location');
    if (response.status !== 202 || location === null) {
      if (response.ok) {
        await response.discard();
        throw unavailable(`${what}: the registry answered ${response.status} without an upload location`);
      }
      throw await this.failed(response, what);
    }
    await response.discard();
    return this.resolve(location);
  }

  /** PATCH one chunk at `start` of an upload; returns the next location. */
  async uploadChunk(location: string, start: number, chunk: Buffer): Promise<string> {
    const response = await this.request({
      method: 'PATCH',
      path: location,
      headers: {
        'content-type': 'application/octet-stream',
        'content-range': `${start}-${start + chunk.length - 1}`,
        'content-length': String(chunk.length),
      },
      body: () => chunk,
      retry: false,
    });
    return this.uploadLocation(response, `chunk at ${start} of an upload to ${this.path}`);
  }

  /** Finish an upload with `PUT <location>?digest=`, optionally carrying the (last) bytes. */
  async completeUpload(
    location: string,
    digest: string,
    body?: { size: number; data: RequestBody },
  ): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const response = await this.request({
      method: 'PUT',
      path: url.toString(),
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(body?.size ?? 0),
      },
      body: body?.data ?? (() => Buffer.alloc(0)),
      retry: false,
    });
    if (response.status !== 201 && response.status !== 204) {
      throw await this.failed(response, `upload of blob ${digest} to ${this.path}`);
    }
    await response.discard();
  }

  /** PUT a manifest under a tag or digest; returns the digest the registry stored it under. */
  async putManifest(reference: string, mediaType: string, data: Buffer): Promise<string> {
    const response = await this.request({
      method: 'PUT',
      path: `manifests/${reference}`,
      headers: { 'content-type': mediaType, 'content-length': String(data.length) },
      body: () => data,
    });
    const what = `manifest ${this.endpoint.registry}/${this.path}:${reference}`;
    if (response.status !== 201 && response.status !== 200 && response.status !== 202) {
      throw await this.failed(response, `push of ${what}`);
    }
    await response.discard();
    const digest = sha256Of(data);
    const stored = response.headers.get('docker-content-digest');
    if (stored !== null && stored !== digest) {
      throw unavailable(`push of ${what}: the registry stored digest ${stored}, expected ${digest}`);
    }
    return digest;
  }
}
