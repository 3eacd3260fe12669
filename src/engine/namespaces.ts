/**
 * The namespace modes of a HostConfig (NetworkMode, IpcMode, PidMode, UTSMode, CgroupnsMode,
 * UsernsMode): Docker's validation and the OCI namespace list they give (moby WithNamespaces).
 */
import { internal, invalidArgument } from '../common/errors.js';
import type { Namespace } from '../oci/runtime-spec.js';
import type { ContainerConfig, HostConfig } from './docker-types.js';

export type SharedNamespaceKind = 'network' | 'ipc' | 'pid';

/** `container:<name|id>` -> the name or id; undefined for other modes. */
export function containerRef(mode: string | undefined): string | undefined {
  return mode?.startsWith('container:') ? mode.slice('container:'.length) : undefined;
}

export const isHostMode = (mode: string | undefined): boolean => mode === 'host';

/** Docker's NetworkMode.IsPrivate: a network namespace of the container's own (not host, not shared). */
export const isPrivateNetwork = (mode: string | undefined): boolean =>
  !isHostMode(mode) && containerRef(mode) === undefined;

export type IpcMode = 'private' | 'shareable' | 'none' | 'host' | 'container';

/** The effective IPC mode; empty means the daemon default, `private`. */
export function ipcModeOf(hostConfig: HostConfig): IpcMode {
  const mode = hostConfig.IpcMode ?? '';
  if (mode === '') return 'private';
  if (mode === 'private' || mode === 'shareable' || mode === 'none' || mode === 'host') return mode;
  const ref = containerRef(mode);
  if (ref !== undefined && ref !== '' && !ref.includes(':')) return 'container';
  throw invalidArgument(`invalid IPC mode: ${mode}`);
}

/** Private or host cgroup namespace; empty means Docker's default for the host's cgroup version. */
export function cgroupnsModeOf(hostConfig: HostConfig, cgroupVersion: 1 | 2): 'private' | 'host' {
  const mode = hostConfig.CgroupnsMode ?? '';
  if (mode === '') return cgroupVersion === 2 ? 'private' : 'host';
  if (mode === 'private' || mode === 'host') return mode;
  throw invalidArgument(`invalid cgroup namespace mode: ${mode}`);
}

function checkModes(hostConfig: HostConfig): void {
  const pid = hostConfig.PidMode ?? '';
  const pidRef = containerRef(pid);
  if (!(pid === '' || pid === 'host' || (pidRef !== undefined && pidRef !== '' && !pidRef.includes(':'))))
    throw invalidArgument(`invalid PID mode: ${pid}`);
  const uts = hostConfig.UTSMode ?? '';
  if (uts !== '' && uts !== 'host') throw invalidArgument(`invalid UTS mode: ${uts}`);
  const userns = hostConfig.UsernsMode ?? '';
  if (userns !== '' && userns !== 'host') throw invalidArgument(`invalid userns mode: ${userns}`);
  const network = hostConfig.NetworkMode ?? '';
  if (network.startsWith('container:') && containerRef(network) === '')
    throw invalidArgument('Invalid network mode: invalid container format container:<name|id>');
}

/**
 * Docker's create-time conflicts between the network or UTS mode and other options
 * (runconfig validateNetMode). Call it with the Config as the client sent it, before the engine
 * fills in a generated Hostname.
 */
export function checkNetworkModeConflicts(config: ContainerConfig, hostConfig: HostConfig): void {
  checkModes(hostConfig);
  const network = hostConfig.NetworkMode ?? '';
  const shared = containerRef(network) !== undefined;
  const conflict = (what: string): never => {
    throw invalidArgument(`conflicting options: ${what}`);
  };
  if (shared) {
    if (config.Hostname) conflict('hostname and the network mode');
    if ((hostConfig.Links ?? []).length > 0)
      conflict("container type network can't be used with links. This would result in undefined behavior");
    if ((hostConfig.Dns ?? []).length > 0) conflict('dns and the network mode');
    if ((hostConfig.ExtraHosts ?? []).length > 0) conflict('custom host-to-IP mapping and the network mode');
    if (Object.keys(hostConfig.PortBindings ?? {}).length > 0 || hostConfig.PublishAllPorts)
      conflict('port publishing and the container type network mode');
    if (Object.keys(config.ExposedPorts ?? {}).length > 0)
      conflict('port exposing and the container type network mode');
  }
  if ((shared || isHostMode(network)) && config.MacAddress) conflict('mac-address and the network mode');
  if (isHostMode(hostConfig.UTSMode) && config.Hostname) conflict('hostname and the UTS mode');
  if (isHostMode(network) && (hostConfig.Links ?? []).length > 0)
    conflict("host type networking can't be used with links. This would result in undefined behavior");
}

export interface NamespaceOptions {
  cgroupVersion: 1 | 2;
  /** The namespace file of another container for `container:<name|id>` modes (e.g. /proc/<pid>/ns/net). */
  namespacePath?: (kind: SharedNamespaceKind, containerRef: string) => string;
  /** The network namespace the engine prepared for a container with a network of its own. */
  networkNamespacePath?: string;
  networkDisabled: boolean;
  /** A user namespace of the container's own (daemon userns-remap, not opted out with --userns=host). */
  userNamespace?: boolean;
}

export function containerNamespaces(hostConfig: HostConfig, options: NamespaceOptions): Namespace[] {
  checkModes(hostConfig);
  const shared = (kind: SharedNamespaceKind, ref: string): Namespace => {
    if (options.namespacePath === undefined)
      throw internal(`buildSpec: namespacePath is needed for ${kind} mode container:${ref}`);
    return { type: kind, path: options.namespacePath(kind, ref) };
  };
  const namespaces: Namespace[] = [{ type: 'mount' }];

  const network = hostConfig.NetworkMode ?? '';
  const networkRef = containerRef(network);
  if (options.networkDisabled) namespaces.push({ type: 'network' });
  else if (networkRef !== undefined) namespaces.push(shared('network', networkRef));
  else if (!isHostMode(network))
    namespaces.push(
      options.networkNamespacePath
        ? { type: 'network', path: options.networkNamespacePath }
        : { type: 'network' },
    );

  if (!isHostMode(hostConfig.UTSMode)) namespaces.push({ type: 'uts' });

  const pidRef = containerRef(hostConfig.PidMode);
  if (pidRef !== undefined) namespaces.push(shared('pid', pidRef));
  else if (!isHostMode(hostConfig.PidMode)) namespaces.push({ type: 'pid' });

  const ipc = ipcModeOf(hostConfig);
  if (ipc === 'container') namespaces.push(shared('ipc', containerRef(hostConfig.IpcMode) as string));
  else if (ipc !== 'host') namespaces.push({ type: 'ipc' });

  if (cgroupnsModeOf(hostConfig, options.cgroupVersion) === 'private') namespaces.push({ type: 'cgroup' });
  if (options.userNamespace === true) namespaces.push({ type: 'user' });
  return namespaces;
}
