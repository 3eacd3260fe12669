/**
 * The engine-independent routes: /_ping, /version, /info and /events. /info reports what the daemon
 * knows itself (host, configuration, listeners) and merges what the engine supplies through
 * `engineInfo` (container and image counts, storage and plugin details, warnings of its own).
 */
import os from 'node:os';
import { API_VERSION, BERTH_VERSION, MIN_API_VERSION } from '../common/version.js';
import type { EventBus } from '../engine/events.js';
import { streamEvents } from './events.js';
import { cgroupWarnings, countOpenFds, goArch, hostFacts, type HostFacts } from './host-info.js';
import { Reply, type Router } from './router.js';
import { ApiError } from './errors.js';

export interface RuntimeEntry {
  path: string;
  runtimeArgs?: string[];
}

/** The configuration /info reports, read at each request (a reload may change it). */
export interface InfoSettings {
  dataRoot: string;
  debug: boolean;
  logDriver: string;
  liveRestore: boolean;
  defaultRuntime: string;
  runtimes: Record<string, RuntimeEntry>;
  insecureRegistries: string[];
  registryMirrors: string[];
  defaultAddressPools: Array<{ base: string; size: number }>;
  usernsRemap?: string;
}

export interface IndexInfo {
  Name: string;
  Mirrors: string[];
  Secure: boolean;
  Official: boolean;
}

/** Docker's system.Info as berthd fills it. */
export interface DockerInfo {
  ID: string;
  Containers: number;
  ContainersRunning: number;
  ContainersPaused: number;
  ContainersStopped: number;
  Images: number;
  Driver: string;
  DriverStatus: Array<[string, string]>;
  Plugins: { Volume: string[]; Network: string[]; Authorization: string[] | null; Log: string[] };
  MemoryLimit: boolean;
  SwapLimit: boolean;
  KernelMemoryTCP: boolean;
  CpuCfsPeriod: boolean;
  CpuCfsQuota: boolean;
  CPUShares: boolean;
  CPUSet: boolean;
  PidsLimit: boolean;
  IPv4Forwarding: boolean;
  Debug: boolean;
  NFd: number;
  OomKillDisable: boolean;
  NGoroutines: number;
  SystemTime: string;
  LoggingDriver: string;
  CgroupDriver: string;
  CgroupVersion: string;
  NEventsListener: number;
  KernelVersion: string;
  OperatingSystem: string;
  OSVersion: string;
  OSType: string;
  Architecture: string;
  IndexServerAddress: string;
  RegistryConfig: {
    InsecureRegistryCIDRs: string[];
    IndexConfigs: Record<string, IndexInfo>;
    Mirrors: string[];
  };
  NCPU: number;
  MemTotal: number;
  GenericResources: null;
  DockerRootDir: string;
  HttpProxy: string;
  HttpsProxy: string;
  NoProxy: string;
  Name: string;
  Labels: string[];
  ExperimentalBuild: boolean;
  ServerVersion: string;
  Runtimes: Record<string, RuntimeEntry>;
  DefaultRuntime: string;
  Swarm: {
    NodeID: string;
    NodeAddr: string;
    LocalNodeState: string;
    ControlAvailable: boolean;
    Error: string;
  };
  LiveRestoreEnabled: boolean;
  Isolation: string;
  InitBinary: string;
  ContainerdCommit: { ID: string };
  RuncCommit: { ID: string };
  InitCommit: { ID: string };
  SecurityOptions: string[];
  DefaultAddressPools?: Array<{ Base: string; Size: number }>;
  CDISpecDirs: string[];
  /** null when there is none, as dockerd's (a nil list). */
  Warnings: string[] | null;
}

export interface SystemOptions {
  /** The engine id (data-root/engine-id). */
  id: string;
  events: EventBus;
  settings: () => InfoSettings;
  /** What the engine knows: counts, storage details, plugins, warnings (appended to the daemon's). */
  engineInfo?: () => Promise<Partial<DockerInfo>>;
  /** Warnings of the daemon itself, such as an unencrypted TCP listener. */
  warnings?: () => string[];
  /** RFC 3339 time the program was built. */
  buildTime?: string;
  gitCommit?: string;
}

