/**
 * The engine's spec builder: a Docker Engine API container (Config, HostConfig, the image's config)
 * -> the OCI runtime spec berth-runtime runs, with the semantics of Docker's daemon for the same
 * `docker run` flags (moby daemon/oci_linux.go createSpec). docs/engine-spec.md has the mapping.
 */
import { availableParallelism, hostname as osHostname, release } from 'node:os';
import { posix } from 'node:path';
import { invalidArgument } from '../common/errors.js';
import { OCI_RUNTIME_SPEC_VERSION } from '../common/version.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../oci/defaults.js';
import { defaultSeccompProfile } from '../oci/default-seccomp.js';
import type { ContainerConfig as ImageContainerConfig } from '../oci/image-spec.js';
import type { Device, IdMapping, Linux, Process, Seccomp, Spec } from '../oci/runtime-spec.js';
import type { ResolvedMount } from './binds.js';
import { containerCapabilities, processCapabilities } from './capabilities.js';
import { containerEnv, mergeImageConfig, processArgs, workingDir } from './container-config.js';
import { containerDevices } from './devices.js';
import type { ContainerConfig, HostConfig, Ulimit } from './docker-types.js';
import {
  containerNamespaces,
  containerRef,
  ipcModeOf,
  isHostMode,
  isPrivateNetwork,
  type SharedNamespaceKind,
} from './namespaces.js';
import { containerResources, containerRlimits } from './resources.js';
import { loadSeccompProfile } from './seccomp-profile.js';
import { parseSecurityOpts } from './security-opt.js';
import { containerMounts, INIT_PATH } from './spec-mounts.js';
import { containerSysctls } from './sysctls.js';
import { resolveUser, type ResolvedUser } from './user.js';
import { remappedMounts } from './userns.js';

/** Docker's default /dev/shm size. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;
export const DEFAULT_CGROUP_PARENT = 'berth';

export interface BuildSpecInput {
  /** The container's full id (64 hex digits); its first 12 characters are the default hostname. */
  id: string;
  name: string;
  /** The create body's Config, as sent or as merged earlier with mergeImageConfig (merging is idempotent). */
  config: ContainerConfig;
  hostConfig: HostConfig;
  /** The image's configuration; `{}` for scratch. */
  image: { config?: ImageContainerConfig };
  /** Host path of the container's root filesystem. */
  rootfs: string;
  /** Host directory holding the container's resolv.conf, hostname and hosts files. */
  containerDir: string;
  /** Binds, volumes and --mount tmpfs, resolved to host paths (binds.ts). */
  mounts: ResolvedMount[];
  cgroupVersion: 1 | 2;
  /** The daemon's default-ulimits, below the container's own. */
  defaultUlimits?: Ulimit[];
  /** The daemon's no-new-privileges default. */
  defaultNoNewPrivileges?: boolean;
  /** The user, when the caller resolved it already; otherwise read from the rootfs (resolveUser). */
  user?: ResolvedUser;
  /** Every device node a --privileged container gets (host.ts listHostDevices). */
  hostDevices?: () => Device[];
  /** Device lookups for --device and the blkio device limits (host.ts devicesAt). */
  statDevice?: (path: string) => Device[];
  /** The capabilities --privileged and --cap-add ALL grant: what the engine can grant (host.ts boundingCapabilities). */
  availableCapabilities?: readonly string[];
  /** The namespace file of another container for the `container:<name|id>` modes. */
  namespacePath?: (kind: SharedNamespaceKind, containerRef: string) => string;
  /** The network namespace the engine prepared, for a container with a network of its own. */
  networkNamespacePath?: string;
  /** Host tmpfs mounted at /dev/shm for shareable IPC, or the other container's for IpcMode container:<id>. */
  shmPath?: string;
  /** Host path of the init binary for --init (mounted at /sbin/docker-init). */
  initPath?: string;
  /** Environment of legacy --link containers. */
  linkEnv?: string[];
  /** The host's hostname, the default hostname with --network host (default: os.hostname()). */
  hostHostname?: string;
  /** The host kernel release, for minKernel filters of seccomp profiles (default: os.release()). */
  kernelRelease?: string;
  /** CPUs available to containers (default: os.availableParallelism()). */
  cpuCount?: number;
  /** Whether the memory cgroup accounts swap (default true); without it the swap limit is dropped. */
  swapAccounting?: boolean;
  /** Container ids -> host ids for a user namespace of the container's own (userns.ts containerIdMap). */
  idMap?: { uids: IdMapping[]; gids: IdMapping[] };
  /** Receives Docker's warnings for settings dropped on this host. */
  onWarning?: (message: string) => void;
}

