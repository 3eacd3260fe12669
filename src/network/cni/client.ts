/**
 * The CNI client: runs a network's plugin chain for ADD, CHECK and DEL (spec 1.0.0), keeps the
 * result of each ADD on disk for later CHECK and DEL, and asks plugins which spec versions they
 * speak. Like libcni, with two additions: an ADD that fails part-way undoes what the chain did
 * so far, and a second ADD of the same attachment is refused instead of leaking the first.
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  conflict,
  describeError,
  errnoCode,
  internal,
  invalidArgument,
  notFound,
} from '../../common/errors.js';
import { checkNetworkList, checkPluginType } from './conf.js';
import { cachePath, readCachedResult, removeCachedResult, writeCachedResult } from './cache.js';
import { CniPluginError, invokePlugin } from './invoke.js';
import type { CniCommand } from './invoke.js';
import { encodeResult, MalformedResult, parseResult, parseVersionInfo } from './result.js';
import { checkRuntimeConf, formatCniArgs } from './runtime-conf.js';
import type { CniNetworkList, CniPluginConf, CniResult, CniRuntimeConf, CniVersionInfo } from './types.js';
import { CURRENT_CNI_VERSION, hasCheck } from './version.js';

export const DEFAULT_PLUGIN_DIRS: readonly string[] = ['/usr/lib/cni', '/opt/cni/bin'];
const DEFAULT_TIMEOUT_MS = 60_000;

export interface CniClientOptions {
  /** Where plugin executables are looked up, in order; also passed to plugins as CNI_PATH. */
  pluginDirs?: readonly string[];
  /** Result cache root; results go to `<cacheDir>/results/`. */
  cacheDir: string;
  /** How long one plugin invocation may take before it is killed. */
  timeoutMs?: number;
  /**
   * Run plugins inside this network namespace (a path) instead of the caller's, so that the
   * "host side" of the network (bridge, iptables rules, forwarding sysctls) lives there, as for
   * rootless networking. Needs nsenter from util-linux.
   */
  netns?: string;
}

interface VersionProbe {
  /** Identifies the executable's version on disk, so an upgraded plugin is asked again. */
  stamp: string;
  info: Promise<CniVersionInfo>;
}

export class CniClient {
  readonly pluginDirs: readonly string[];
  readonly cacheDir: string;
  private readonly timeoutMs: number;
  private readonly pluginNetns: string | undefined;
  private readonly versions = new Map<string, VersionProbe>();
  /** The spec forbids parallel operations for one container; calls queue per container ID. */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(options: CniClientOptions) {
    this.pluginDirs = options.pluginDirs ?? DEFAULT_PLUGIN_DIRS;
    this.cacheDir = options.cacheDir;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.pluginNetns = options.netns;
    if (this.pluginDirs.length === 0)
      throw invalidArgument('CNI client: pluginDirs must name at least one directory');
  }

  /** Attach the container to the network: ADD through the chain, prevResult passed along. */
  async add(net: CniNetworkList, rt: CniRuntimeConf): Promise<CniResult> {
    checkNetworkList(net, 'CNI network list');
    checkRuntimeConf(rt, true);
    return this.exclusive(rt.containerId, async () => {
      await this.validate(net);
      if (await exists(cachePath(this.cacheDir, net.name, rt)))
        throw conflict(
          `container ${rt.containerId} is already attached to CNI network "${net.name}" as ${rt.ifName}; delete that attachment first`,
        );
      let result: CniResult | undefined;
      let started = 0;
      try {
        for (const plugin of net.plugins) {
          started++;
          result = await this.addOne(net, plugin, rt, result);
        }
        if (result === undefined) throw internal(`CNI network "${net.name}" has no plugins`);
        await writeCachedResult(this.cacheDir, net, rt, result);
        return result;
      } catch (err) {
        await this.undoAdd(net, net.plugins.slice(0, started), rt, result, err);
        throw err;
      }
    });
  }

  /** Verify the attachment is still as ADD left it; a no-op for networks with disableCheck. */
  async check(net: CniNetworkList, rt: CniRuntimeConf): Promise<void> {
    checkNetworkList(net, 'CNI network list');
    checkRuntimeConf(rt, true);
    if (!hasCheck(net.cniVersion))
      throw invalidArgument(
        `CNI network "${net.name}" has cniVersion ${net.cniVersion}; CHECK needs cniVersion 0.4.0 or later`,
      );
    if (net.disableCheck === true) return;
    return this.exclusive(rt.containerId, async () => {
      const cached = await this.readCache(net, rt);
      if (cached === undefined)
        throw notFound(
          `container ${rt.containerId} has no cached result for CNI network "${net.name}" as ${rt.ifName}; was it added?`,
        );
      await this.runEach('CHECK', net, net.plugins, rt, cached);
    });
  }

