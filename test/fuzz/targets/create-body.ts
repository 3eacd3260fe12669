/**
 * `POST /containers/create` bodies: the JSON the router reads, checkCreateBody, then what create
 * and start do with the body without touching the host: the image config merged in, the command,
 * published ports, -v/--mount parsing, log sizes, and the OCI spec (buildSpec with fake host
 * lookups). A client's bad body must end in a BerthError that is not an internal one (a 400, not a
 * 500); everything else is a finding.
 */
import { BerthError } from '../../../src/common/errors.js';
import { parseBind, parseMount, resolveMountRequest, type MountRequest } from '../../../src/engine/binds.js';
import { mergeImageConfig, processArgs } from '../../../src/engine/container-config.js';
import { checkCreateBody } from '../../../src/engine/create-body.js';
import type { HostConfig } from '../../../src/engine/docker-types.js';
import { parseSize } from '../../../src/engine/engine.js';
import { buildSpec } from '../../../src/engine/spec-builder.js';
import { parsePortBindings } from '../../../src/network/port-requests.js';
import type { ContainerConfig as ImageContainerConfig } from '../../../src/oci/image-spec.js';
import { mutateJson } from '../json-mutate.js';
import type { FuzzTarget } from '../target.js';

const IMAGE: ImageContainerConfig = {
  Env: ['PATH=/usr/bin:/bin', 'A=b'],
  Cmd: ['sh'],
  WorkingDir: '/',
  ExposedPorts: { '8080/tcp': {} },
  Volumes: { '/data': {} },
  Labels: { from: 'image' },
};

const FIELDS = [
  'Image',
  'Cmd',
  'Entrypoint',
  'Env',
  'User',
  'WorkingDir',
  'Hostname',
  'Domainname',
  'ExposedPorts',
  'Volumes',
  'Labels',
  'Healthcheck',
  'Test',
  'StopSignal',
  'StopTimeout',
  'Tty',
  'OpenStdin',
  'HostConfig',
  'NetworkingConfig',
  'EndpointsConfig',
  'Binds',
  'Mounts',
  'Type',
  'Source',
  'Target',
  'ReadOnly',
  'BindOptions',
  'Propagation',
  'VolumeOptions',
  'NoCopy',
  'DriverConfig',
  'TmpfsOptions',
  'SizeBytes',
  'Mode',
  'PortBindings',
  'HostIp',
  'HostPort',
  'PublishAllPorts',
  'NetworkMode',
  'IpcMode',
  'PidMode',
  'UTSMode',
  'UsernsMode',
  'CgroupnsMode',
  'Privileged',
  'CapAdd',
  'CapDrop',
  'SecurityOpt',
  'Sysctls',
  'Tmpfs',
  'Ulimits',
  'Name',
  'Soft',
  'Hard',
  'Devices',
  'PathOnHost',
  'PathInContainer',
  'CgroupPermissions',
  'DeviceCgroupRules',
  'DeviceRequests',
  'Memory',
  'MemorySwap',
  'MemoryReservation',
  'MemorySwappiness',
  'NanoCpus',
  'CpuShares',
  'CpuPeriod',
  'CpuQuota',
  'CpusetCpus',
  'CpusetMems',
  'PidsLimit',
  'BlkioWeight',
  'BlkioWeightDevice',
  'BlkioDeviceReadBps',
  'Path',
  'Weight',
  'Rate',
  'OomScoreAdj',
  'ShmSize',
  'ReadonlyRootfs',
  'RestartPolicy',
  'MaximumRetryCount',
  'LogConfig',
  'Config',
  'max-size',
  'max-file',
  'GroupAdd',
  'ExtraHosts',
  'Dns',
  'Init',
  'ConsoleSize',
  'MaskedPaths',
  'ReadonlyPaths',
  'CgroupParent',
  'Isolation',
  'container:other',
  'host',
  'none',
  'shareable',
  'private',
  'unconfined',
  'no-new-privileges',
  'seccomp=unconfined',
  'ALL',
  'NET_ADMIN',
  '/host:/ctr:ro',
  'vol:/data',
  '80/tcp',
  '53/udp',
  'nofile',
  'c 1:3 rwm',
  'net.ipv4.ip_forward',
  'on-failure',
  '10m',
];

/** The defaults create stores in HostConfig (engine.ts withHostConfigDefaults), which start reads. */
function withDefaults(hostConfig: HostConfig): HostConfig {
  return {
    ...hostConfig,
    NetworkMode: hostConfig.NetworkMode || 'default',
    LogConfig: hostConfig.LogConfig?.Type
      ? hostConfig.LogConfig
      : { Type: 'json-file', Config: hostConfig.LogConfig?.Config ?? {} },
    RestartPolicy: hostConfig.RestartPolicy?.Name
      ? hostConfig.RestartPolicy
      : { Name: 'no', MaximumRetryCount: 0 },
    ShmSize: hostConfig.ShmSize || 64 * 1024 * 1024,
  };
}

export const target: FuzzTarget = {
  name: 'create-body',
  description: 'container create bodies: checkCreateBody, merge, ports, binds/mounts, log opts, buildSpec',
  maxLength: 32 * 1024,
  dictionary: FIELDS.map((field) => `"${field}"`).concat([
    '{',
    '}',
    '[',
    ']',
    ':',
    ',',
    'null',
    'true',
    '-1',
  ]),
  mutate: (input, rng) => mutateJson(input, rng, FIELDS),
  async run(input) {
    let body: unknown;
    try {
      body = JSON.parse(input.toString('utf8'));
    } catch {
      return; // the router answers 400 "invalid JSON" (api/context.ts) before anything else
    }
    const { HostConfig: hostConfigIn, NetworkingConfig: _networking, ...configIn } = checkCreateBody(body);
    const hostConfig = withDefaults(hostConfigIn ?? {});
    const config = mergeImageConfig(configIn, IMAGE);
    processArgs(config);
    parsePortBindings(hostConfig, Object.keys(config.ExposedPorts ?? {}));
    const requests: MountRequest[] = [
      ...(hostConfig.Binds ?? []).map((bind) => parseBind(bind)),
      ...(hostConfig.Mounts ?? []).map((mount) => parseMount(mount)),
    ];
    parseSize(hostConfig.LogConfig?.Config?.['max-size']);
    await buildSpec({
      id: 'f'.repeat(64),
      name: 'fuzz',
      config,
      hostConfig,
      image: { config: IMAGE },
      rootfs: '/nonexistent/rootfs',
      containerDir: '/nonexistent/container',
      mounts: requests.map((request) =>
        resolveMountRequest(request, request.type === 'volume' ? '/nonexistent/volume/_data' : undefined),
      ),
      cgroupVersion: 1,
      user: { uid: 0, gid: 0, additionalGids: [] },
      hostDevices: () => [{ path: '/dev/null', type: 'c', major: 1, minor: 3 }],
      statDevice: (path) => (path.startsWith('/dev/') ? [{ path, type: 'c', major: 1, minor: 3 }] : []),
      availableCapabilities: ['CAP_CHOWN', 'CAP_NET_ADMIN', 'CAP_SYS_ADMIN'],
      namespacePath: (kind, reference) => `/proc/1/ns/${kind}-${reference}`,
      networkNamespacePath: '/run/netns/fuzz',
      shmPath: '/dev/shm',
      initPath: '/usr/libexec/berth-init',
      hostHostname: 'host',
      kernelRelease: '6.18.0',
      cpuCount: 2,
    });
  },
  isExpected: (err) => err instanceof BerthError && err.kind !== 'internal',
};
