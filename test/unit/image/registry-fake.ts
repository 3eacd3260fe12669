/**
 * A small distribution-v2 registry on 127.0.0.1 (node:http) for the registry client's unit tests:
 * manifests and blobs per repository, uploads (monolithic, chunked, mounts), optional basic or
 * bearer auth with its own token endpoint, a request log, and a hook to misbehave on purpose.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { TestContext } from 'node:test';

export interface LoggedRequest {
  method: string;
  url: string;
  authorization: string | undefined;
  range: string | undefined;
  contentRange: string | undefined;
  contentType: string | undefined;
}

export interface FakeRegistryOptions {
  auth?: 'none' | 'basic' | 'bearer';
  /** Which field the token endpoint answers with. */
  tokenField?: 'token' | 'access_token';
  users?: Record<string, string>;
}

/** Return true when the hook answered the request itself. */
export type Hook = (
  request: IncomingMessage,
  response: ServerResponse,
  body: Buffer,
) => boolean | Promise<boolean>;

const digestOf = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export class FakeRegistry {
  server!: Server;
  host = '';
  url = '';
  readonly log: LoggedRequest[] = [];
  readonly tokenRequests: URLSearchParams[] = [];
  readonly blobs = new Map<string, Map<string, Buffer>>();
  readonly manifests = new Map<string, Map<string, { contentType: string; data: Buffer }>>();
  readonly uploads = new Map<string, { repo: string; data: Buffer }>();
  hook: Hook | undefined;
  private tokens = new Set<string>();

  constructor(readonly options: FakeRegistryOptions = {}) {}

  static async start(t: TestContext, options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
    const registry = new FakeRegistry(options);
    registry.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        registry.handle(request, response, Buffer.concat(chunks)).catch((err: Error) => {
          response.writeHead(500);
          response.end(err.message);
        });
      });
    });
    await new Promise<void>((resolve) => registry.server.listen(0, '127.0.0.1', resolve));
    const address = registry.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    registry.host = `127.0.0.1:${port}`;
    registry.url = `http://${registry.host}`;
    t.after(
      () =>
        new Promise<void>((resolve) => {
          registry.server.close(() => resolve());
          registry.server.closeAllConnections();
        }),
    );
    return registry;
  }

  addBlob(repo: string, data: Buffer): string {
    const digest = digestOf(data);
    if (!this.blobs.has(repo)) this.blobs.set(repo, new Map());
    this.blobs.get(repo)?.set(digest, data);
    return digest;
  }

  addManifest(repo: string, reference: string, contentType: string, data: Buffer): string {
    if (!this.manifests.has(repo)) this.manifests.set(repo, new Map());
    const digest = digestOf(data);
    this.manifests.get(repo)?.set(reference, { contentType, data });
    this.manifests.get(repo)?.set(digest, { contentType, data });
    return digest;
  }

  requests(method: string, pattern: RegExp): LoggedRequest[] {
    return this.log.filter((r) => r.method === method && pattern.test(r.url));
  }

  private authorized(request: IncomingMessage): boolean {
    const header = request.headers.authorization;
    if (this.options.auth === 'basic') {
      if (!header?.startsWith('Basic ')) return false;
      const [user, ...rest] = Buffer.from(header.slice(6), 'base64').toString().split(':');
      return user !== undefined && this.options.users?.[user] === rest.join(':');
    }
    if (this.options.auth === 'bearer')
      return header !== undefined && this.tokens.has(header.slice('Bearer '.length));
    return true;
  }

  private challenge(response: ServerResponse, scope?: string): void {
    const value =
      this.options.auth === 'basic'
        ? 'Basic realm="fake"'
        : `Bearer realm="${this.url}/token",service="fake-registry"${scope ? `,scope="${scope}"` : ''}`;
    response.writeHead(401, { 'www-authenticate': value, 'content-type': 'application/json' });
    response.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
  }

  private notFound(response: ServerResponse, code: string): void {
    response.writeHead(404, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ errors: [{ code, message: code.toLowerCase().replace(/_/g, ' ') }] }));
  }

  private async handle(request: IncomingMessage, response: ServerResponse, body: Buffer): Promise<void> {
    const url = new URL(request.url ?? '/', this.url);
    this.log.push({
      method: request.method ?? '',
      url: url.pathname + url.search,
      authorization: request.headers.authorization,
      range: request.headers.range,
      contentRange: request.headers['content-range'],
      contentType: request.headers['content-type'],
    });
    if (this.hook && (await this.hook(request, response, body))) return;

    if (url.pathname === '/token') {
      // OAuth (refresh token) requests are POSTed forms; the rest are GETs with query parameters.
      const params = request.method === 'POST' ? new URLSearchParams(body.toString()) : url.searchParams;
      this.tokenRequests.push(params);
      const header = request.headers.authorization;
      if (request.method === 'POST' && params.get('refresh_token') !== 'good-refresh') {
        response.writeHead(401, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ details: 'bad refresh token' }));
        return;
      }
      if (header !== undefined) {
        const [user, ...rest] = Buffer.from(header.replace(/^Basic /, ''), 'base64')
          .toString()
          .split(':');
        if (user === undefined || this.options.users?.[user] !== rest.join(':')) {
          response.writeHead(401, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ details: 'bad credentials' }));
          return;
        }
      }
      const token = randomBytes(8).toString('hex');
      this.tokens.add(token);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ [this.options.tokenField ?? 'token']: token, expires_in: 300 }));
      return;
    }
    if (url.pathname === '/v2/') {
      if (!this.authorized(request)) return this.challenge(response);
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{}');
      return;
    }
    const match = /^\/v2\/(.+)\/(manifests|blobs)\/(.+)$/.exec(url.pathname);
    if (!match) return this.notFound(response, 'NAME_UNKNOWN');
    const [, repo, kind, rest] = match as unknown as [string, string, string, string];
    if (!this.authorized(request)) return this.challenge(response, `repository:${repo}:pull`);

    if (kind === 'manifests') {
      if (request.method === 'PUT') {
        const digest = this.addManifest(repo, rest, request.headers['content-type'] ?? '', body);
        response.writeHead(201, {
          'docker-content-digest': digest,
          location: `/v2/${repo}/manifests/${digest}`,
        });
        response.end();
        return;
      }
      const found = this.manifests.get(repo)?.get(rest);
      if (!found) return this.notFound(response, 'MANIFEST_UNKNOWN');
      response.writeHead(200, {
        'content-type': found.contentType,
        'content-length': found.data.length,
        'docker-content-digest': digestOf(found.data),
      });
      response.end(request.method === 'HEAD' ? undefined : found.data);
      return;
    }

    if (rest === 'uploads/' && request.method === 'POST') {
      const mount = url.searchParams.get('mount');
      const from = url.searchParams.get('from');
      const source = mount && from ? this.blobs.get(from)?.get(mount) : undefined;
      if (mount && source) {
        this.addBlob(repo, source);
        response.writeHead(201, { location: `/v2/${repo}/blobs/${mount}`, 'docker-content-digest': mount });
        response.end();
        return;
      }
      const id = randomBytes(8).toString('hex');
      this.uploads.set(id, { repo, data: Buffer.alloc(0) });
      response.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}?_state=${id}`, range: '0-0' });
      response.end();
      return;
    }
    const upload = /^uploads\/([0-9a-f]+)$/.exec(rest);
    if (upload) {
      const session = this.uploads.get(upload[1] as string);
      if (!session) return this.notFound(response, 'BLOB_UPLOAD_UNKNOWN');
      if (request.method === 'PATCH') {
        const range = /^(\d+)-(\d+)$/.exec(request.headers['content-range'] ?? '');
        if (range && Number(range[1]) !== session.data.length) {
          response.writeHead(416);
          response.end();
          return;
        }
        session.data = Buffer.concat([session.data, body]);
        response.writeHead(202, {
          location: `/v2/${repo}/blobs/uploads/${upload[1]}?_state=${session.data.length}`,
          range: `0-${session.data.length - 1}`,
        });
        response.end();
        return;
      }
      if (request.method === 'PUT') {
        session.data = Buffer.concat([session.data, body]);
        const digest = url.searchParams.get('digest');
        if (digest !== digestOf(session.data)) {
          response.writeHead(400, { 'content-type': 'application/json' });
          response.end(
            JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'digest did not match' }] }),
          );
          return;
        }
        this.addBlob(repo, session.data);
        this.uploads.delete(upload[1] as string);
        response.writeHead(201, { location: `/v2/${repo}/blobs/${digest}`, 'docker-content-digest': digest });
        response.end();
        return;
      }
    }
    const blob = this.blobs.get(repo)?.get(rest);
    if (!blob) return this.notFound(response, 'BLOB_UNKNOWN');
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      response.writeHead(206, {
        'content-length': blob.length - start,
        'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`,
      });
      response.end(request.method === 'HEAD' ? undefined : blob.subarray(start));
      return;
    }
    response.writeHead(200, { 'content-length': blob.length, 'content-type': 'application/octet-stream' });
    response.end(request.method === 'HEAD' ? undefined : blob);
  }
}