  /**
   * Detach the container: DEL through the chain in reverse with the cached result. Safe to repeat
   * and safe when the cache or the network namespace is gone: plugins then release what they can.
   */
  async del(net: CniNetworkList, rt: CniRuntimeConf): Promise<void> {
    checkNetworkList(net, 'CNI network list');
    checkRuntimeConf(rt, false);
    return this.exclusive(rt.containerId, async () => {
      // An unreadable cache must not block the cleanup: DEL without prevResult is allowed.
      const cached = await readCachedResult(this.cacheDir, net.name, rt).catch(() => undefined);
      const netns = rt.netns !== '' && (await exists(rt.netns)) ? rt.netns : '';
      const prev = hasCheck(net.cniVersion) ? cached : undefined;
      await this.runEach('DEL', net, [...net.plugins].reverse(), { ...rt, netns }, prev);
      await removeCachedResult(this.cacheDir, net.name, rt);
    });
  }

  /** The result of the attachment's ADD, from the cache; undefined when it was not added. */
  async cachedResult(net: CniNetworkList, rt: CniRuntimeConf): Promise<CniResult | undefined> {
    checkNetworkList(net, 'CNI network list');
    checkRuntimeConf(rt, false);
    return this.readCache(net, rt);
  }

  /** The spec versions a plugin speaks (its VERSION answer, remembered until the file changes). */
  async version(pluginType: string): Promise<CniVersionInfo> {
    const path = await this.findPlugin(pluginType);
    const info = await stat(path);
    const stamp = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}`;
    const known = this.versions.get(path);
    if (known?.stamp === stamp) return known.info;
    const probe = this.probeVersion(pluginType, path);
    this.versions.set(path, { stamp, info: probe });
    probe.catch(() => this.versions.delete(path));
    return probe;
  }

  /** Every plugin of the network is installed and speaks the network's cniVersion. */
  async validate(net: CniNetworkList): Promise<void> {
    checkNetworkList(net, 'CNI network list');
    for (const plugin of net.plugins) {
      const info = await this.version(plugin.type);
      if (!info.supportedVersions.includes(net.cniVersion))
        throw invalidArgument(
          `CNI plugin "${plugin.type}" (network "${net.name}") supports CNI versions ${info.supportedVersions.join(', ')}, not ${net.cniVersion}`,
        );
    }
  }

  /**
   * After a failed ADD, DEL in reverse the plugins run so far (the failing one may have done part
   * of its work). A failure to undo is added to the ADD's error, which stays the one thrown.
   */
  private async undoAdd(
    net: CniNetworkList,
    plugins: CniPluginConf[],
    rt: CniRuntimeConf,
    result: CniResult | undefined,
    cause: unknown,
  ): Promise<void> {
    const prev = hasCheck(net.cniVersion) ? result : undefined;
    try {
      await this.runEach('DEL', net, [...plugins].reverse(), rt, prev);
    } catch (undoErr) {
      // A configuration error fails DEL the same way; saying it twice helps nobody.
      const repeated =
        undoErr instanceof CniPluginError && cause instanceof CniPluginError && undoErr.msg === cause.msg;
      if (cause instanceof Error && !repeated)
        cause.message += `; undoing the partial ADD failed too: ${describeError(undoErr)}`;
    }
  }

  /** The plugin's executable: the first match in pluginDirs. */
  async findPlugin(pluginType: string): Promise<string> {
    checkPluginType(pluginType, 'CNI plugin');
    for (const dir of this.pluginDirs) {
      const path = join(dir, pluginType);
      const info = await stat(path).catch(() => undefined);
      if (
        info?.isFile() === true &&
        (await access(path, constants.X_OK).then(
          () => true,
          () => false,
        ))
      )
        return path;
    }
    throw notFound(`CNI plugin "${pluginType}" not found in ${this.pluginDirs.join(', ')}`);
  }

  private async probeVersion(pluginType: string, path: string): Promise<CniVersionInfo> {
    const stdout = await invokePlugin({
      path,
      label: `"${pluginType}"`,
      command: 'VERSION',
      env: this.env('VERSION'),
      stdin: JSON.stringify({ cniVersion: CURRENT_CNI_VERSION }),
      timeoutMs: this.timeoutMs,
      ...(this.pluginNetns === undefined ? {} : { netns: this.pluginNetns }),
    });
    return parseAnswer(stdout, `CNI plugin "${pluginType}" VERSION`, parseVersionInfo);
  }

  private async addOne(
    net: CniNetworkList,
    plugin: CniPluginConf,
    rt: CniRuntimeConf,
    prev: CniResult | undefined,
  ): Promise<CniResult> {
    const stdout = await this.invoke('ADD', net, plugin, rt, prev);
    return parseAnswer(stdout, `CNI plugin "${plugin.type}" (network "${net.name}") ADD`, parseResult);
  }

  /** DEL or CHECK: each plugin in the given order, each with the same prevResult. */
  private async runEach(
    command: CniCommand,
    net: CniNetworkList,
    plugins: CniPluginConf[],
    rt: CniRuntimeConf,
    prev: CniResult | undefined,
  ): Promise<void> {
    for (const plugin of plugins) await this.invoke(command, net, plugin, rt, prev);
  }

  private async invoke(
    command: CniCommand,
    net: CniNetworkList,
    plugin: CniPluginConf,
    rt: CniRuntimeConf,
    prev: CniResult | undefined,
  ): Promise<string> {
    return invokePlugin({
      path: await this.findPlugin(plugin.type),
      label: `"${plugin.type}" (network "${net.name}")`,
      command,
      env: this.env(command, rt),
      stdin: JSON.stringify(pluginConfig(net, plugin, prev, rt.capabilityArgs)),
      timeoutMs: this.timeoutMs,
      ...(this.pluginNetns === undefined ? {} : { netns: this.pluginNetns }),
    });
  }

  /** The caller's environment without its own CNI_* variables, plus the call's. */
  private env(command: CniCommand, rt?: CniRuntimeConf): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('CNI_')) env[key] = value;
    env.CNI_COMMAND = command;
    env.CNI_PATH = this.pluginDirs.join(':');
    if (rt !== undefined) {
      env.CNI_CONTAINERID = rt.containerId;
      env.CNI_NETNS = rt.netns;
      env.CNI_IFNAME = rt.ifName;
      env.CNI_ARGS = formatCniArgs(rt.args);
    }
    return env;
  }

  private async readCache(net: CniNetworkList, rt: CniRuntimeConf): Promise<CniResult | undefined> {
    try {
      return await readCachedResult(this.cacheDir, net.name, rt);
    } catch (err) {
      throw internal(`cached CNI result for network "${net.name}": ${describeError(err)}`, err);
    }
  }

  private exclusive<T>(containerId: string, action: () => Promise<T>): Promise<T> {
    const before = this.busy.get(containerId) ?? Promise.resolve();
    const run = before.then(action);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.busy.set(containerId, settled);
    void settled.then(() => {
      if (this.busy.get(containerId) === settled) this.busy.delete(containerId);
    });
    return run;
  }
}

/**
 * The configuration one plugin of the chain receives: its own entry, with the list's name and
 * cniVersion, runtimeConfig for the capabilities it declares, and prevResult.
 */
export function pluginConfig(
  net: CniNetworkList,
  plugin: CniPluginConf,
  prev: CniResult | undefined,
  capabilityArgs: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, cniVersion: net.cniVersion, name: net.name };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [capability, wanted] of Object.entries(plugin.capabilities ?? {})) {
    const value = capabilityArgs?.[capability];
    if (wanted && value !== undefined) runtimeConfig[capability] = value;
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  if (prev !== undefined) conf.prevResult = encodeResult(prev, net.cniVersion);
  return conf;
}

/** Parse a plugin's stdout strictly: one JSON document in the expected shape. */
function parseAnswer<T>(stdout: string, what: string, parse: (value: unknown) => T): T {
  if (stdout.trim() === '') throw internal(`${what} printed no result`);
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch {
    throw internal(`${what} printed something that is not JSON: ${JSON.stringify(stdout.slice(0, 200))}`);
  }
  try {
    return parse(value);
  } catch (err) {
    if (err instanceof MalformedResult) throw internal(`${what} printed a malformed result: ${err.message}`);
    throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}
