/** Builds the engine's services for berthd and registers their API routes. */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { invalidArgument } from '../common/errors.js';
import type { Router } from '../api/router.js';
import type { DockerInfo } from '../api/system.js';
import { ImageService } from '../image/image-service.js';
import { RegistryClient } from '../image/registry/client.js';
import { openSnapshotter } from '../snapshot/open.js';
import { Runtime } from '../runtime/runtime.js';
import { defaultRuntimeOptions } from '../runtime/default-runtime.js';
import { hostCgroupHierarchies } from '../runtime/cgroup-mounts.js';
import { Engine } from './engine.js';
import type { RuntimeNames } from './create-checks.js';
import type { Builder } from '../build/builder.js';
import { isLive } from './container-record.js';
import { initBinaryPath } from './init-binary.js';
import type { EventBus } from './events.js';
import { registerContainerRoutes, registerExecRoutes, registerImageRoutes } from './routes.js';
import { ExecManager } from './exec.js';
import { VolumeStore } from '../volume/local.js';
import { registerVolumeRoutes } from './volume-routes.js';
import { registerNetworkRoutes } from './network-routes.js';
import { ContainerNetworking } from './container-network.js';
import { NetworkManager } from '../network/manager.js';
import { registerContainerFsRoutes } from './fs-routes.js';
import { startHealthChecks } from './health.js';
import { openBuilder, registerBuildRoute } from '../build/route.js';
import { buildBridge } from './build-network.js';
import type { MetricCollector } from '../api/metrics.js';
import { registerAuthRoute } from './auth-route.js';
import { registerPushRoute } from './push-route.js';
import { registerSystemDfRoute } from './system-df.js';
import { containerMetricsCollector } from './container-metrics.js';
import { prepareRemappedRoot, resolveRemap } from './userns.js';

export interface EngineWiring {
  dataRoot: string;
  execRoot: string;
  insecureRegistries: string[];
  registryMirrors: string[];
  /** daemon.json `userns-remap` (userns.ts). */
  usernsRemap?: string;
  /** daemon.json `init` (an init in every container that does not refuse one) and `init-path`. */
  init?: { enabled: boolean; path?: string };
  /** daemon.json `default-runtime` and the names in `runtimes` (create checks them). */
  runtimes?: () => RuntimeNames;
  network: {
    bridge: string;
    bip?: string;
    mtu: number;
    addressPools: Array<{ base: string; size: number }>;
    firewallTable: string;
    cniConfigDir?: string;
  };
  router: Router;
  events: EventBus;
  /** Where the per-container metrics collector is registered (the metrics-addr listener's registry). */
  metrics?: { register(collector: MetricCollector): () => void };
  log: { info(message: string): void; warn(message: string): void; error(message: string): void };
}

/** daemon.json `init-path` must name an executable file: every `--init` container would fail otherwise. */
async function checkInitPath(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile() || (info.mode & 0o111) === 0)
    throw invalidArgument(`init-path: ${path} is not an executable file`);
}

