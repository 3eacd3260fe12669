/**
 * A fake Docker Engine API on a unix socket in a temporary directory, for testing clients (berth's
 * CLI and the real docker CLI side by side): it records every request and answers with canned
 * Docker-shaped JSON. Tests add routes to change answers; a route added later wins.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RecordedRequest {
  method: string;
  /** The URL as sent, version prefix and query included. */
  url: string;
  /** The API version of a /v1.xx/ path, if any. */
  version?: string;
  /** The path without version prefix and query. */
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body parsed as JSON when it is JSON. */
  json?: unknown;
}

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  json?: unknown;
  text?: string | Buffer;
  /** Body pieces written one after the other (chunked), for streams. */
  chunks?: Array<string | Buffer>;
}

export type RouteHandler = (req: RecordedRequest, params: string[]) => Reply | Promise<Reply>;
/** A handler for an upgraded (hijacked) connection: it owns the socket after the 101 head. */
export type HijackHandler = (req: RecordedRequest, socket: Duplex, params: string[]) => void;

interface Route {
  method: string;
  pattern: RegExp;
  handler?: RouteHandler;
  hijack?: HijackHandler;
}

export const CONTAINER_ID = 'c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789';
export const EXEC_ID = 'e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0';
export const IMAGE_ID = 'sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741';

/** Frames a payload as Docker's multiplexed stdio does (1 stdout, 2 stderr). */
export function frame(stream: number, payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
}

const HIJACK_HEAD =
  'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n' +
  'Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n';

export class FakeDockerApi {
  readonly requests: RecordedRequest[] = [];
  apiVersion = '1.47';
  private readonly routes: Route[] = [];
  private readonly sockets = new Set<Duplex>();

  private constructor(
    readonly dir: string,
    readonly socketPath: string,
    private readonly server: http.Server,
  ) {}

