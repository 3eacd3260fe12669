/**
 * Docker Engine API (v1.47) container objects, with Docker's field names: the `Config` and
 * `HostConfig` of `POST /containers/create` and the `Mount` entries of `HostConfig.Mounts`.
 * Every field is optional, as in the API, and `null` is accepted wherever Docker's Go types are
 * slices, maps or pointers (clients send `null` for them).
 */

/** `HEALTHCHECK`: durations are nanoseconds. */
export interface HealthConfig {
  Test?: string[] | null;
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** An empty object, the value type of Docker's port and volume sets. */
export type EmptyObject = Record<string, never>;

/** The create body's `Config` (Go: container.Config). */
export interface ContainerConfig {
  Hostname?: string;
  Domainname?: string;
  /** `user`, `uid`, `user:group`, `uid:gid`, `uid:group` or `user:gid`. */
  User?: string;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  /** `"80/tcp": {}`. */
  ExposedPorts?: Record<string, EmptyObject> | null;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  /** `KEY=value`; a bare `KEY` removes the variable. */
  Env?: string[] | null;
  Cmd?: string[] | null;
  Healthcheck?: HealthConfig | null;
  ArgsEscaped?: boolean | null;
  Image?: string;
  Volumes?: Record<string, EmptyObject> | null;
  WorkingDir?: string;
  /** `null` means "the image's"; `[]` or `[""]` means none. */
  Entrypoint?: string[] | null;
  NetworkDisabled?: boolean | null;
  /** Deprecated since API 1.44 in favour of the endpoint's MacAddress. */
  MacAddress?: string | null;
  OnBuild?: string[] | null;
  Labels?: Record<string, string> | null;
  StopSignal?: string | null;
  /** Seconds. */
  StopTimeout?: number | null;
  Shell?: string[] | null;
}

export interface LogConfig {
  Type?: string;
  Config?: Record<string, string> | null;
}

export interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

/** `"80/tcp": [{ HostIp, HostPort }]`. */
export type PortMap = Record<string, PortBinding[] | null>;

export type RestartPolicyName = '' | 'no' | 'always' | 'unless-stopped' | 'on-failure';

export interface RestartPolicy {
  Name?: RestartPolicyName;
  MaximumRetryCount?: number;
}

export interface WeightDevice {
  Path: string;
  Weight: number;
}

export interface ThrottleDevice {
  Path: string;
  /** Bytes or operations per second. */
  Rate: number;
}

/** `--device /dev/host:/dev/container:rwm`. */
export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer?: string;
  CgroupPermissions?: string;
}

/** `--gpus`: requests for devices from a device driver. */
export interface DeviceRequest {
  Driver?: string;
  Count?: number;
  DeviceIDs?: string[] | null;
  Capabilities?: string[][] | null;
  Options?: Record<string, string> | null;
}

/** `--ulimit nofile=1024:2048`; -1 means unlimited. */
export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

/** The resource fields of HostConfig (Go: container.Resources), also the body of `POST /containers/{id}/update`. */
export interface Resources {
  CpuShares?: number;
  /** Bytes. */
  Memory?: number;
  /** CPU quota in units of 1e-9 CPUs. */
  NanoCpus?: number;
  CgroupParent?: string;
  BlkioWeight?: number;
  BlkioWeightDevice?: WeightDevice[] | null;
  BlkioDeviceReadBps?: ThrottleDevice[] | null;
  BlkioDeviceWriteBps?: ThrottleDevice[] | null;
  BlkioDeviceReadIOps?: ThrottleDevice[] | null;
  BlkioDeviceWriteIOps?: ThrottleDevice[] | null;
  /** Microseconds. */
  CpuPeriod?: number;
  /** Microseconds per CpuPeriod. */
  CpuQuota?: number;
  CpuRealtimePeriod?: number;
  CpuRealtimeRuntime?: number;
  CpusetCpus?: string;
  CpusetMems?: string;
  Devices?: DeviceMapping[] | null;
  /** `c 1:3 rwm`, `b *:* m`. */
  DeviceCgroupRules?: string[] | null;
  DeviceRequests?: DeviceRequest[] | null;
  KernelMemoryTCP?: number;
  MemoryReservation?: number;
  /** Memory plus swap; -1 is unlimited swap. */
  MemorySwap?: number;
  /** 0 to 100; -1 or null leaves the kernel's value. */
  MemorySwappiness?: number | null;
  OomKillDisable?: boolean | null;
  /** 0 or -1 is unlimited. */
  PidsLimit?: number | null;
  Ulimits?: Ulimit[] | null;
  /** Windows only. */
  CpuCount?: number;
  /** Windows only. */
  CpuPercent?: number;
  /** Windows only. */
  IOMaximumIOps?: number;
  /** Windows only. */
  IOMaximumBandwidth?: number;
}

export type Propagation = 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave';

