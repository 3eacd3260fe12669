/**
 * `GET /containers/{id}/json` as dockerd answers it. The record keeps the create body as the
 * client sent it; dockerd normalises some fields at create (defaults filled in, "unset" values
 * made null) and clients read those back, so the normalisation happens here, on the way out.
 */
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../oci/defaults.js';
import { versionAtLeast } from '../api/versions.js';
import { parseBind, parseMount, type MountRequest } from './binds.js';
import type { ContainerRecord } from './container-record.js';
import type { ContainerConfig, HostConfig } from './docker-types.js';
import { cgroupnsModeOf } from './namespaces.js';
import { containerHostname } from './spec-builder.js';
import { BUILTIN_RUNTIME } from './create-checks.js';

/** What the inspect answer needs from the engine. */
export interface InspectContext {
  /** The container's directory (hosts, resolv.conf, hostname files). */
  dir: string;
  volumesRoot: string;
  cgroupVersion: 1 | 2;
  hostHostname: string;
  networkSettings: object;
  apiVersion: string;
}

/** One entry of inspect's `Mounts`. */
export interface MountPoint {
  Type: string;
  Name?: string;
  Source: string;
  Destination: string;
  Driver?: string;
  Mode: string;
  RW: boolean;
  Propagation: string;
}

/** Every container runs on the built-in runtime. */

/** HostConfig with the values dockerd stores at create (daemon_unix.go adaptContainerSettings). */
export function hostConfigJson(
  hostConfig: HostConfig,
  options: Pick<InspectContext, 'cgroupVersion' | 'apiVersion'>,
): HostConfig & Record<string, unknown> {
  const memory = hostConfig.Memory ?? 0;
  const swap = hostConfig.MemorySwap ?? 0;
  const privileged = hostConfig.Privileged === true;
  const json: HostConfig & Record<string, unknown> = {
    ...hostConfig,
    IpcMode: hostConfig.IpcMode || 'private',
    CgroupnsMode: hostConfig.CgroupnsMode || cgroupnsModeOf(hostConfig, options.cgroupVersion),
    Runtime: hostConfig.Runtime || BUILTIN_RUNTIME,
    // -1 and 0 mean "not set": dockerd stores null.
    MemorySwappiness: hostConfig.MemorySwappiness === -1 ? null : (hostConfig.MemorySwappiness ?? null),
    PidsLimit: (hostConfig.PidsLimit ?? 0) <= 0 ? null : (hostConfig.PidsLimit ?? null),
    // A memory limit without a swap limit allows as much swap again.
    MemorySwap: memory > 0 && swap === 0 ? memory * 2 : swap,
    MaskedPaths: hostConfig.MaskedPaths ?? (privileged ? null : [...DEFAULT_MASKED_PATHS]),
    ReadonlyPaths: hostConfig.ReadonlyPaths ?? (privileged ? null : [...DEFAULT_READONLY_PATHS]),
  };
  // Removed from the API in 1.42; older clients still find them.
  if (!versionAtLeast(options.apiVersion, '1.42')) {
    json.KernelMemory = 0;
    json.KernelMemoryTCP = 0;
  }
  return json;
}

/** Config as dockerd shows it: the hostname the container got, no empty Volumes, no null Healthcheck. */
export function configJson(
  record: ContainerRecord,
  hostHostname: string,
): ContainerConfig & Record<string, unknown> {
  const { Healthcheck, Volumes, ...rest } = record.config;
  return {
    ...rest,
    Hostname: containerHostname({
      id: record.id,
      config: record.config,
      hostConfig: record.hostConfig,
      hostHostname,
    }),
    Image: record.imageRef,
    Volumes: Volumes && Object.keys(Volumes).length > 0 ? Volumes : null,
    ...(Healthcheck ? { Healthcheck } : {}),
  };
}

function requests(hostConfig: HostConfig): MountRequest[] {
  const parsed: MountRequest[] = [];
  // The engine refused invalid entries at create; a record never holds one, but inspect must not fail.
  for (const bind of hostConfig.Binds ?? []) {
    try {
      parsed.push(parseBind(bind, hostConfig.VolumeDriver ?? ''));
    } catch {
      continue;
    }
  }
  for (const mount of hostConfig.Mounts ?? []) {
    try {
      parsed.push(parseMount(mount));
    } catch {
      continue;
    }
  }
  return parsed;
}

/**
 * dockerd's `Mounts`: binds, `--mount`s and volumes (named, anonymous, the image's), not the
 * `--tmpfs` ones. The Mode is the `-v` mode string; a named `-v` volume and every `--mount`
 * volume show `z`, dockerd's default SELinux label mode.
 */
export function mountPoints(record: ContainerRecord, volumesRoot: string): MountPoint[] {
  const volumes = record.volumes ?? {};
  const points: MountPoint[] = [];
  const seen = new Set<string>();
  const volumePoint = (destination: string, mode: string, readOnly: boolean): MountPoint | undefined => {
    const volume = volumes[destination];
    if (volume === undefined) return undefined;
    return {
      Type: 'volume',
      Name: volume.name,
      Source: `${volumesRoot}/${volume.name}/_data`,
      Destination: destination,
      Driver: 'local',
      Mode: mode,
      RW: !readOnly,
      Propagation: '',
    };
  };
  for (const request of requests(record.hostConfig)) {
    if (seen.has(request.destination)) continue;
    const fromBind = request.mode !== undefined;
    let point: MountPoint | undefined;
    if (request.type === 'bind') {
      point = {
        Type: 'bind',
        Source: request.source,
        Destination: request.destination,
        Mode: request.mode ?? '',
        RW: !request.readOnly,
        Propagation: request.propagation ?? 'rprivate',
      };
    } else if (request.type === 'tmpfs') {
      point = {
        Type: 'tmpfs',
        Source: '',
        Destination: request.destination,
        Mode: '',
        RW: !request.readOnly,
        Propagation: '',
      };
    } else {
      const named = request.source !== '';
      const mode = fromBind ? request.mode || (named ? 'z' : '') : 'z';
      point = volumePoint(request.destination, mode, request.readOnly);
    }
    if (point === undefined) continue;
    seen.add(request.destination);
    points.push(point);
  }
  // Volumes that no bind or mount names: the image's VOLUMEs.
  for (const [destination, volume] of Object.entries(volumes)) {
    if (seen.has(destination)) continue;
    const point = volumePoint(destination, '', volume.readOnly);
    if (point) points.push(point);
  }
  return points;
}

export function inspectJson(record: ContainerRecord, context: InspectContext): object {
  const { dir } = context;
  return {
    Id: record.id,
    Created: record.created,
    Path: record.path,
    Args: record.args,
    State: { ...record.state },
    Image: record.image,
    ResolvConfPath: `${dir}/resolv.conf`,
    HostnamePath: `${dir}/hostname`,
    HostsPath: `${dir}/hosts`,
    LogPath: record.logPath,
    Name: `/${record.name}`,
    RestartCount: record.restartCount,
    Driver: 'overlayfs',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: hostConfigJson(record.hostConfig, context),
    GraphDriver: { Name: 'overlayfs', Data: null },
    Mounts: mountPoints(record, context.volumesRoot),
    Config: configJson(record, context.hostHostname),
    NetworkSettings: context.networkSettings,
  };
}