  /** A fake listening on `<tmp>/docker.sock`, with the default routes. */
  static async start(): Promise<FakeDockerApi> {
    const dir = await mkdtemp(join(tmpdir(), 'berth-fake-api-'));
    const socketPath = join(dir, 'docker.sock');
    const server = http.createServer();
    const fake = new FakeDockerApi(dir, socketPath, server);
    server.on('request', (req, res) => void fake.handle(req, res));
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      fake.upgrade(req, socket, head),
    );
    server.on('connection', (socket) => {
      fake.sockets.add(socket);
      socket.on('close', () => fake.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    fake.installDefaults();
    return fake;
  }

  /** The address for DOCKER_HOST / BERTH_HOST. */
  get host(): string {
    return `unix://${this.socketPath}`;
  }

  route(method: string, pattern: RegExp, handler: RouteHandler): void {
    this.routes.unshift({ method, pattern, handler });
  }

  hijack(method: string, pattern: RegExp, handler: HijackHandler): void {
    this.routes.unshift({ method, pattern, hijack: handler });
  }

  /** Requests other than the version ping, in order. */
  get calls(): RecordedRequest[] {
    return this.requests.filter((r) => r.path !== '/_ping');
  }

  reset(): void {
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.dir, { recursive: true, force: true });
  }

  private record(req: http.IncomingMessage, body: Buffer): RecordedRequest {
    const url = req.url ?? '/';
    const parsed = new URL(url, 'http://fake');
    const match = /^\/v([0-9.]+)(\/.*)$/.exec(parsed.pathname);
    let json: unknown;
    if (body.length > 0 && /json/.test(req.headers['content-type'] ?? '')) {
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        json = undefined;
      }
    }
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      url,
      version: match?.[1],
      path: decodeURIComponent(match?.[2] ?? parsed.pathname),
      query: parsed.searchParams,
      headers: req.headers,
      body,
      json,
    };
    this.requests.push(recorded);
    return recorded;
  }

  private find(
    method: string,
    path: string,
    hijack: boolean,
  ): { route: Route; params: string[] } | undefined {
    for (const route of this.routes) {
      if (route.method !== method && !(route.method === 'GET' && method === 'HEAD')) continue;
      if (hijack !== (route.hijack !== undefined)) continue;
      const m = route.pattern.exec(path);
      if (m) return { route, params: m.slice(1) };
    }
    return undefined;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const parts: Buffer[] = [];
    for await (const chunk of req) parts.push(chunk as Buffer);
    const recorded = this.record(req, Buffer.concat(parts));
    const found = this.find(recorded.method, recorded.path, false);
    let reply: Reply;
    try {
      reply = found?.route.handler
        ? await found.route.handler(recorded, found.params)
        : { status: 404, json: { message: 'page not found' } };
    } catch (err) {
      reply = { status: 500, json: { message: String(err) } };
    }
    const headers: Record<string, string> = { ...reply.headers };
    // An empty apiVersion plays a daemon that does not announce one.
    if (this.apiVersion !== '') headers['Api-Version'] = this.apiVersion;
    if (reply.json !== undefined) headers['Content-Type'] ??= 'application/json';
    res.writeHead(reply.status ?? 200, headers);
    if (recorded.method === 'HEAD') return void res.end();
    if (reply.chunks) {
      for (const chunk of reply.chunks) {
        res.write(chunk);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      res.end();
    } else if (reply.json !== undefined) res.end(JSON.stringify(reply.json) + '\n');
    else res.end(reply.text ?? '');
  }

  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const length = Number(req.headers['content-length'] ?? '0');
    let buffered = head;
    const proceed = (): void => {
      socket.off('data', onData);
      const recorded = this.record(req, buffered.subarray(0, length));
      const rest = buffered.subarray(length);
      const found = this.find(recorded.method, recorded.path, true);
      if (!found?.route.hijack) {
        socket.end(
          'HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{"message":"page not found"}\n',
        );
        return;
      }
      socket.write(HIJACK_HEAD);
      if (rest.length > 0) socket.unshift(rest);
      found.route.hijack(recorded, socket, found.params);
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length >= length) proceed();
    };
    if (buffered.length >= length) proceed();
    else socket.on('data', onData);
  }

  private installDefaults(): void {
    const ok = (): Reply => ({ status: 204 });
    this.route('GET', /^\/_ping$/, () => ({
      headers: {
        'Content-Type': 'text/plain; charset=utf-8',
        OSType: 'linux',
        'Docker-Experimental': 'false',
        'Cache-Control': 'no-cache, no-store, must-revalidate',
        Pragma: 'no-cache',
      },
      text: 'OK',
    }));
    this.route('POST', /^\/_ping$/, () => ({ text: 'OK' }));
    this.route('GET', /^\/version$/, () => ({ json: versionBody(this.apiVersion) }));
    this.route('GET', /^\/info$/, () => ({ json: infoBody() }));
    this.route('POST', /^\/containers\/create$/, () => ({
      status: 201,
      json: { Id: CONTAINER_ID, Warnings: [] },
    }));
    this.route('GET', /^\/containers\/json$/, () => ({ json: [containerSummary()] }));
    this.route('GET', /^\/containers\/([^/]+)\/json$/, () => ({ json: containerInspect() }));
    this.route('POST', /^\/containers\/([^/]+)\/(start|stop|restart|kill|pause|unpause|rename|resize)$/, ok);
    this.route('POST', /^\/containers\/([^/]+)\/wait$/, () => ({ json: { StatusCode: 0 } }));
    this.route('DELETE', /^\/containers\/([^/]+)$/, ok);
    this.route('POST', /^\/containers\/prune$/, () => ({
      json: { ContainersDeleted: null, SpaceReclaimed: 0 },
    }));
    this.route('GET', /^\/images\/json$/, () => ({ json: [imageSummary()] }));
    this.route('GET', /^\/images\/([^/]+(?:\/[^/]+)*)\/json$/, () => ({ json: imageInspect() }));
    this.route('GET', /^\/volumes$/, () => ({ json: { Volumes: [volume('data')], Warnings: null } }));
    this.route('POST', /^\/volumes\/create$/, (req) => ({
      status: 201,
      json: volume(String((req.json as { Name?: string } | undefined)?.Name ?? 'anon')),
    }));
    this.route('GET', /^\/volumes\/([^/]+)$/, (_req, [name]) => ({ json: volume(name ?? '') }));
    this.route('DELETE', /^\/volumes\/([^/]+)$/, ok);
    this.hijack('POST', /^\/containers\/([^/]+)\/attach$/, (_req, socket) => {
      socket.end(frame(1, 'hello\n'));
    });
    this.route('POST', /^\/containers\/([^/]+)\/exec$/, () => ({ status: 201, json: { Id: EXEC_ID } }));
    this.hijack('POST', /^\/exec\/([^/]+)\/start$/, (_req, socket) => {
      socket.end(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n')]));
    });
    this.route('POST', /^\/exec\/([^/]+)\/start$/, () => ({ status: 200, text: '' }));
    this.route('POST', /^\/exec\/([^/]+)\/resize$/, () => ({ status: 200, text: '' }));
    this.route('GET', /^\/exec\/([^/]+)\/json$/, () => ({
      json: { ID: EXEC_ID, Running: false, ExitCode: 0, ContainerID: CONTAINER_ID, Pid: 0 },
    }));
  }
}