/** Credentials in a proxy URL are masked, as dockerd does. */
export function maskProxyCredentials(value: string): string {
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1xxxxx:xxxxx@');
}

const env = (upper: string): string =>
  maskProxyCredentials(process.env[upper] ?? process.env[upper.toLowerCase()] ?? '');

const isCidr = (value: string): boolean => value.includes('/');

export function registryConfig(settings: InfoSettings): DockerInfo['RegistryConfig'] {
  const indexConfigs: Record<string, IndexInfo> = {
    'docker.io': { Name: 'docker.io', Mirrors: settings.registryMirrors, Secure: true, Official: true },
  };
  for (const registry of settings.insecureRegistries.filter((r) => !isCidr(r))) {
    indexConfigs[registry] = { Name: registry, Mirrors: [], Secure: false, Official: false };
  }
  return {
    InsecureRegistryCIDRs: ['127.0.0.0/8', ...settings.insecureRegistries.filter(isCidr)],
    IndexConfigs: indexConfigs,
    Mirrors: settings.registryMirrors,
  };
}

/** /info: the daemon's own view, then the engine's fields, warnings concatenated. */
export function buildInfo(
  options: SystemOptions,
  facts: HostFacts,
  engine: Partial<DockerInfo>,
  openFds: number,
): DockerInfo {
  const settings = options.settings();
  const securityOptions: string[] = [];
  if (facts.seccomp) securityOptions.push('name=seccomp,profile=builtin');
  if (facts.cgroupVersion === '2') securityOptions.push('name=cgroupns');
  if (settings.usernsRemap) securityOptions.push('name=userns');
  const info: DockerInfo = {
    ID: options.id,
    Containers: 0,
    ContainersRunning: 0,
    ContainersPaused: 0,
    ContainersStopped: 0,
    Images: 0,
    Driver: 'overlayfs',
    DriverStatus: [['Backing Filesystem', facts.backingFilesystem]],
    Plugins: { Volume: [], Network: [], Authorization: null, Log: [] },
    ...facts.cgroupFeatures,
    IPv4Forwarding: facts.ipv4Forwarding,
    Debug: settings.debug,
    NFd: openFds,
    // The nearest thing to goroutines: libuv handles and requests in use.
    NGoroutines: process.getActiveResourcesInfo().length,
    SystemTime: new Date().toISOString(),
    LoggingDriver: settings.logDriver,
    CgroupDriver: 'cgroupfs',
    CgroupVersion: facts.cgroupVersion,
    NEventsListener: options.events.subscriberCount,
    KernelVersion: facts.kernelVersion,
    OperatingSystem: facts.operatingSystem,
    OSVersion: facts.osVersion,
    OSType: 'linux',
    Architecture: facts.architecture,
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: registryConfig(settings),
    NCPU: facts.ncpu,
    MemTotal: facts.memTotal,
    GenericResources: null,
    DockerRootDir: settings.dataRoot,
    HttpProxy: env('HTTP_PROXY'),
    HttpsProxy: env('HTTPS_PROXY'),
    NoProxy: env('NO_PROXY'),
    Name: facts.hostname,
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: BERTH_VERSION,
    Runtimes: settings.runtimes,
    DefaultRuntime: settings.defaultRuntime,
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '' },
    LiveRestoreEnabled: settings.liveRestore,
    Isolation: '',
    InitBinary: '',
    ContainerdCommit: { ID: '' },
    RuncCommit: { ID: '' },
    InitCommit: { ID: '' },
    SecurityOptions: securityOptions,
    ...(settings.defaultAddressPools.length > 0
      ? { DefaultAddressPools: settings.defaultAddressPools.map((p) => ({ Base: p.base, Size: p.size })) }
      : {}),
    CDISpecDirs: [],
    Warnings: [...cgroupWarnings(facts.cgroupFeatures, facts.cgroupVersion), ...(options.warnings?.() ?? [])],
  };
  const { Warnings: engineWarnings, ...engineFields } = engine;
  const warnings = [...(info.Warnings ?? []), ...(engineWarnings ?? [])];
  return { ...info, ...engineFields, Warnings: warnings.length > 0 ? warnings : null };
}

