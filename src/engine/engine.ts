/**
 * The container engine: Docker's container lifecycle on top of the image service, the
 * snapshotter and the OCI runtime. Each container's shim holds its stdio (json-file log, attach
 * socket), so berthd can go away and find its containers again (recover()).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { conflict, describeError, invalidArgument, notFound } from '../common/errors.js';
import type { ImageService } from '../image/image-service.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { isMountPoint, mountAll, unmount } from '../snapshot/mount.js';
import { MountError } from '../snapshot/mount-helper.js';
import type { RemappedLayers } from '../snapshot/shift-layers.js';
import type { Runtime } from '../runtime/runtime.js';
import { attach, type AttachSession } from '../runtime/attach.js';
import { parseSignal } from '../runtime/signals.js';
import type { EventBus } from './events.js';
import { ContainerStore } from './container-store.js';
import { initialState, isLive, restartingMessage, type ContainerRecord } from './container-record.js';
import type { ContainerConfig, HostConfig, Resources } from './docker-types.js';
import { containerResources } from './resources.js';
import { availableParallelism } from 'node:os';
import { generateName, validateName } from './names.js';
import { initBinaryPath } from './init-binary.js';
import { boundingCapabilities, devicesAt, listHostDevices } from './host.js';

/** What --privileged and --cap-add ALL can grant: berthd's own bounding set. */
const HOST_CAPABILITIES = boundingCapabilities();
import {
  applyNetworkSysctls,
  applyOomScoreAdj,
  checkRemappedContainer,
  chownToRemappedRoot,
  containerIdMap,
  layersInUse,
  openRemappedLayers,
  shareContainerDir,
  takeOutsideSettings,
  type IdMap,
  type Remap,
} from './userns.js';
import { buildSpec, containerHostname } from './spec-builder.js';
import { mergeImageConfig, processArgs } from './container-config.js';
import {
  parseBind,
  parseMount,
  resolveMountRequest,
  type MountRequest,
  type ResolvedMount,
} from './binds.js';
import type { VolumeStore } from '../volume/local.js';
import { ContainerNetworking, usesManagedNetwork } from './container-network.js';
import { exitEvents, startEvents, volumeEvent } from './lifecycle-events.js';
import { startFailure } from './start-error.js';
import type { NetworkRecord } from '../network/network-record.js';
import type { EndpointSettings } from './docker-types.js';
import { containerRef } from './namespaces.js';
import { BUILTIN_RUNTIME, checkRuntime, type RuntimeNames } from './create-checks.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const runProgram = promisify(execFile);