export function versionBody(apiVersion: string): Record<string, unknown> {
  return {
    Platform: { Name: 'berth' },
    Components: [
      {
        Name: 'Engine',
        Version: '0.1.0',
        Details: {
          ApiVersion: apiVersion,
          Arch: 'amd64',
          BuildTime: '2024-01-01T00:00:00.000000000+00:00',
          Experimental: 'false',
          GitCommit: 'abcdef0',
          GoVersion: 'node20',
          KernelVersion: '6.18.0',
          MinAPIVersion: '1.41',
          Os: 'linux',
        },
      },
    ],
    Version: '0.1.0',
    ApiVersion: apiVersion,
    MinAPIVersion: '1.41',
    GitCommit: 'abcdef0',
    GoVersion: 'node20',
    Os: 'linux',
    Arch: 'amd64',
    KernelVersion: '6.18.0',
    BuildTime: '2024-01-01T00:00:00.000000000+00:00',
  };
}

export function infoBody(): Record<string, unknown> {
  return {
    ID: 'berth',
    Containers: 1,
    ContainersRunning: 1,
    ContainersPaused: 0,
    ContainersStopped: 0,
    Images: 1,
    Driver: 'overlayfs',
    DriverStatus: [['Backing Filesystem', 'extfs']],
    Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'none'], Log: ['json-file'] },
    MemoryLimit: true,
    SwapLimit: true,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: true,
    PidsLimit: true,
    IPv4Forwarding: true,
    Debug: false,
    NFd: 10,
    NGoroutines: 1,
    SystemTime: '2024-01-01T00:00:00Z',
    LoggingDriver: 'json-file',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: '1',
    NEventsListener: 0,
    KernelVersion: '6.18.0',
    OperatingSystem: 'Debian GNU/Linux 12 (bookworm)',
    OSVersion: '12',
    OSType: 'linux',
    Architecture: 'x86_64',
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: {
      IndexConfigs: {},
      InsecureRegistryCIDRs: ['127.0.0.0/8'],
      Mirrors: [],
    },
    NCPU: 2,
    MemTotal: 25769803776,
    DockerRootDir: '/var/lib/berth',
    Name: 'host',
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: '0.1.0',
    Runtimes: { berth: { path: 'berth-runtime' } },
    DefaultRuntime: 'berth',
    Swarm: {
      LocalNodeState: 'inactive',
      ControlAvailable: false,
      NodeID: '',
      NodeAddr: '',
      RemoteManagers: null,
    },
    LiveRestoreEnabled: true,
    Isolation: '',
    InitBinary: '',
    SecurityOptions: ['name=seccomp,profile=builtin'],
    Warnings: null,
  };
}

export function containerSummary(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Id: CONTAINER_ID,
    Names: ['/web'],
    Image: 'busybox',
    ImageID: IMAGE_ID,
    Command: 'sleep 300',
    Created: 1700000000,
    Ports: [],
    Labels: {},
    State: 'running',
    Status: 'Up 5 minutes',
    HostConfig: { NetworkMode: 'none' },
    NetworkSettings: { Networks: {} },
    Mounts: [],
    ...overrides,
  };
}

export function containerInspect(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Id: CONTAINER_ID,
    Created: '2023-11-14T22:13:20.000000000Z',
    Path: 'sleep',
    Args: ['300'],
    State: {
      Status: 'running',
      Running: true,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: 4242,
      ExitCode: 0,
      Error: '',
      StartedAt: '2023-11-14T22:13:21.000000000Z',
      FinishedAt: '0001-01-01T00:00:00Z',
    },
    Image: IMAGE_ID,
    Name: '/web',
    RestartCount: 0,
    Driver: 'overlayfs',
    Platform: 'linux',
    Config: {
      Hostname: 'c0ffee012345',
      User: '',
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['sleep', '300'],
      Image: 'busybox',
      WorkingDir: '',
      Entrypoint: null,
      Labels: {},
    },
    HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'no', MaximumRetryCount: 0 } },
    Mounts: [],
    NetworkSettings: { Ports: {}, Networks: {} },
    ...overrides,
  };
}

export function imageSummary(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Id: IMAGE_ID,
    ParentId: '',
    RepoTags: ['busybox:latest'],
    RepoDigests: ['busybox@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7'],
    Created: 1700000000,
    Size: 4261550,
    SharedSize: -1,
    VirtualSize: 4261550,
    Labels: null,
    Containers: -1,
    ...overrides,
  };
}

export function imageInspect(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Id: IMAGE_ID,
    RepoTags: ['busybox:latest'],
    RepoDigests: [],
    Parent: '',
    Comment: '',
    Created: '2023-11-14T22:13:20Z',
    Config: { Env: ['PATH=/bin'], Cmd: ['sh'], Labels: null },
    Architecture: 'amd64',
    Os: 'linux',
    Size: 4261550,
    RootFS: { Type: 'layers', Layers: ['sha256:' + 'ab'.repeat(32)] },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
    ...overrides,
  };
}

export function volume(name: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    CreatedAt: '2023-11-14T22:13:20Z',
    Driver: 'local',
    Labels: {},
    Mountpoint: `/var/lib/berth/volumes/${name}/_data`,
    Name: name,
    Options: {},
    Scope: 'local',
    ...overrides,
  };
}