export interface DockerVersion {
  Platform: { Name: string };
  Components: Array<{ Name: string; Version: string; Details: Record<string, string> }>;
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GitCommit: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
  BuildTime?: string;
}

export function buildVersion(kernelVersion: string, buildTime?: string, gitCommit = ''): DockerVersion {
  const runtime = `node ${process.version}`;
  const arch = goArch();
  // Go writes map keys sorted; Details is a map in Docker's type.
  const details: Record<string, string> = {
    ApiVersion: API_VERSION,
    Arch: arch,
    ...(buildTime === undefined ? {} : { BuildTime: buildTime }),
    Experimental: 'false',
    GitCommit: gitCommit,
    GoVersion: runtime,
    KernelVersion: kernelVersion,
    MinAPIVersion: MIN_API_VERSION,
    Os: 'linux',
  };
  return {
    Platform: { Name: 'Berth Engine' },
    Components: [{ Name: 'Engine', Version: BERTH_VERSION, Details: details }],
    Version: BERTH_VERSION,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: gitCommit,
    GoVersion: runtime,
    Os: 'linux',
    Arch: arch,
    KernelVersion: kernelVersion,
    ...(buildTime === undefined ? {} : { BuildTime: buildTime }),
  };
}

const PING_HEADERS = {
  'Builder-Version': '1',
  'Cache-Control': 'no-cache, no-store, must-revalidate',
  Pragma: 'no-cache',
  Swarm: 'inactive',
};

export function registerSystemRoutes(router: Router, options: SystemOptions): void {
  router.get(
    '/_ping',
    () => new Reply(200, Buffer.from('OK'), { ...PING_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' }),
  );
  router.head(
    '/_ping',
    () =>
      new Reply(200, undefined, {
        ...PING_HEADERS,
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': '0',
      }),
  );
  router.get('/version', () => buildVersion(os.release(), options.buildTime, options.gitCommit));
  router.get('/info', async () => {
    const [facts, engine] = await Promise.all([
      hostFacts(options.settings().dataRoot),
      options.engineInfo?.() ?? Promise.resolve({}),
    ]);
    return buildInfo(options, facts, engine, countOpenFds());
  });
  router.get('/events', (ctx) => streamEvents(ctx, options.events));
  registerNoSwarmRoutes(router);
}

/** dockerd's answer for swarm objects on a node that is in no swarm. */
const NOT_A_MANAGER =
  'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.';

/**
 * berthd runs no swarm and no plugins: it answers what a dockerd outside any swarm and with no
 * plugin installed answers, so SDKs and test frameworks that probe for them get dockerd's errors
 * and empty lists rather than 404s.
 */
function registerNoSwarmRoutes(router: Router): void {
  router.get('/plugins', () => []);
  const notManager = (): never => {
    throw new ApiError(503, NOT_A_MANAGER);
  };
  for (const kind of ['nodes', 'services', 'tasks', 'secrets', 'configs']) {
    router.get(`/${kind}`, notManager);
    router.get(`/${kind}/{id}`, notManager);
  }
  router.get('/swarm', notManager);
  router.get('/swarm/unlockkey', notManager);
  for (const path of ['/services/create', '/secrets/create', '/configs/create', '/swarm/update'])
    router.post(path, notManager);
  router.post('/swarm/leave', () => {
    throw new ApiError(503, 'This node is not part of a swarm');
  });
  for (const path of ['/swarm/init', '/swarm/join', '/swarm/unlock'])
    router.post(path, () => {
      throw new ApiError(503, 'berthd does not run swarm mode: it manages the containers of this host only');
    });
}
