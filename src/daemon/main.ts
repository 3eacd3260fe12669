/**
 * berthd: reads the configuration, prepares its directories and PID file, serves the API on every
 * listener and metrics on `metrics-addr`, reloads on SIGHUP and shuts down cleanly on SIGTERM or
 * SIGINT (listeners closed, socket and PID file removed). Engine routes plug in at registerRoutes.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, stat } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../common/atomic-file.js';
import { describeError, errnoCode, invalidArgument } from '../common/errors.js';
import { API_VERSION, BERTH_VERSION } from '../common/version.js';
import { EventBus } from '../engine/events.js';
import { startEngine } from '../engine/wire.js';
import { metricsHandler, MetricsRegistry, processCollector } from '../api/metrics.js';
import { Router } from '../api/router.js';
import { ApiServer } from '../api/server.js';
import {
  registerSystemRoutes,
  type DockerInfo,
  type InfoSettings,
  type SystemOptions,
} from '../api/system.js';
import { shimPath } from '../runtime/shim-process.js';
import { applyReload, BUILTIN_RUNTIME, buildConfig, parseConfigFile, type DaemonConfig } from './config.js';
import { parseCommandLine, usage, type CommandLine } from './flags.js';
import { formatAddress, parseHost } from './hosts.js';
import { DEFAULT_GROUP, openListeners, type Listener } from './listeners.js';
import { Logger } from './log.js';
import { removePidFile, writePidFile } from './pidfile.js';

/** The configuration from the file named on the command line (if any) and the flags. */
export async function loadConfig(cmd: CommandLine): Promise<DaemonConfig> {
  const path = cmd.configFile;
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT' || cmd.configFileExplicit) {
      throw invalidArgument(`unable to configure berthd with file ${path}: ${describeError(err)}`);
    }
  }
  if (text === undefined || text.trim() === '') return buildConfig(cmd.flags);
  let values: Record<string, unknown>;
  try {
    values = parseConfigFile(text);
  } catch (err) {
    throw invalidArgument(`unable to configure berthd with file ${path}: ${describeError(err)}`);
  }
  return buildConfig(cmd.flags, { path, values });
}

/** The engine id, kept in the data root across restarts (what /info reports as ID). */
async function engineId(dataRoot: string): Promise<string> {
  const path = join(dataRoot, 'engine-id');
  const existing = (await readFile(path, 'utf8').catch(() => '')).trim();
  if (existing !== '') return existing;
  const id = randomUUID();
  await writeFileAtomic(path, `${id}\n`, { mode: 0o600 });
  return id;
}

async function buildTime(): Promise<string | undefined> {
  try {
    return (await stat(fileURLToPath(import.meta.url))).mtime.toISOString();
  } catch {
    return undefined;
  }
}

function builtinRuntimePath(): string {
  try {
    return shimPath();
  } catch {
    return 'berth-shim';
  }
}

/** What the rest of the daemon (the engine, later) plugs into. */
export interface DaemonServices {
  /** The running configuration; a reload (SIGHUP) updates its reloadable fields in place. */
  config: DaemonConfig;
  router: Router;
  events: EventBus;
  metrics: MetricsRegistry;
  log: Logger;
  id: string;
  /** The engine's part of /info (counts, storage, plugins, warnings); zero counts until set. */
  engineInfo?: () => Promise<Partial<DockerInfo>>;
}

/**
 * Registers the API's routes: the system routes, then the engine's (which also sets
 * `services.engineInfo` and registers its metrics collectors).
 */
function registerRoutes(services: DaemonServices, system: SystemOptions): void {
  registerSystemRoutes(services.router, {
    ...system,
    engineInfo: () => services.engineInfo?.() ?? Promise.resolve({}),
  });
}

export interface Daemon {
  services: DaemonServices;
  listeners: Listener[];
  reload(): Promise<void>;
  close(): Promise<void>;
}