export interface BindOptions {
  Propagation?: Propagation | '';
  NonRecursive?: boolean;
  CreateMountpoint?: boolean;
  ReadOnlyNonRecursive?: boolean;
  ReadOnlyForceRecursive?: boolean;
}

export interface VolumeDriverConfig {
  Name?: string;
  Options?: Record<string, string> | null;
}

export interface VolumeOptions {
  NoCopy?: boolean;
  Labels?: Record<string, string> | null;
  DriverConfig?: VolumeDriverConfig | null;
  Subpath?: string;
}

export interface TmpfsOptions {
  SizeBytes?: number;
  /** Permission bits as a decimal number (0o1777 is 1023). */
  Mode?: number;
  /** `[["noexec"], ["size", "64m"]]` (API 1.46). */
  Options?: string[][] | null;
}

export type MountType = 'bind' | 'volume' | 'tmpfs' | 'npipe' | 'cluster' | 'image';

/** An entry of `HostConfig.Mounts` (`--mount`). */
export interface Mount {
  Target?: string;
  Source?: string;
  Type?: MountType;
  ReadOnly?: boolean;
  Consistency?: 'default' | 'consistent' | 'cached' | 'delegated' | '';
  BindOptions?: BindOptions | null;
  VolumeOptions?: VolumeOptions | null;
  TmpfsOptions?: TmpfsOptions | null;
}

/** The create body's `HostConfig` (Go: container.HostConfig), API 1.47. */
export interface HostConfig extends Resources {
  /** `host-src:container-dest[:options]` or `volume-name:container-dest[:options]`. */
  Binds?: string[] | null;
  ContainerIDFile?: string;
  LogConfig?: LogConfig | null;
  /** `default`, `bridge`, `host`, `none`, `container:<name|id>` or a network's name. */
  NetworkMode?: string;
  PortBindings?: PortMap | null;
  RestartPolicy?: RestartPolicy | null;
  AutoRemove?: boolean;
  VolumeDriver?: string;
  VolumesFrom?: string[] | null;
  Mounts?: Mount[] | null;
  /** `[height, width]`. */
  ConsoleSize?: number[] | null;
  Annotations?: Record<string, string> | null;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  /** `private`, `host`, or empty for the daemon's default. */
  CgroupnsMode?: string;
  Dns?: string[] | null;
  DnsOptions?: string[] | null;
  DnsSearch?: string[] | null;
  /** `hostname:IP`. */
  ExtraHosts?: string[] | null;
  /** Group names or numbers. */
  GroupAdd?: string[] | null;
  /** `none`, `private`, `shareable`, `container:<name|id>`, `host`, or empty for the default. */
  IpcMode?: string;
  Cgroup?: string;
  Links?: string[] | null;
  OomScoreAdj?: number;
  /** `host`, `container:<name|id>`, or empty. */
  PidMode?: string;
  Privileged?: boolean;
  PublishAllPorts?: boolean;
  ReadonlyRootfs?: boolean;
  SecurityOpt?: string[] | null;
  StorageOpt?: Record<string, string> | null;
  /** Container path -> tmpfs options (`rw,noexec,nosuid,size=65536k`). */
  Tmpfs?: Record<string, string> | null;
  /** `host` or empty. */
  UTSMode?: string;
  /** `host` or empty. */
  UsernsMode?: string;
  /** Bytes; 0 means the default (64 MiB). */
  ShmSize?: number;
  Sysctls?: Record<string, string> | null;
  Runtime?: string;
  /** Windows only: `default`, `process`, `hyperv`. */
  Isolation?: string;
  /** Replace the default masked paths (`null`: Docker's defaults). */
  MaskedPaths?: string[] | null;
  /** Replace the default read-only paths (`null`: Docker's defaults). */
  ReadonlyPaths?: string[] | null;
  Init?: boolean | null;
}

export interface EndpointIPAMConfig {
  IPv4Address?: string;
  IPv6Address?: string;
  LinkLocalIPs?: string[] | null;
}

/** One network of `NetworkingConfig.EndpointsConfig`. */
export interface EndpointSettings {
  IPAMConfig?: EndpointIPAMConfig | null;
  Links?: string[] | null;
  MacAddress?: string;
  Aliases?: string[] | null;
  DriverOpts?: Record<string, string> | null;
  GwPriority?: number;
  NetworkID?: string;
  EndpointID?: string;
  Gateway?: string;
  IPAddress?: string;
  IPPrefixLen?: number;
  IPv6Gateway?: string;
  GlobalIPv6Address?: string;
  GlobalIPv6PrefixLen?: number;
  DNSNames?: string[] | null;
}

export interface NetworkingConfig {
  EndpointsConfig?: Record<string, EndpointSettings> | null;
}

/** The body of `POST /containers/create`. */
export interface ContainerCreateBody extends ContainerConfig {
  HostConfig?: HostConfig | null;
  NetworkingConfig?: NetworkingConfig | null;
}