export async function startEngine(
  wiring: EngineWiring,
): Promise<{ engine: Engine; info: () => Promise<Partial<DockerInfo>>; close: () => Promise<void> }> {
  if (wiring.init?.path !== undefined) await checkInitPath(wiring.init.path);
  const snapshotter = await openSnapshotter(wiring.dataRoot, 'overlayfs');
  // The image service asks the engine (created next) which containers use an image.
  const late: { engine?: Engine; builder?: Builder } = {};
  const images = await ImageService.open({
    dataRoot: wiring.dataRoot,
    snapshotter,
    registry: new RegistryClient({
      insecureRegistries: wiring.insecureRegistries,
      mirrors: wiring.registryMirrors,
    }),
    containerUsing: (imageId: string) => late.engine?.usingImage(imageId),
    settle: async () => late.engine?.settled(),
    held: async () => (await late.builder?.held()) ?? { manifests: [], chainIds: [] },
    // Shifted layer copies (userns-remap) of a removed image go with it.
    onEvent: (event) => {
      if (event.action === 'delete') void late.engine?.sweepRemappedLayers();
    },
  });
  const runtime = new Runtime(defaultRuntimeOptions(join(wiring.execRoot, 'runtime')));
  // Remapped: named volumes live under the per-range root <data-root>/<uid>.<gid>, like dockerd's.
  const userns = wiring.usernsRemap ? await resolveRemap(wiring.usernsRemap) : undefined;
  const volumes = await VolumeStore.open(
    userns ? await prepareRemappedRoot(wiring.dataRoot, userns) : wiring.dataRoot,
  );
  const networks = await NetworkManager.open({
    dataRoot: wiring.dataRoot,
    execRoot: wiring.execRoot,
    defaultBridge: {
      name: wiring.network.bridge,
      ...(wiring.network.bip ? { bip: wiring.network.bip } : {}),
      mtu: wiring.network.mtu,
    },
    addressPools: wiring.network.addressPools,
    firewallTable: wiring.network.firewallTable,
    ...(wiring.network.cniConfigDir ? { cniConfigDir: wiring.network.cniConfigDir } : {}),
    log: wiring.log,
  });
  const cgroupVersion = hostCgroupHierarchies().some((h) => h.version === 1) ? 1 : 2;
  const engine = await Engine.open({
    dataRoot: wiring.dataRoot,
    execRoot: wiring.execRoot,
    images,
    snapshotter,
    runtime,
    volumes,
    networking: new ContainerNetworking(networks),
    events: wiring.events,
    cgroupVersion,
    ...(userns ? { userns } : {}),
    ...(wiring.init ? { init: wiring.init } : {}),
    ...(wiring.runtimes ? { runtimes: wiring.runtimes } : {}),
    log: wiring.log,
  });
  late.engine = engine;
  registerContainerRoutes(wiring.router, engine);
  registerImageRoutes(wiring.router, images, engine);
  registerVolumeRoutes(wiring.router, volumes, engine);
  registerNetworkRoutes(wiring.router, engine);
  registerContainerFsRoutes(wiring.router, engine);
  registerAuthRoute(wiring.router, images.registry);
  registerPushRoute(wiring.router, images);
  const builder = await openBuilder({
    dataRoot: wiring.dataRoot,
    images,
    snapshotter,
    runtime,
    bridge: buildBridge(networks),
    warn: (message) => wiring.log.warn(message),
  });
  late.builder = builder;
  registerSystemDfRoute(wiring.router, engine, builder);
  const unregisterMetrics = wiring.metrics?.register(
    containerMetricsCollector({
      containers: () => engine.containers.list(),
      stats: (id) => engine.cgroupStats(id),
    }),
  );
  const healthChecks = startHealthChecks(engine);
  registerBuildRoute(wiring.router, builder, join(wiring.dataRoot, 'build-tmp'));
  registerExecRoutes(wiring.router, new ExecManager(engine, runtime, wiring.execRoot), engine);
  const info = async (): Promise<Partial<DockerInfo>> => {
    const containers = engine.containers.list();
    return {
      Containers: containers.length,
      // Like Docker's counts, a container between two runs of its restart policy is stopped.
      ContainersRunning: containers.filter((c) => isLive(c.state) && !c.state.Paused).length,
      ContainersPaused: containers.filter((c) => c.state.Paused).length,
      ContainersStopped: containers.filter((c) => !isLive(c.state)).length,
      Images: (await images.list()).length,
      // What this engine has of dockerd's plugin kinds.
      Plugins: {
        Volume: ['local'],
        Network: ['bridge', 'host', 'null'],
        Authorization: null,
        Log: ['json-file'],
      },
      // dockerd reports its init-path (docker-init by default): berth's is berth-init.
      InitBinary: wiring.init?.path ?? initBinaryPath() ?? '',
    };
  };
  const close = async (): Promise<void> => {
    healthChecks.close();
    unregisterMetrics?.();
    await engine.settled();
    await networks.close();
  };
  return { engine, info, close };
}