export interface FakeImage {
  manifest: Buffer;
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
  layers: Buffer[];
}

/** Put an image (random layers) in `repo` under `tag`; `mutate` may change the manifest first. */
export function addImage(
  registry: FakeRegistry,
  repo: string,
  tag: string,
  options: {
    layerSizes?: number[];
    architecture?: string;
    mutate?: (manifest: Record<string, unknown>) => void;
  } = {},
): FakeImage {
  const layers = (options.layerSizes ?? [3000, 5000]).map((size) => randomBytes(size));
  const config = Buffer.from(
    JSON.stringify({
      architecture: options.architecture ?? 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
    }),
  );
  const configDigest = registry.addBlob(repo, config);
  const layerDigests = layers.map((layer) => registry.addBlob(repo, layer));
  const manifestValue: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: {
      mediaType: 'application/vnd.docker.container.image.v1+json',
      digest: configDigest,
      size: config.length,
    },
    layers: layers.map((layer, i) => ({
      mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
      digest: layerDigests[i],
      size: layer.length,
    })),
  };
  options.mutate?.(manifestValue);
  const manifest = Buffer.from(JSON.stringify(manifestValue));
  const manifestDigest = registry.addManifest(
    repo,
    tag,
    'application/vnd.docker.distribution.manifest.v2+json',
    manifest,
  );
  return { manifest, manifestDigest, configDigest, layerDigests, layers };
}