export async function startDaemon(config: DaemonConfig, cmd: CommandLine, log: Logger): Promise<Daemon> {
  await mkdir(config.dataRoot, { recursive: true, mode: 0o710 });
  await mkdir(config.execRoot, { recursive: true, mode: 0o711 });
  const pidFile = join(config.execRoot, 'berthd.pid');
  await writePidFile(pidFile);
  const cleanups: Array<() => Promise<void>> = [() => removePidFile(pidFile)];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.reverse()) await step().catch((err) => log.error(describeError(err)));
  };
  try {
    const id = await engineId(config.dataRoot);
    const services: DaemonServices = {
      config,
      router: new Router(),
      events: new EventBus(),
      metrics: new MetricsRegistry(),
      log,
      id,
    };
    const listenerWarnings: string[] = [];
    const settings = (): InfoSettings => ({
      dataRoot: config.dataRoot,
      debug: config.debug,
      logDriver: config.logDriver,
      liveRestore: config.liveRestore,
      defaultRuntime: config.defaultRuntime,
      runtimes: { [BUILTIN_RUNTIME]: { path: builtinRuntimePath() }, ...config.runtimes },
      insecureRegistries: config.insecureRegistries,
      registryMirrors: config.registryMirrors,
      defaultAddressPools: config.defaultAddressPools,
      usernsRemap: config.usernsRemap,
    });
    registerRoutes(services, {
      id,
      events: services.events,
      settings,
      warnings: () => listenerWarnings,
      buildTime: await buildTime(),
    });
    // The engine's routes come after the system routes; the first match wins.
    const { info, close: closeEngine } = await startEngine({
      dataRoot: config.dataRoot,
      execRoot: config.execRoot,
      insecureRegistries: config.insecureRegistries,
      registryMirrors: config.registryMirrors,
      ...(config.usernsRemap ? { usernsRemap: config.usernsRemap } : {}),
      init: { enabled: config.init === true, ...(config.initPath ? { path: config.initPath } : {}) },
      runtimes: () => ({ defaultRuntime: config.defaultRuntime, configured: Object.keys(config.runtimes) }),
      network: {
        bridge: config.bridge,
        ...(config.bip ? { bip: config.bip } : {}),
        mtu: config.mtu,
        addressPools: config.defaultAddressPools,
        firewallTable: process.env.BERTH_FIREWALL_TABLE || 'berth',
        cniConfigDir: config.cniConfigDir,
      },
      router: services.router,
      events: services.events,
      metrics: services.metrics,
      log,
    });
    cleanups.push(closeEngine);
    services.engineInfo = info;
    const api = new ApiServer({ router: services.router, logger: log });

    const addresses = config.hosts.map((host) => parseHost(host, config.tls));
    const listeners = await openListeners(addresses, {
      group: { name: config.group ?? DEFAULT_GROUP, explicit: config.group !== undefined },
      tls:
        config.tls && config.tlsCert !== undefined && config.tlsKey !== undefined
          ? { ca: config.tlsCaCert, cert: config.tlsCert, key: config.tlsKey, verify: config.tlsVerify }
          : undefined,
      insecureTcpForce: cmd.insecureTcpForce,
      attach: (server) => api.attach(server),
      log,
    });
    // Cleanups run last first: streams and hijacked connections end, then the listeners close.
    cleanups.push(async () => {
      await Promise.all(listeners.map((listener) => listener.close()));
    });
    cleanups.push(async () => {
      api.close();
      services.events.close();
    });
    for (const listener of listeners) {
      if (listener.warning !== undefined) listenerWarnings.push(listener.warning);
      log.info(`API listen on ${listener.address.replace(/^unix:\/\//, '')}`);
    }

    services.metrics.register(processCollector());
    services.metrics.register(() => [
      {
        name: 'berth_engine_info',
        help: 'The berthd version and API version, as labels.',
        type: 'gauge',
        samples: [
          { labels: { version: BERTH_VERSION, api_version: API_VERSION, kernel: os.release() }, value: 1 },
        ],
      },
      {
        name: 'berth_events_subscribers',
        help: 'Clients following GET /events.',
        type: 'gauge',
        samples: [{ value: services.events.subscriberCount }],
      },
    ]);
    if (config.metricsAddr !== undefined) {
      const address = parseHost(`tcp://${config.metricsAddr}`, false);
      if (address.kind !== 'tcp') throw invalidArgument(`metrics-addr: expected host:port`);
      const server = http.createServer(metricsHandler(services.metrics, (message) => log.error(message)));
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) =>
          reject(
            invalidArgument(`metrics-addr: cannot listen on ${config.metricsAddr}: ${describeError(err)}`),
          ),
        );
        server.listen(address.port, address.host, () => resolve());
      });
      cleanups.push(
        () =>
          new Promise((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      );
      log.info(`Metrics listen on ${formatAddress(address)}/metrics`);
    }

    let closing: Promise<void> | undefined;
    return {
      services,
      listeners,
      reload: async () => {
        try {
          const attributes = applyReload(config, await loadConfig(cmd));
          log.setLevel(config.logLevel);
          services.events.publish({
            Type: 'daemon',
            Action: 'reload',
            Actor: { ID: id, Attributes: { ...attributes, name: os.hostname() } },
          });
          log.info('Reloaded the configuration');
        } catch (err) {
          log.error(`Reloading the configuration failed, keeping the running one: ${describeError(err)}`);
        }
      },
      close: () => (closing ??= cleanup()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The berthd program; resolves to the exit code. */
export async function runDaemon(args: string[]): Promise<number> {
  let cmd: CommandLine;
  let config: DaemonConfig;
  try {
    cmd = parseCommandLine(args);
    if (cmd.help) {
      process.stdout.write(usage());
      return 0;
    }
    if (cmd.version) {
      process.stdout.write(`berthd version ${BERTH_VERSION}\n`);
      return 0;
    }
    config = await loadConfig(cmd);
  } catch (err) {
    process.stderr.write(`berthd: ${describeError(err)}\n`);
    return 1;
  }
  if (cmd.validate) {
    process.stdout.write('configuration OK\n');
    return 0;
  }
  const log = new Logger(config.logLevel);
  let daemon: Daemon;
  try {
    daemon = await startDaemon(config, cmd, log);
  } catch (err) {
    process.stderr.write(`berthd: ${describeError(err)}\n`);
    return 1;
  }
  log.info(`berthd ${BERTH_VERSION} has completed initialization (API ${API_VERSION})`);
  return new Promise((resolve) => {
    let signals = 0;
    const stop = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals > 1) {
        log.warn(`Received ${signal} again: exiting without finishing the shutdown`);
        resolve(1);
        return;
      }
      log.info(`Processing signal ${signal}: shutting down`);
      daemon.close().then(
        () => resolve(0),
        (err) => {
          log.error(describeError(err));
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => void daemon.reload());
  });
}