export interface EngineOptions {
  dataRoot: string;
  execRoot: string;
  images: ImageService;
  snapshotter: Snapshotter;
  runtime: Runtime;
  volumes: VolumeStore;
  networking: ContainerNetworking;
  events: EventBus;
  cgroupVersion: 1 | 2;
  /** The daemon's userns-remap (userns.ts), when set. */
  userns?: Remap;
  /** daemon.json `init`: an init for containers that do not say (HostConfig.Init null); `init-path`. */
  init?: { enabled: boolean; path?: string };
  /** daemon.json `default-runtime` and `runtimes`, read at each create (a reload changes them). */
  runtimes?: () => RuntimeNames;
  log: { info(message: string): void; warn(message: string): void; error(message: string): void };
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

interface Waiter {
  condition: WaitCondition;
  resolve: (result: { StatusCode: number; Error: { Message: string } | null }) => void;
}

export interface CreateRequest extends ContainerConfig {
  HostConfig?: HostConfig;
  NetworkingConfig?: { EndpointsConfig?: Record<string, EndpointSettings> | null } | null;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Engine {
  readonly containers: ContainerStore;
  private readonly waiters = new Map<string, Waiter[]>();
  /** Attach clients that came before start: connected once the shim's socket exists. */
  private readonly pendingAttach = new Map<
    string,
    Array<{ connect: (socket: string) => void; fail: (err: unknown) => void }>
  >();
  private readonly exits = new Map<string, Promise<void>>();
  /** Starts of a restart policy under way: stop and remove wait for them. */
  private readonly restarts = new Map<string, Promise<void>>();
  /** Names of containers whose create is under way. */
  private readonly creating = new Set<string>();
  /** What removed containers left on disk, being removed (cleanUpLater()). */
  private readonly cleanups = new Set<Promise<void>>();
  /** With userns-remap: how remapped containers get their image layers. */
  private remappedLayers: RemappedLayers | undefined;

  private constructor(
    private readonly options: EngineOptions,
    containers: ContainerStore,
  ) {
    this.containers = containers;
  }

  static async open(options: EngineOptions): Promise<Engine> {
    const engine = new Engine(options, await ContainerStore.open(options.dataRoot));
    if (options.userns) {
      engine.remappedLayers = await openRemappedLayers({ ...options, remap: options.userns });
      const { strategy, reason } = engine.remappedLayers;
      options.log.info(
        strategy === 'idmap'
          ? 'userns-remap: image layers through idmapped mounts'
          : `userns-remap: image layers as shifted copies (${reason})`,
      );
    }
    await mkdir(join(options.execRoot, 'containers'), { recursive: true });
    await mkdir(join(options.execRoot, 'a'), { recursive: true, mode: 0o700 });
    await engine.recover();
    await engine.removeOrphanedRuntimeState();
    await engine.removeOrphanedSnapshots();
    await engine.sweepRemappedLayers();
    // Addresses of containers gone while berthd was down are freed; the ports of the ones that
    // kept running are forwarded again.
    const running = engine.containers.list().filter((c) => c.state.Running);
    // Namespaces no running container uses (a build step or a start a crash interrupted) go too.
    await options.networking.manager.removeSandboxesExcept(
      new Set(running.flatMap((c) => (c.netnsPath ? [c.netnsPath] : []))),
    );
    await options.networking.manager.retain(new Set(running.map((c) => c.id)));
    await options.networking.manager.applyFirewall();
    for (const record of engine.containers.list())
      if (record.state.Restarting) engine.scheduleRestart(record, 0);
    return engine;
  }

  get networking(): ContainerNetworking {
    return this.options.networking;
  }

  get volumesRoot(): string {
    return this.options.volumes.root;
  }

  /** What the filesystem operations and health checks (container-fs.ts, health.ts, commit-container.ts) use. */
  get services(): Pick<
    EngineOptions,
    'execRoot' | 'images' | 'snapshotter' | 'runtime' | 'volumes' | 'events' | 'log' | 'cgroupVersion'
  > {
    return this.options;
  }

  private runDir(id: string): string {
    return join(this.options.execRoot, 'containers', id);
  }

  /** Short on purpose: a unix socket path must fit 107 bytes, whatever the exec root is. */
  attachSocketPath(id: string): string {
    return join(this.options.execRoot, 'a', id.slice(0, 16));
  }

  private rootfs(id: string): string {
    return join(this.containers.dir(id), 'rootfs');
  }

  private publish(record: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    const find = (name: string): NetworkRecord | undefined => this.options.networking.manager.find(name);
    if (action === 'start') for (const event of startEvents(record, find)) this.options.events.publish(event);
    this.options.events.publish({
      Type: 'container',
      Action: action,
      Actor: {
        ID: record.id,
        Attributes: { ...(record.config.Labels ?? {}), image: record.imageRef, name: record.name, ...extra },
      },
    });
    if (action === 'die') for (const event of exitEvents(record, find)) this.options.events.publish(event);
  }

  // ---- create ------------------------------------------------------------------------------

  async create(body: CreateRequest, requestedName?: string): Promise<{ Id: string; Warnings: string[] }> {
    const { HostConfig: hostConfigIn, NetworkingConfig: networkingConfig, ...configIn } = body;
    const hostConfig: HostConfig = hostConfigIn ?? {};
    if (!configIn.Image) throw invalidArgument('Config cannot be empty in order to create a container');
    const taken = (n: string): boolean => this.containers.nameTaken(n) || this.creating.has(n);
    const name = requestedName ? validateName(requestedName) : generateName(taken);
    if (taken(name)) {
      const holder = this.containers.find(name)?.id ?? 'being created';
      throw conflict(
        `Conflict. The container name "/${name}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
    // Held until the record exists: concurrent creates must not pick the same name.
    this.creating.add(name);
    try {
      return await this.createNamed(
        name,
        { ...configIn, Image: configIn.Image },
        hostConfig,
        networkingConfig,
      );
    } finally {
      this.creating.delete(name);
    }
  }

  private async createNamed(
    name: string,
    configIn: Omit<CreateRequest, 'HostConfig' | 'NetworkingConfig'> & { Image: string },
    hostConfig: HostConfig,
    networkingConfig: CreateRequest['NetworkingConfig'],
  ): Promise<{ Id: string; Warnings: string[] }> {
    checkRemappedContainer(this.options.userns, hostConfig);
    hostConfig.Runtime = checkRuntime(
      hostConfig.Runtime,
      this.options.runtimes?.() ?? { defaultRuntime: BUILTIN_RUNTIME, configured: [] },
    );
    const image = await this.options.images.inspect(configIn.Image);
    const config = mergeImageConfig(configIn as ContainerConfig, image.imageConfig.config);
    const args = processArgs(config);
    const networks = this.options.networking.requestedNetworks(hostConfig, networkingConfig?.EndpointsConfig);
    if (this.options.networking.noDefaultNetwork(hostConfig)) config.NetworkDisabled = true;
    ContainerNetworking.checkPorts(hostConfig, Object.keys(config.ExposedPorts ?? {}));
    const id = randomBytes(32).toString('hex');
    const volumes = await this.createVolumes(config, hostConfig);
    const snapshotParent = image.chainIds.at(-1);
    await this.options.snapshotter.prepare(id, snapshotParent);
    const record: ContainerRecord = {
      id,
      name,
      created: new Date().toISOString(),
      path: args[0] ?? '',
      args: args.slice(1),
      image: image.id,
      imageRef: configIn.Image,
      config,
      hostConfig: withHostConfigDefaults(hostConfig),
      state: initialState(),
      restartCount: 0,
      snapshotKey: id,
      ...(snapshotParent ? { snapshotParent } : {}),
      logPath: join(this.containers.dir(id), `${id}-json.log`),
      volumes,
      networks,
    };
    try {
      await this.containers.add(record);
    } catch (err) {
      await this.options.snapshotter.remove(id).catch(() => undefined);
      throw err;
    }
    this.publish(record, 'create');
    return { Id: id, Warnings: [] };
  }

  // ---- start and exit ------------------------------------------------------------------------

  private mountRequests(hostConfig: HostConfig): MountRequest[] {
    return [
      ...(hostConfig.Binds ?? []).map((bind) => parseBind(bind)),
      ...(hostConfig.Mounts ?? []).map((mount) => parseMount(mount)),
    ];
  }

  /** Volumes of -v/--mount and the image's VOLUME list, created now like Docker does at create. */
  private async createVolumes(
    config: ContainerConfig,
    hostConfig: HostConfig,
  ): Promise<ContainerRecord['volumes']> {
    const result: NonNullable<ContainerRecord['volumes']> = {};
    const requests = this.mountRequests(hostConfig);
    for (const request of requests) {
      if (request.type !== 'volume') continue;
      const anonymous = request.source === '';
      const volume = await this.createVolume(request.source || undefined, {
        ...(request.volumeLabels ? { labels: request.volumeLabels } : {}),
        ...(request.volumeDriver ? { driver: request.volumeDriver } : {}),
        ...(request.volumeDriverOptions ? { driverOpts: request.volumeDriverOptions } : {}),
        anonymous,
      });
      result[request.destination] = {
        name: volume.Name,
        anonymous,
        readOnly: request.readOnly,
        noCopy: request.noCopy ?? false,
      };
    }
    const covered = new Set(requests.map((r) => r.destination));
    for (const destination of Object.keys(config.Volumes ?? {})) {
      if (covered.has(destination)) continue;
      const volume = await this.createVolume(undefined, { anonymous: true });
      result[destination] = { name: volume.Name, anonymous: true, readOnly: false, noCopy: false };
    }
    return result;
  }

  /** Finds or creates a volume; a new one is announced with dockerd's `volume create` event. */
  private async createVolume(
    name: string | undefined,
    options: Parameters<VolumeStore['create']>[1],
  ): Promise<{ Name: string }> {
    const existed = name !== undefined && this.options.volumes.find(name) !== undefined;
    const volume = await this.options.volumes.create(name, options);
    if (!existed) this.options.events.publish(volumeEvent('create', volume.Name));
    return volume;
  }

  /** Containers that use a volume (for `volume rm`). */
  volumeUsers(name: string): string[] {
    return this.containers
      .list()
      .filter((c) => Object.values(c.volumes ?? {}).some((v) => v.name === name))
      .map((c) => c.id);
  }

  private async resolveMounts(record: ContainerRecord): Promise<ResolvedMount[]> {
    const requests = this.mountRequests(record.hostConfig);
    const idMap = containerIdMap(this.options.userns, record.hostConfig);
    const resolved: ResolvedMount[] = [];
    const volumes = record.volumes ?? {};
    for (const [destination, volume] of Object.entries(volumes)) {
      const path = await this.options.volumes.mountpoint(volume.name);
      if (idMap) await chownToRemappedRoot(path, idMap);
      // A new volume takes the image's content at its destination, on the container's first start.
      if (!record.everStarted && !volume.noCopy)
        await copyUp(join(this.rootfs(record.id), destination), path);
      if (!requests.some((r) => r.destination === destination)) {
        resolved.push({ type: 'bind', source: path, destination, readOnly: volume.readOnly });
      }
    }
    for (const request of requests) {
      if (request.type === 'volume') {
        const volume = volumes[request.destination];
        if (!volume)
          throw invalidArgument(`volume for ${request.destination} is missing; recreate the container`);
        resolved.push(resolveMountRequest(request, await this.options.volumes.mountpoint(volume.name)));
        continue;
      }
      if (request.type === 'bind' && (record.hostConfig.Binds ?? []).length > 0) {
        // `-v /host:/ctr` creates a missing host directory, like Docker.
        await mkdir(request.source, { recursive: true }).catch(() => undefined);
      }
      resolved.push(resolveMountRequest(request));
    }
    return resolved;
  }

  private writeEtcFiles(record: ContainerRecord, hostname: string): void {
    const dir = this.containers.dir(record.id);
    const endpoints = Object.values(record.endpoints ?? {});
    const gateway = endpoints[0]?.ipv4?.gateway ?? '';
    const extraHosts = (record.hostConfig.ExtraHosts ?? []).map((entry) => {
      const at = entry.indexOf(':');
      const name = entry.slice(0, at);
      const address = entry.slice(at + 1);
      return `${address === 'host-gateway' ? gateway : address}\t${name}`;
    });
    const own = endpoints.flatMap((e) => [e.ipv4?.address, e.ipv6?.address].filter((a): a is string => !!a));
    const hosts = [
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'ff00::0\tip6-mcastprefix',
      'ff02::1\tip6-allnodes',
      'ff02::2\tip6-allrouters',
      ...extraHosts,
      ...(own.length > 0 ? own.map((address) => `${address}\t${hostname}`) : [`127.0.1.1\t${hostname}`]),
      '',
    ].join('\n');
    // Small files written in this thread: three thread-pool round trips each would take longer
    // than the writes themselves (this is on every start's path).
    writeFileSync(join(dir, 'hostname'), `${hostname}\n`);
    writeFileSync(join(dir, 'hosts'), hosts);
    writeFileSync(join(dir, 'resolv.conf'), this.resolvConf(record));
  }

  /**
   * Like Docker: on a user-defined network the network's DNS server (berthd, on the gateway);
   * otherwise --dns or the host's servers, without loopback ones in a namespace of its own.
   */
  private resolvConf(record: ContainerRecord): string {
    let host = '';
    try {
      host = readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      // No host resolvers: the defaults below.
    }
    const hostLines = host.split('\n').map((l) => l.trim());
    const hostValues = (key: string): string[] =>
      hostLines
        .filter((l) => l.startsWith(`${key} `) || l.startsWith(`${key}\t`))
        .flatMap((l) => l.split(/\s+/).slice(1));
    const hostConfig = record.hostConfig;
    const search =
      (hostConfig.DnsSearch ?? []).length > 0 ? (hostConfig.DnsSearch ?? []) : hostValues('search');
    const options =
      (hostConfig.DnsOptions ?? []).length > 0 ? (hostConfig.DnsOptions ?? []) : hostValues('options');
    const firstNetwork = Object.keys(record.endpoints ?? {})[0];
    const network = firstNetwork ? this.options.networking.manager.find(firstNetwork) : undefined;
    const embedded = network ? this.options.networking.manager.dnsServerOf(network) : undefined;
    let servers: string[];
    if (embedded) servers = [embedded];
    else if ((hostConfig.Dns ?? []).length > 0) servers = [...(hostConfig.Dns ?? [])];
    else {
      servers = hostValues('nameserver');
      if (hostConfig.NetworkMode !== 'host') {
        servers = servers.filter((server) => !/^127\./.test(server) && server !== '::1');
        // Docker's fallback when the host only has loopback resolvers.
        if (servers.length === 0 && record.endpoints && Object.keys(record.endpoints).length > 0)
          servers = ['8.8.8.8', '8.8.4.4'];
      }
    }
    const embeddedOptions = embedded && !options.some((o) => o.startsWith('ndots:')) ? ['ndots:0'] : [];
    return [
      ...servers.map((server) => `nameserver ${server}`),
      ...(search.length > 0 ? [`search ${search.join(' ')}`] : []),
      ...(options.length + embeddedOptions.length > 0
        ? [`options ${[...options, ...embeddedOptions].join(' ')}`]
        : []),
      '',
    ].join('\n');
  }

  async start(reference: string): Promise<void> {
    const record = this.containers.get(reference);
    if (record.state.Running) {
      if (record.state.Paused) throw conflict(`cannot start a paused container, try unpause instead`);
      return; // Docker answers 304 Not Modified; the route checks before calling.
    }
    record.manuallyStopped = false;
    try {
      await this.startRecord(record);
    } catch (err) {
      // Like dockerd: a --rm container that cannot start is removed (`docker run --rm` waits for it).
      if (record.hostConfig.AutoRemove)
        await this.remove(record.id, { force: true }).catch((removeErr: unknown) =>
          this.options.log.error(`removing ${record.id}: ${describeError(removeErr)}`),
        );
      throw err;
    }
  }

  private async startRecord(record: ContainerRecord): Promise<void> {
    const id = record.id;
    const rootfs = this.rootfs(id);
    mkdirSync(rootfs, { recursive: true });
    // Left mounted by a start that failed half way or a berthd that was killed.
    if (await isMountPoint(rootfs)) await unmount(rootfs).catch(() => undefined);
    const idMap = containerIdMap(this.options.userns, record.hostConfig);
    await this.mountSnapshot(record, rootfs, id);
    let saved: Promise<void>;
    // The network is set up while the spec is built: the spec needs only the namespace's path,
    // /etc/hosts the addresses (written just before the runtime starts).
    let network: Promise<string> | undefined;
    try {
      network = usesManagedNetwork(record)
        ? this.options.networking.setUp(record, Object.keys(record.config.ExposedPorts ?? {}))
        : undefined;
      network?.catch(() => undefined); // awaited below, or before the teardown on failure
      const netnsPath = network ? this.options.networking.namespacePath(record) : undefined;
      const image = await this.options.images.inspect(record.image).catch(() => undefined);
      // Docker resolves the daemon's default at start: inspect keeps showing Init as it was given.
      const withInit = record.hostConfig.Init ?? this.options.init?.enabled ?? false;
      const spec = await buildSpec({
        id,
        name: record.name,
        config: record.config,
        hostConfig: { ...record.hostConfig, Init: withInit },
        image: { config: image?.imageConfig.config },
        rootfs,
        containerDir: this.containers.dir(id),
        mounts: await this.resolveMounts(record),
        cgroupVersion: this.options.cgroupVersion,
        ...(netnsPath ? { networkNamespacePath: netnsPath } : {}),
        namespacePath: (kind, reference) => this.sharedNamespacePath(kind, reference),
        ...(idMap ? { idMap } : {}),
        ...(withInit ? { initPath: this.options.init?.path ?? initBinaryPath() } : {}),
        hostDevices: () => listHostDevices(),
        statDevice: devicesAt,
        availableCapabilities: HOST_CAPABILITIES,
      });
      const outside = takeOutsideSettings(spec);
      if (outside.network) await network;
      await applyNetworkSysctls(outside);
      const bundle = this.runDir(id);
      const maxSize = parseSize(record.hostConfig.LogConfig?.Config?.['max-size']);
      const maxFiles = Number(record.hostConfig.LogConfig?.Config?.['max-file'] ?? '1');
      // A small directory and file, made in this thread (thread-pool round trips cost more).
      rmSync(bundle, { recursive: true, force: true });
      mkdirSync(bundle, { recursive: true });
      writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
      // What an earlier run left in the runtime goes while the network gets its addresses, which
      // /etc/hosts needs.
      await Promise.all([this.options.runtime.delete(id, true).catch(() => undefined), network]);
      this.writeEtcFiles(record, this.hostnameOf(record));
      if (idMap) await shareContainerDir(this.containers.dir(id), idMap);
      const { record: runtimeRecord } = await this.options.runtime.create(id, {
        bundle,
        spec,
        stdio: ['ignore', 'ignore', 'ignore'],
        io: {
          logPath: record.hostConfig.LogConfig?.Type === 'none' ? undefined : record.logPath,
          logMaxSize: maxSize,
          logMaxFiles: Number.isInteger(maxFiles) && maxFiles > 0 ? maxFiles : 1,
          attachSocket: this.attachSocketPath(id),
          openStdin: record.config.OpenStdin === true,
        },
      });
      // The process waits at its start fifo: attach clients connect now and miss nothing.
      for (const pending of this.pendingAttach.get(id) ?? []) pending.connect(this.attachSocketPath(id));
      this.pendingAttach.delete(id);
      const watcher = await attach(this.attachSocketPath(id));
      await applyOomScoreAdj(outside, runtimeRecord.pid);
      await this.options.runtime.start(id);
      record.state = {
        ...record.state,
        Status: 'running',
        Running: true,
        Paused: false,
        Restarting: false,
        OOMKilled: false,
        Dead: false,
        Pid: runtimeRecord.pid,
        ExitCode: 0,
        Error: '',
        StartedAt: new Date().toISOString(),
      };
      record.everStarted = true;
      // The exit is followed while the record is written (writes of a record keep their order).
      saved = this.containers.saveState(record);
      this.publish(record, 'start');
      this.watchExit(record, watcher);
    } catch (failure) {
      // dockerd's answer and State for it: a program that cannot run is a 400 with exit code 127/126.
      const { error: err, exitCode } = startFailure(failure, record.state.ExitCode);
      for (const pending of this.pendingAttach.get(id) ?? []) pending.fail(err);
      this.pendingAttach.delete(id);
      record.state = { ...record.state, Error: describeError(err), ExitCode: exitCode };
      await this.options.runtime.delete(id, true).catch(() => undefined);
      await network?.catch(() => undefined);
      await this.options.networking.tearDown(record).catch(() => undefined);
      await unmount(rootfs).catch(() => undefined);
      await this.containers.saveState(record).catch(() => undefined);
      throw err;
    }
    // The container runs and its exit is followed: a failed write is reported, not undone.
    await saved.catch((err: unknown) =>
      this.options.log.error(`container ${id}: writing its record: ${describeError(err)}`),
    );
  }

  /** Follow the container's exit through an attach session (it also drains nothing: output is discarded). */
  private watchExit(record: ContainerRecord, session?: AttachSession): void {
    const done = (async () => {
      let code: number | undefined;
      if (session) {
        session.output.resume();
        code = await session.exit;
      }
      if (code === undefined) {
        // The shim is gone or we could not attach: wait for the process, then read exit.json.
        while ((await this.options.runtime.state(record.id).catch(() => undefined))?.status === 'running')
          await sleep(100);
      }
      await this.handleExit(record);
    })().catch((err: unknown) => this.options.log.error(`container ${record.id}: ${describeError(err)}`));
    this.exits.set(record.id, done);
  }

  private async handleExit(record: ContainerRecord): Promise<void> {
    const [exit, oomKills] = await Promise.all([
      this.options.runtime.store.exitRecord(record.id),
      this.options.runtime.oomKills(record.id).catch(() => 0),
    ]);
    // A container removed next (AutoRemove) leaves its runtime state and root filesystem to
    // cleanUpLater(): `docker run --rm` waits for neither. Its network goes now, so its ports and
    // address are free once the removal is answered.
    const autoRemove = record.hostConfig.AutoRemove === true;
    if (!autoRemove) await this.options.runtime.delete(record.id, true).catch(() => undefined);
    // Its network and (unless removed next) its root filesystem go side by side.
    await Promise.all([
      this.options.networking
        .tearDown(record)
        .catch((err: unknown) =>
          this.options.log.warn(`container ${record.id}: network teardown: ${describeError(err)}`),
        ),
      autoRemove ? undefined : unmount(this.rootfs(record.id)).catch(() => undefined),
    ]);
    record.state = {
      ...record.state,
      Status: 'exited',
      Running: false,
      Paused: false,
      Restarting: false,
      Pid: 0,
      // Docker reports OOMKilled when the kernel killed a process of the container for memory.
      OOMKilled: oomKills > 0,
      ExitCode: exit?.exitCode ?? 255,
      FinishedAt: exit?.finishedAt ?? new Date().toISOString(),
    };
    // Like Docker's SetRestarting: during the back-off the container stays Running, with no process.
    const restart = !record.hostConfig.AutoRemove && this.shouldRestart(record);
    if (restart) {
      record.restartCount += 1;
      record.state = { ...record.state, Status: 'restarting', Running: true, Restarting: true };
    }
    // A container removed next needs no record of its exit: recovery would remove it too.
    // The exit is known in memory even when the disk is full: waiters and events must not hang on it.
    if (!record.hostConfig.AutoRemove)
      await this.containers
        .saveState(record)
        .catch((err: unknown) =>
          this.options.log.error(`container ${record.id}: recording its exit: ${describeError(err)}`),
        );
    if (record.state.OOMKilled) this.publish(record, 'oom');
    this.publish(record, 'die', { exitCode: String(record.state.ExitCode) });
    this.notify(record, 'next-exit');
    this.notify(record, 'not-running');
    this.exits.delete(record.id);
    if (autoRemove) {
      // Its process is gone; its runtime state and root go after the removal (cleanUpLater()).
      record.manuallyStopped = true;
      await this.removeStopped(record, true, true).catch((err: unknown) =>
        this.options.log.error(`removing ${record.id}: ${describeError(err)}`),
      );
      return;
    }
    // Docker's back-off: 100 ms, doubling each time, at most a minute.
    if (restart)
      this.scheduleRestart(record, Math.min(100 * 2 ** Math.min(record.restartCount - 1, 10), 60_000));
  }

  /** Start a restarting container after `delay` ms, unless it is stopped or removed meanwhile. */
  private scheduleRestart(record: ContainerRecord, delay: number): void {
    setTimeout(() => {
      if (!this.containers.find(record.id) || record.manuallyStopped || !record.state.Restarting) return;
      const started = this.startRecord(record)
        .catch(async (err: unknown) => {
          this.options.log.error(`restarting ${record.id}: ${describeError(err)}`);
          // Like Docker, a restart that cannot start leaves the container exited.
          if (!record.state.Restarting) return;
          record.state = { ...record.state, Status: 'exited', Running: false, Restarting: false };
          await this.containers.saveState(record).catch(() => undefined);
          this.publish(record, 'die', { exitCode: String(record.state.ExitCode) });
          this.notify(record, 'next-exit');
          this.notify(record, 'not-running');
        })
        .finally(() => this.restarts.delete(record.id));
      this.restarts.set(record.id, started);
    }, delay).unref();
  }

  /** Cancel a pending restart (stop, kill, rm -f): the container is left exited, as Docker leaves it. */
  private async cancelRestart(record: ContainerRecord): Promise<void> {
    record.manuallyStopped = true;
    record.state = { ...record.state, Status: 'exited', Running: false, Restarting: false };
    await this.containers.saveState(record);
    this.notify(record, 'next-exit');
    this.notify(record, 'not-running');
  }

  private shouldRestart(record: ContainerRecord): boolean {
    if (record.manuallyStopped) return false;
    const policy = record.hostConfig.RestartPolicy;
    switch (policy?.Name) {
      case 'always':
      case 'unless-stopped':
        return true;
      case 'on-failure':
        return (
          record.state.ExitCode !== 0 &&
          (!policy.MaximumRetryCount || record.restartCount < policy.MaximumRetryCount)
        );
      default:
        return false;
    }
  }

  /** After a daemon restart: containers whose shim still runs are watched again; others are marked exited. */
  private async recover(): Promise<void> {
    const inRuntime = new Set(await this.options.runtime.store.ids());
    for (const record of this.containers.list()) {
      if (!record.state.Running) {
        if (inRuntime.has(record.id)) {
          // A start cut short after the runtime made the container and before its record said
          // so: nothing follows that process, and the record says it never ran. It goes.
          await this.dropRuntimeContainer(record.id).catch((err: unknown) =>
            this.options.log.warn(
              `container ${record.id}: removing an unrecorded start: ${describeError(err)}`,
            ),
          );
        }
        // Like dockerd, a container to be removed at its exit that is not running goes now.
        if (record.hostConfig.AutoRemove) {
          record.manuallyStopped = true;
          await this.removeStopped(record, true, false).catch((err: unknown) =>
            this.options.log.warn(`removing ${record.id}: ${describeError(err)}`),
          );
        }
        continue;
      }
      // Restarting ones have no process; open() starts them once everything else is in place.
      if (!record.state.Running || record.state.Restarting) continue;
      const status = (await this.options.runtime.state(record.id).catch(() => undefined))?.status;
      if (status === 'running' || status === 'paused') {
        await this.options.networking
          .restore(record)
          .catch((err: unknown) =>
            this.options.log.warn(`container ${record.id}: network restore: ${describeError(err)}`),
          );
        const session = await attach(this.attachSocketPath(record.id)).catch(() => undefined);
        this.watchExit(record, session);
      } else {
        await this.handleExit(record);
      }
    }
  }

  /** The namespace file of a running container, for `--network/--ipc/--pid container:<ref>`. */
  private sharedNamespacePath(kind: 'network' | 'ipc' | 'pid', reference: string): string {
    const other = this.containers.find(reference);
    if (!other) throw notFound(`No such container: ${reference}`);
    if (!isLive(other.state))
      throw conflict(
        `cannot join the ${kind} namespace of ${other.name}: container ${other.id} is not running`,
      );
    if (kind === 'network' && other.netnsPath) return other.netnsPath;
    const file = { network: 'net', ipc: 'ipc', pid: 'pid' }[kind];
    return `/proc/${other.state.Pid}/ns/${file}`;
  }

  // ---- networks -------------------------------------------------------------------------------

  async connectNetwork(reference: string, network: string, settings: EndpointSettings): Promise<void> {
    const record = this.containers.get(reference);
    if (containerRef(record.hostConfig.NetworkMode) !== undefined || record.hostConfig.NetworkMode === 'host')
      throw invalidArgument(
        'container sharing network namespace with another container or host cannot be connected to any other network',
      );
    const joined = await this.options.networking.connect(record, network, settings);
    await this.containers.save(record);
    if (record.state.Running) this.writeEtcFiles(record, this.hostnameOf(record));
    this.publishNetwork(joined.id, joined.name, joined.driver, 'connect', record.id);
  }

  async disconnectNetwork(reference: string, network: string, force: boolean): Promise<void> {
    const record = this.containers.find(reference);
    if (!record) {
      if (force) return;
      throw notFound(`No such container: ${reference}`);
    }
    const left = await this.options.networking.disconnect(record, network, force);
    await this.containers.save(record);
    if (left.id) this.publishNetwork(left.id, left.name, left.driver, 'disconnect', record.id);
  }

  publishNetwork(id: string, name: string, driver: string, action: string, container?: string): void {
    this.options.events.publish({
      Type: 'network',
      Action: action,
      Actor: { ID: id, Attributes: { name, type: driver, ...(container ? { container } : {}) } },
    });
  }

  /** Containers that belong to a network (running or not), for `network rm`. */
  networkUsers(name: string): string[] {
    return this.containers
      .list()
      .filter((c) => c.networks?.[name] !== undefined && c.state.Running)
      .map((c) => c.id);
  }

  private hostnameOf(record: ContainerRecord): string {
    return containerHostname({
      id: record.id,
      config: record.config,
      hostConfig: record.hostConfig,
      hostHostname: osHostname(),
    });
  }

  /** The id maps of the container's own user namespace (userns-remap), if it has one. */
  idMapOf(record: ContainerRecord): IdMap | undefined {
    return containerIdMap(this.options.userns, record.hostConfig);
  }

  /** Mount the container's snapshot on `target`, its layers remapped when the container is; `name` names scratch space. */
  async mountSnapshot(record: ContainerRecord, target: string, name: string): Promise<void> {
    if (this.remappedLayers !== undefined && this.idMapOf(record) !== undefined)
      await this.remappedLayers.mount(record.snapshotKey, target, name);
    else await mountAll(await this.options.snapshotter.mounts(record.snapshotKey), target);
  }

  /** Remove shifted layer copies that no image or container needs any more (userns.ts). */
  async sweepRemappedLayers(): Promise<void> {
    if (this.remappedLayers?.strategy !== 'shift') return;
    try {
      const removed = await this.remappedLayers.sweep(
        await layersInUse(this.options.images, this.options.snapshotter),
      );
      for (const chainId of removed)
        this.options.log.info(`userns-remap: removed the shifted copy of ${chainId}`);
    } catch (err) {
      this.options.log.warn(`userns-remap: removing unused shifted layers: ${describeError(err)}`);
    }
  }

  /**
   * Runtime containers (bundles under the exec root's containers/) of containers that are gone:
   * berthd stopped between removing a record and deleting what the runtime kept (cleanUpLater()).
   */
  private async removeOrphanedRuntimeState(): Promise<void> {
    const bundles = join(this.options.execRoot, 'containers') + '/';
    for (const { record } of await this.options.runtime.list())
      if (record.bundle.startsWith(bundles) && !this.containers.find(record.id))
        await this.dropRuntimeContainer(record.id).catch(() => undefined);
  }

  /**
   * Delete the runtime's container (its processes, cgroups and state) and unmount the root;
   * rejects when the root stays mounted.
   */
  private async dropRuntimeContainer(id: string): Promise<void> {
    await this.options.runtime.delete(id, true).catch(() => undefined);
    await unmount(this.rootfs(id)).catch((err: unknown) => {
      if (!(err instanceof MountError && err.errno === 'EINVAL')) throw err; // EINVAL: not mounted
    });
  }

  /** Writable snapshots of containers whose removal (or creation) a crash interrupted. */
  private async removeOrphanedSnapshots(): Promise<void> {
    const used = new Set(this.containers.list().map((c) => c.snapshotKey));
    const orphans: string[] = [];
    await this.options.snapshotter.walk((info) => {
      if (info.kind === 'active' && /^[0-9a-f]{64}$/.test(info.name) && !used.has(info.name))
        orphans.push(info.name);
    });
    // Bundles of containers that are gone (their removal was under way when berthd stopped).
    for (const id of await readdir(join(this.options.execRoot, 'containers')).catch(() => []))
      if (/^[0-9a-f]{64}$/.test(id) && !this.containers.find(id))
        await rm(this.runDir(id), { recursive: true, force: true });
    for (const key of orphans) {
      await unmount(join(this.containers.dir(key), 'rootfs')).catch(() => undefined);
      await this.options.snapshotter
        .remove(key)
        .then(() => this.options.log.info(`removed the snapshot of container ${key}, which no longer exists`))
        .catch((err: unknown) => this.options.log.warn(`orphaned snapshot ${key}: ${describeError(err)}`));
    }
  }

  // ---- stop, kill, wait, remove ---------------------------------------------------------------

  private notify(record: ContainerRecord, condition: WaitCondition): void {
    const waiters = this.waiters.get(record.id) ?? [];
    const remaining: Waiter[] = [];
    for (const waiter of waiters) {
      if (waiter.condition === condition) waiter.resolve({ StatusCode: record.state.ExitCode, Error: null });
      else remaining.push(waiter);
    }
    this.waiters.set(record.id, remaining);
  }

  wait(
    reference: string,
    condition: WaitCondition = 'not-running',
  ): Promise<{ StatusCode: number; Error: { Message: string } | null }> {
    const record = this.containers.get(reference);
    if (condition === 'not-running' && !record.state.Running) {
      return Promise.resolve({ StatusCode: record.state.ExitCode, Error: null });
    }
    return new Promise((resolve) => {
      const list = this.waiters.get(record.id) ?? [];
      list.push({ condition, resolve });
      this.waiters.set(record.id, list);
    });
  }

  async kill(reference: string, signal = 'SIGKILL'): Promise<void> {
    const record = this.containers.get(reference);
    if (!record.state.Running) {
      throw conflict(`Cannot kill container: ${reference}: container ${record.id} is not running`);
    }
    const number = parseSignal(signal);
    if (record.state.Restarting) {
      // No process between two runs: SIGKILL or the stop signal cancels the restart, as in Docker.
      if (number === 9 || number === parseSignal(record.config.StopSignal || 'SIGTERM'))
        await this.cancelRestart(record);
      return;
    }
    if (number === 9 || number === 15) record.manuallyStopped = true;
    await this.options.runtime.kill(record.id, String(number), false);
    this.publish(record, 'kill', { signal: String(number) });
  }

  /** Docker's stop: the stop signal, then SIGKILL after the timeout. Returns false if it was not running. */
  async stop(reference: string, timeoutSeconds?: number, signal?: string): Promise<boolean> {
    const record = this.containers.get(reference);
    // A restart under way is stopped once it has started, not left to start after the stop.
    await this.restarts.get(record.id);
    if (record.state.Restarting) {
      // Between two runs of a restart policy: the pending restart is cancelled, as Docker's stop does.
      await this.cancelRestart(record);
      return true;
    }
    if (!record.state.Running) return false;
    record.manuallyStopped = true;
    const exited = this.wait(record.id, 'next-exit');
    const stopSignal = signal || record.config.StopSignal || 'SIGTERM';
    const timeout = timeoutSeconds ?? record.config.StopTimeout ?? 10;
    if (record.state.Paused) await this.options.runtime.resume(record.id).catch(() => undefined);
    await this.options.runtime.kill(record.id, String(parseSignal(stopSignal)), false).catch(() => undefined);
    this.publish(record, 'kill', { signal: String(parseSignal(stopSignal)) });
    const timer =
      timeout >= 0
        ? sleep(timeout * 1000).then(() => 'timeout' as const)
        : new Promise<never>(() => undefined);
    if ((await Promise.race([exited.then(() => 'exited' as const), timer])) === 'timeout') {
      await this.options.runtime.kill(record.id, '9', true).catch(() => undefined);
      this.publish(record, 'kill', { signal: '9' });
      await exited;
    }
    this.publish(record, 'stop');
    return true;
  }

  async restart(reference: string, timeoutSeconds?: number): Promise<void> {
    await this.stop(reference, timeoutSeconds);
    const record = this.containers.get(reference);
    record.manuallyStopped = false;
    await this.startRecord(record);
    this.publish(record, 'restart');
  }

  async pause(reference: string): Promise<void> {
    const record = this.containers.get(reference);
    if (!record.state.Running) throw conflict(`Container ${record.id} is not running`);
    if (record.state.Restarting) throw conflict(restartingMessage(record.id));
    if (record.state.Paused) throw conflict(`Container ${record.id} is already paused`);
    await this.options.runtime.pause(record.id);
    record.state = { ...record.state, Status: 'paused', Paused: true };
    await this.containers.saveState(record);
    this.publish(record, 'pause');
  }

  async unpause(reference: string): Promise<void> {
    const record = this.containers.get(reference);
    if (!record.state.Paused) throw conflict(`Container ${record.id} is not paused`);
    await this.options.runtime.resume(record.id);
    record.state = { ...record.state, Status: 'running', Paused: false };
    await this.containers.saveState(record);
    this.publish(record, 'unpause');
  }

  async remove(reference: string, options: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const record = this.containers.get(reference);
    // A restart under way finishes first: its mounts and processes must not race the removal.
    await this.restarts.get(record.id);
    if (record.state.Restarting) {
      if (!options.force)
        throw conflict(
          `cannot remove container "/${record.name}": container is restarting: stop the container before removing or force remove`,
        );
      await this.cancelRestart(record);
    }
    if (record.state.Running) {
      if (!options.force) {
        throw conflict(
          `cannot remove container "/${record.name}": container is running: stop the container before removing or force remove`,
        );
      }
      record.manuallyStopped = true;
      const exited = this.wait(record.id, 'next-exit');
      await this.options.runtime.kill(record.id, '9', true).catch(() => undefined);
      // A frozen process never acts on the SIGKILL: thaw a paused container, as dockerd does.
      if (record.state.Paused) await this.options.runtime.resume(record.id).catch(() => undefined);
      await exited;
      if (!this.containers.find(record.id)) return; // AutoRemove took it
    }
    // A pending restart must not start (and recreate the directories of) what is being removed.
    record.manuallyStopped = true;
    await this.exits.get(record.id);
    if (await isMountPoint(this.rootfs(record.id)))
      await unmount(this.rootfs(record.id)).catch(() => undefined);
    await this.options.runtime.delete(record.id, true).catch(() => undefined);
    await this.removeStopped(record, options.volumes === true, false);
  }

  /**
   * Remove a container that has no process left; `runtimeLeft`: its runtime state and mounted
   * root are still there (cleanUpLater() removes them first).
   */
  private async removeStopped(
    record: ContainerRecord,
    volumes: boolean,
    runtimeLeft: boolean,
  ): Promise<void> {
    // The record goes first: a crash after it leaves an orphaned snapshot and directories, which
    // the next start of berthd removes, never a container whose filesystem is gone.
    await this.containers.remove(record);
    this.cleanUpLater(record, runtimeLeft);
    if (volumes || record.hostConfig.AutoRemove) {
      for (const volume of Object.values(record.volumes ?? {})) {
        if (volume.anonymous)
          await this.options.volumes
            .remove(volume.name, this.volumeUsers(volume.name), true)
            .then(() => this.options.events.publish(volumeEvent('destroy', volume.name)))
            .catch(() => undefined);
      }
    }
    this.publish(record, 'destroy');
    this.notify(record, 'removed');
    this.waiters.delete(record.id);
  }

  /**
   * The directory, writable snapshot and bundle of a removed container go after its removal is
   * answered, as containerd's garbage collection removes snapshots: `docker run --rm` does not
   * wait for a tree of files to be deleted. What needs them gone (image removal and prune, build
   * cache prune, shutdown) waits for settled(); a crash leaves leftovers that open() removes.
   */
  private cleanUpLater(record: ContainerRecord, runtimeLeft: boolean): void {
    const done = (async () => {
      // Not deleted through a root still mounted: left for the next start's sweep instead.
      if (runtimeLeft) await this.dropRuntimeContainer(record.id);
      await Promise.all([
        this.containers.removeDirectory(record.id),
        this.options.snapshotter.remove(record.snapshotKey).catch((err: unknown) => {
          if (!(err instanceof Error && /not found|no such|does not exist/i.test(err.message))) throw err;
        }),
        rm(this.runDir(record.id), { recursive: true, force: true }),
      ]);
    })()
      .then(() => this.sweepRemappedLayers())
      .catch((err: unknown) =>
        this.options.log.warn(`container ${record.id}: removing what it left on disk: ${describeError(err)}`),
      );
    this.cleanups.add(done);
    void done.then(() => this.cleanups.delete(done));
  }

  /** Resolves once what removed containers left on disk is gone (cleanUpLater()). */
  async settled(): Promise<void> {
    while (this.cleanups.size > 0) await Promise.all([...this.cleanups]);
  }

  async rename(reference: string, newName: string): Promise<void> {
    const record = this.containers.get(reference);
    const name = validateName(newName);
    const oldName = record.name;
    await this.containers.rename(record, name);
    this.publish(record, 'rename', { oldName: `/${oldName}` });
  }

  // ---- attach ---------------------------------------------------------------------------------

  /** An attach session now (running) or as soon as the container starts (created). */
  async attachSession(reference: string): Promise<AttachSession> {
    const record = this.containers.get(reference);
    if (record.state.Restarting) throw conflict(restartingMessage(record.id));
    if (record.state.Running) return attach(this.attachSocketPath(record.id));
    if (record.state.Status !== 'created' && record.state.Status !== 'exited') {
      throw conflict(`You cannot attach to a ${record.state.Status} container`);
    }
    return new Promise((resolve, reject) => {
      const list = this.pendingAttach.get(record.id) ?? [];
      list.push({ connect: (socket) => void attach(socket).then(resolve, reject), fail: reject });
      this.pendingAttach.set(record.id, list);
    });
  }

  pids(id: string): Promise<number[]> {
    return this.options.runtime.pids(id);
  }

  cgroupStats(id: string): ReturnType<Runtime['stats']> {
    return this.options.runtime.stats(id);
  }

  /** `docker update`: new limits (live when running) and restart policy. */
  async update(
    reference: string,
    changes: Resources & { RestartPolicy?: HostConfig['RestartPolicy'] },
  ): Promise<string[]> {
    const record = this.containers.get(reference);
    const warnings: string[] = [];
    const merged: HostConfig = { ...record.hostConfig };
    for (const [key, value] of Object.entries(changes)) {
      if (value === undefined || value === null) continue;
      // Zero means "not changed" for the numeric fields in Docker's update body.
      if (typeof value === 'number' && value === 0) continue;
      if (typeof value === 'string' && value === '') continue;
      (merged as Record<string, unknown>)[key] = value;
    }
    if (changes.RestartPolicy?.Name) merged.RestartPolicy = changes.RestartPolicy;
    const resources = containerResources(merged, {
      cgroupVersion: this.options.cgroupVersion,
      cpuCount: availableParallelism(),
      swapAccounting: true,
      warn: (message) => warnings.push(message),
    });
    if (isLive(record.state)) await this.options.runtime.update(record.id, resources);
    record.hostConfig = merged;
    await this.containers.save(record);
    this.publish(record, 'update');
    return warnings;
  }

  record(reference: string): ContainerRecord {
    const record = this.containers.find(reference);
    if (!record) throw notFound(`No such container: ${reference}`);
    return record;
  }

  /** Containers using an image, for `rmi` checks. */
  usingImage(imageId: string): { id: string; running: boolean } | undefined {
    const user = this.containers.list().find((c) => c.image === imageId);
    return user ? { id: user.id, running: user.state.Running } : undefined;
  }
}

/** Docker's log-opt sizes: `10m`, `1g`, `512k`, plain bytes. */
export function parseSize(value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)b?$/i.exec(value.trim());
  if (!match) throw invalidArgument(`invalid size: '${value}'`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? '').toLowerCase()] ?? 1;
  return Math.floor(Number(match[1]) * unit);
}

/** Copy what the image has at `source` into an empty volume directory (Docker's copy-up), owners and modes kept. */
async function copyUp(source: string, volume: string): Promise<void> {
  const existing = await readdir(volume).catch(() => ['?']);
  if (existing.length > 0) return;
  const entries = await readdir(source).catch(() => [] as string[]);
  if (entries.length === 0) return;
  await runProgram('cp', ['-a', '--', `${source}/.`, volume]);
}

/** The defaults Docker stores in HostConfig at create (clients read them back from inspect). */
function withHostConfigDefaults(hostConfig: HostConfig): HostConfig {
  return {
    ...hostConfig,
    NetworkMode: hostConfig.NetworkMode || 'default',
    LogConfig: hostConfig.LogConfig?.Type
      ? hostConfig.LogConfig
      : { Type: 'json-file', Config: hostConfig.LogConfig?.Config ?? {} },
    RestartPolicy: hostConfig.RestartPolicy?.Name
      ? hostConfig.RestartPolicy
      : { Name: 'no', MaximumRetryCount: 0 },
    Binds: hostConfig.Binds ?? null,
    PortBindings: hostConfig.PortBindings ?? {},
    AutoRemove: hostConfig.AutoRemove ?? false,
    Privileged: hostConfig.Privileged ?? false,
    ReadonlyRootfs: hostConfig.ReadonlyRootfs ?? false,
    ShmSize: hostConfig.ShmSize || 64 * 1024 * 1024,
  };
}