/** Config.Hostname, or Docker's default: the host's name with --network host, else the short id. */
export function containerHostname(
  input: Pick<BuildSpecInput, 'id' | 'config' | 'hostConfig' | 'hostHostname'>,
): string {
  if (input.config.Hostname) return input.config.Hostname;
  if (isHostMode(input.hostConfig.NetworkMode)) return input.hostHostname ?? osHostname();
  return input.id.slice(0, 12);
}

function seccompOf(
  profile: string | undefined,
  privileged: boolean,
  capabilities: string[],
  kernelRelease: string,
): Seccomp | undefined {
  if (privileged || profile === 'unconfined') return undefined;
  if (profile === undefined || profile === '' || profile === 'builtin')
    return defaultSeccompProfile(capabilities);
  return loadSeccompProfile(profile, { capabilities, kernelRelease });
}

function checkPlatform(hostConfig: HostConfig): void {
  const isolation = hostConfig.Isolation ?? '';
  if (isolation !== '' && isolation !== 'default')
    throw invalidArgument(`invalid isolation '${isolation}' on linux`);
  const oomScoreAdj = hostConfig.OomScoreAdj ?? 0;
  if (!Number.isInteger(oomScoreAdj) || oomScoreAdj < -1000 || oomScoreAdj > 1000)
    throw invalidArgument(`Invalid value ${oomScoreAdj}, range for oom score adj is [-1000, 1000]`);
  if ((hostConfig.ShmSize ?? 0) < 0) throw invalidArgument('SHM size can not be less than 0');
}

/** `/<CgroupParent or berth>/<id>`, for the cgroupfs driver; `..` cannot climb above the root. */
export function cgroupsPath(hostConfig: HostConfig, id: string): string {
  return posix.join('/', hostConfig.CgroupParent || DEFAULT_CGROUP_PARENT, id);
}

export async function buildSpec(input: BuildSpecInput): Promise<Spec> {
  const hostConfig = input.hostConfig;
  const config = mergeImageConfig(input.config, input.image.config);
  const warn = input.onWarning ?? ((): void => undefined);
  checkPlatform(hostConfig);
  const privileged = hostConfig.Privileged === true;
  const security = parseSecurityOpts(hostConfig.SecurityOpt, {
    noNewPrivileges: input.defaultNoNewPrivileges,
  });

  const args = processArgs(config);
  const cwd = workingDir(config);
  const hostname = containerHostname({ ...input, config });
  const env = containerEnv(config, hostname, input.linkEnv);

  const namespaces = containerNamespaces(hostConfig, {
    cgroupVersion: input.cgroupVersion,
    ...(input.namespacePath ? { namespacePath: input.namespacePath } : {}),
    ...(input.networkNamespacePath ? { networkNamespacePath: input.networkNamespacePath } : {}),
    networkDisabled: config.NetworkDisabled === true,
    userNamespace: input.idMap !== undefined,
  });
  const namespaceTypes = new Set(namespaces.map((ns) => ns.type));
  const ipcMode = ipcModeOf(hostConfig);
  if (ipcMode === 'container' && input.shmPath === undefined)
    throw invalidArgument(
      `invalid IPC mode: ${hostConfig.IpcMode ?? ''}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)`,
    );
  const sysctl = containerSysctls(hostConfig.Sysctls, {
    privateNetwork: isPrivateNetwork(hostConfig.NetworkMode),
    namespaces: namespaceTypes,
  });
  if (config.Domainname && !namespaceTypes.has('uts'))
    throw invalidArgument('conflicting options: domainname and the UTS mode');

  const capabilities = containerCapabilities(
    hostConfig.CapAdd,
    hostConfig.CapDrop,
    privileged,
    input.availableCapabilities,
  );
  const seccomp = seccompOf(security.seccomp, privileged, capabilities, input.kernelRelease ?? release());

  const resources = containerResources(hostConfig, {
    cgroupVersion: input.cgroupVersion,
    cpuCount: input.cpuCount ?? availableParallelism(),
    swapAccounting: input.swapAccounting ?? true,
    ...(input.statDevice ? { statDevice: input.statDevice } : {}),
    warn,
  });
  const devices = containerDevices(
    {
      privileged,
      devices: hostConfig.Devices,
      cgroupRules: hostConfig.DeviceCgroupRules,
      requests: hostConfig.DeviceRequests,
    },
    {
      ...(input.statDevice ? { statDevice: input.statDevice } : {}),
      ...(input.hostDevices ? { hostDevices: input.hostDevices } : {}),
    },
  );
  resources.devices = devices.cgroupRules;
  const rlimits = containerRlimits(hostConfig.Ulimits, input.defaultUlimits);

  // --init only makes sense as pid 1 of a pid namespace of the container's own.
  const withInit =
    hostConfig.Init === true &&
    containerRef(hostConfig.PidMode) === undefined &&
    !isHostMode(hostConfig.PidMode);
  if (withInit && input.initPath === undefined)
    throw invalidArgument('--init: no init binary is configured for this daemon');
  const { mounts, rootfsPropagation } = containerMounts({
    containerDir: input.containerDir,
    mounts: input.mounts,
    tmpfs: hostConfig.Tmpfs ?? {},
    ipcMode,
    ...(input.shmPath !== undefined ? { shmPath: input.shmPath } : {}),
    shmSize: hostConfig.ShmSize || DEFAULT_SHM_SIZE,
    readonlyRootfs: hostConfig.ReadonlyRootfs === true,
    privileged,
    ...(security.writableCgroups !== undefined ? { writableCgroups: security.writableCgroups } : {}),
    ...(withInit ? { initPath: input.initPath } : {}),
  });

  const user = input.user ?? (await resolveUser(input.rootfs, config.User, hostConfig.GroupAdd));
  const consoleSize = hostConfig.ConsoleSize ?? [];
  const [height = 0, width = 0] = consoleSize;
  const process: Process = {
    terminal: config.Tty === true,
    ...(height > 0 || width > 0 ? { consoleSize: { height, width } } : {}),
    user: { uid: user.uid, gid: user.gid, additionalGids: [...user.additionalGids] },
    args: withInit ? [INIT_PATH, '--', ...args] : args,
    env,
    cwd,
    capabilities: processCapabilities(capabilities, user.uid),
    ...(rlimits.length > 0 ? { rlimits } : {}),
    noNewPrivileges: security.noNewPrivileges,
    oomScoreAdj: hostConfig.OomScoreAdj ?? 0,
  };

  const systemPathsOpen = privileged || security.unconfinedSystemPaths;
  const linux: Linux = {
    namespaces,
    devices: devices.devices,
    cgroupsPath: cgroupsPath(hostConfig, input.id),
    resources,
    sysctl,
    maskedPaths: systemPathsOpen ? [] : [...(hostConfig.MaskedPaths ?? DEFAULT_MASKED_PATHS)],
    readonlyPaths: systemPathsOpen ? [] : [...(hostConfig.ReadonlyPaths ?? DEFAULT_READONLY_PATHS)],
    ...(seccomp ? { seccomp } : {}),
    ...(rootfsPropagation ? { rootfsPropagation } : {}),
    ...(input.idMap ? { uidMappings: [...input.idMap.uids], gidMappings: [...input.idMap.gids] } : {}),
  };

  const spec: Spec = {
    ociVersion: OCI_RUNTIME_SPEC_VERSION,
    process,
    root: { path: input.rootfs, readonly: hostConfig.ReadonlyRootfs === true },
    ...(namespaceTypes.has('uts') ? { hostname } : {}),
    ...(namespaceTypes.has('uts') && config.Domainname ? { domainname: config.Domainname } : {}),
    // A network namespace created with the user namespace (by the runtime) belongs to it.
    mounts: input.idMap
      ? remappedMounts(
          mounts,
          namespaces.some((ns) => ns.type === 'network' && !ns.path),
        )
      : mounts,
    ...(hostConfig.Annotations && Object.keys(hostConfig.Annotations).length > 0
      ? { annotations: { ...hostConfig.Annotations } }
      : {}),
    linux,
  };
  return spec;
}
