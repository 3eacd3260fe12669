/**
 * Type checks of `POST /containers/create` bodies before the engine reads them: a field of the
 * wrong JSON type is a 400 with Go's unmarshalling message, as dockerd answers, never a crash
 * deeper in. Nested structs (mounts, ulimits, log and restart settings, port bindings, devices)
 * are checked as deep as the engine reads them. Docker's string-or-array fields (Cmd,
 * Entrypoint, Shell) become arrays.
 */
import { invalidArgument } from '../common/errors.js';
import type { CreateRequest } from './engine.js';

type Scalar =
  | 'string'
  | 'number'
  | 'boolean'
  | 'object'
  | 'strings'
  | 'strslice'
  | 'stringMap'
  | 'numbers'
  | 'stringLists';

/** A Go struct: its type name (Go's messages name the innermost struct) and JSON fields. */
interface Struct {
  name: string;
  fields: Record<string, Kind>;
  /**
   * The body and HostConfig keep a null field as it is (the engine reads it as absent). In the
   * structs below them a null string, number or boolean becomes Go's zero value, as Go decodes it.
   */
  keepNulls?: boolean;
}

const ZERO: Partial<Record<Scalar, unknown>> = { string: '', number: 0, boolean: false };

type Kind = Scalar | { struct: Struct } | { list: Struct } | { map: Kind };

const struct = (name: string, fields: Record<string, Kind>): { struct: Struct } => ({
  struct: { name, fields },
});
const list = (name: string, fields: Record<string, Kind>): { list: Struct } => ({ list: { name, fields } });

const HEALTH_CONFIG = struct('HealthConfig', {
  Test: 'strings',
  Interval: 'number',
  Timeout: 'number',
  StartPeriod: 'number',
  StartInterval: 'number',
  Retries: 'number',
});

const MOUNTS = list('Mount', {
  Type: 'string',
  Source: 'string',
  Target: 'string',
  ReadOnly: 'boolean',
  Consistency: 'string',
  BindOptions: struct('BindOptions', {
    Propagation: 'string',
    NonRecursive: 'boolean',
    CreateMountpoint: 'boolean',
    ReadOnlyNonRecursive: 'boolean',
    ReadOnlyForceRecursive: 'boolean',
  }),
  VolumeOptions: struct('VolumeOptions', {
    NoCopy: 'boolean',
    Labels: 'stringMap',
    Subpath: 'string',
    DriverConfig: struct('Driver', { Name: 'string', Options: 'stringMap' }),
  }),
  TmpfsOptions: struct('TmpfsOptions', { SizeBytes: 'number', Mode: 'number', Options: 'stringLists' }),
});

const THROTTLE_DEVICES = list('ThrottleDevice', { Path: 'string', Rate: 'number' });

const CONFIG_FIELDS: Record<string, Kind> = {
  Hostname: 'string',
  Domainname: 'string',
  User: 'string',
  AttachStdin: 'boolean',
  AttachStdout: 'boolean',
  AttachStderr: 'boolean',
  ExposedPorts: { map: 'object' },
  Tty: 'boolean',
  OpenStdin: 'boolean',
  StdinOnce: 'boolean',
  Env: 'strings',
  Cmd: 'strslice',
  Healthcheck: HEALTH_CONFIG,
  ArgsEscaped: 'boolean',
  Image: 'string',
  Volumes: { map: 'object' },
  WorkingDir: 'string',
  Entrypoint: 'strslice',
  NetworkDisabled: 'boolean',
  MacAddress: 'string',
  OnBuild: 'strings',
  Labels: 'stringMap',
  StopSignal: 'string',
  StopTimeout: 'number',
  Shell: 'strslice',
};

const HOST_CONFIG_FIELDS: Record<string, Kind> = {
  Binds: 'strings',
  ContainerIDFile: 'string',
  LogConfig: struct('LogConfig', { Type: 'string', Config: 'stringMap' }),
  NetworkMode: 'string',
  PortBindings: { map: list('PortBinding', { HostIp: 'string', HostPort: 'string' }) },
  RestartPolicy: struct('RestartPolicy', { Name: 'string', MaximumRetryCount: 'number' }),
  AutoRemove: 'boolean',
  VolumeDriver: 'string',
  VolumesFrom: 'strings',
  CapAdd: 'strings',
  CapDrop: 'strings',
  CgroupnsMode: 'string',
  Dns: 'strings',
  DnsOptions: 'strings',
  DnsSearch: 'strings',
  ExtraHosts: 'strings',
  GroupAdd: 'strings',
  IpcMode: 'string',
  Cgroup: 'string',
  Links: 'strings',
  OomScoreAdj: 'number',
  PidMode: 'string',
  Privileged: 'boolean',
  PublishAllPorts: 'boolean',
  ReadonlyRootfs: 'boolean',
  SecurityOpt: 'strings',
  StorageOpt: 'stringMap',
  Tmpfs: 'stringMap',
  UTSMode: 'string',
  UsernsMode: 'string',
  ShmSize: 'number',
  Sysctls: 'stringMap',
  Runtime: 'string',
  Isolation: 'string',
  CpuShares: 'number',
  Memory: 'number',
  NanoCpus: 'number',
  CgroupParent: 'string',
  BlkioWeight: 'number',
  BlkioWeightDevice: list('WeightDevice', { Path: 'string', Weight: 'number' }),
  BlkioDeviceReadBps: THROTTLE_DEVICES,
  BlkioDeviceWriteBps: THROTTLE_DEVICES,
  BlkioDeviceReadIOps: THROTTLE_DEVICES,
  BlkioDeviceWriteIOps: THROTTLE_DEVICES,
  CpuPeriod: 'number',
  CpuQuota: 'number',
  CpuRealtimePeriod: 'number',
  CpuRealtimeRuntime: 'number',
  CpusetCpus: 'string',
  CpusetMems: 'string',
  Devices: list('DeviceMapping', {
    PathOnHost: 'string',
    PathInContainer: 'string',
    CgroupPermissions: 'string',
  }),
  DeviceCgroupRules: 'strings',
  DeviceRequests: list('DeviceRequest', {
    Driver: 'string',
    Count: 'number',
    DeviceIDs: 'strings',
    Capabilities: 'stringLists',
    Options: 'stringMap',
  }),
  MemoryReservation: 'number',
  MemorySwap: 'number',
  MemorySwappiness: 'number',
  OomKillDisable: 'boolean',
  PidsLimit: 'number',
  Ulimits: list('Ulimit', { Name: 'string', Soft: 'number', Hard: 'number' }),
  Mounts: MOUNTS,
  ConsoleSize: 'numbers',
  MaskedPaths: 'strings',
  ReadonlyPaths: 'strings',
  Init: 'boolean',
};

const ENDPOINT_SETTINGS = struct('EndpointSettings', {
  IPAMConfig: struct('EndpointIPAMConfig', {
    IPv4Address: 'string',
    IPv6Address: 'string',
    LinkLocalIPs: 'strings',
  }),
  Links: 'strings',
  Aliases: 'strings',
  MacAddress: 'string',
  DriverOpts: 'stringMap',
  GwPriority: 'number',
  NetworkID: 'string',
  DNSNames: 'strings',
});

const CREATE_BODY: Struct = {
  name: 'ContainerConfigWrapper',
  keepNulls: true,
  fields: {
    ...CONFIG_FIELDS,
    HostConfig: { struct: { name: 'HostConfig', fields: HOST_CONFIG_FIELDS, keepNulls: true } },
    NetworkingConfig: struct('NetworkingConfig', { EndpointsConfig: { map: ENDPOINT_SETTINGS } }),
  },
};

const GO_TYPE: Record<Scalar, string> = {
  string: 'string',
  number: 'int64',
  boolean: 'bool',
  object: 'struct',
  strings: '[]string',
  strslice: 'strslice.StrSlice',
  stringMap: 'map[string]string',
  numbers: '[]uint',
  stringLists: '[][]string',
};

function goType(kind: Kind): string {
  if (typeof kind === 'string') return GO_TYPE[kind];
  if ('struct' in kind) return kind.struct.name;
  if ('list' in kind) return `[]${kind.list.name}`;
  return `map[string]${goType(kind.map)}`;
}

function jsonType(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'object' : typeof value;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isStrings = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every((item) => typeof item === 'string');

/** For a scalar kind: undefined when `value` fits, else the value Go would name (an array's bad element). */
function misfit(kind: Scalar, value: unknown): { bad: unknown; type: string } | undefined {
  const wrong = { bad: value, type: GO_TYPE[kind] };
  switch (kind) {
    case 'string':
    case 'number':
    case 'boolean':
      return typeof value === kind && (kind !== 'number' || Number.isFinite(value)) ? undefined : wrong;
    case 'object':
      return isObject(value) ? undefined : wrong;
    case 'strings':
    case 'strslice': {
      if (kind === 'strslice' && typeof value === 'string') return undefined;
      if (!Array.isArray(value)) return wrong;
      const bad = value.find((item) => typeof item !== 'string');
      // Go names the element that failed inside an array of strings.
      return bad === undefined ? undefined : { bad, type: 'string' };
    }
    case 'stringMap':
      return isObject(value) && Object.values(value).every((item) => typeof item === 'string')
        ? undefined
        : wrong;
    case 'numbers':
      return Array.isArray(value) && value.every((item) => typeof item === 'number' && Number.isFinite(item))
        ? undefined
        : wrong;
    case 'stringLists':
      return Array.isArray(value) && value.every((item) => item === null || isStrings(item))
        ? undefined
        : wrong;
  }
}

/** Checks `value` (not null: null is Go's zero value for every field here) against `kind`. */
function check(value: unknown, kind: Kind, structName: string, path: string): void {
  const refuse = (bad: unknown, type: string): never => {
    throw invalidArgument(
      `json: cannot unmarshal ${jsonType(bad)} into Go struct field ${structName}.${path} of type ${type}`,
    );
  };
  if (typeof kind === 'string') {
    const wrong = misfit(kind, value);
    if (wrong !== undefined) refuse(wrong.bad, wrong.type);
  } else if ('struct' in kind) {
    if (!isObject(value)) refuse(value, goType(kind));
    checkStruct(value as Record<string, unknown>, kind.struct, path);
  } else if ('list' in kind) {
    if (!Array.isArray(value)) refuse(value, goType(kind));
    const items = value as unknown[];
    items.forEach((item, i) => {
      // Go decodes a null element of a struct list as the zero struct; so does this, for the engine.
      if (item === null) items[i] = {};
      else if (!isObject(item)) refuse(item, kind.list.name);
      else checkStruct(item, kind.list, path);
    });
  } else {
    if (!isObject(value)) refuse(value, goType(kind));
    for (const item of Object.values(value as Record<string, unknown>))
      if (item !== null) check(item, kind.map, structName, path);
  }
}

function checkStruct(value: Record<string, unknown>, type: Struct, prefix: string): void {
  for (const [name, kind] of Object.entries(type.fields)) {
    const field = value[name];
    if (field === null && type.keepNulls !== true && typeof kind === 'string' && kind in ZERO)
      value[name] = ZERO[kind];
    if (field === undefined || field === null) continue;
    check(field, kind, type.name, prefix === '' ? name : `${prefix}.${name}`);
  }
}

const EXEC_BODY: Struct = {
  name: 'ExecConfig',
  keepNulls: true,
  fields: {
    User: 'string',
    Privileged: 'boolean',
    Tty: 'boolean',
    ConsoleSize: 'numbers',
    AttachStdin: 'boolean',
    AttachStderr: 'boolean',
    AttachStdout: 'boolean',
    DetachKeys: 'string',
    Env: 'strings',
    WorkingDir: 'string',
    Cmd: 'strings',
  },
};

/** The body of `POST /containers/{id}/exec`, checked like a create body. */
export function checkExecBody(body: unknown): Record<string, unknown> {
  if (!isObject(body)) throw invalidArgument('exec configuration is missing');
  checkStruct(body, EXEC_BODY, '');
  return body;
}

/** The create body, checked; strings in string-or-array fields made arrays. */
export function checkCreateBody(body: unknown): CreateRequest {
  if (!isObject(body)) throw invalidArgument('Config cannot be empty in order to create a container');
  checkStruct(body, CREATE_BODY, '');
  for (const name of ['Cmd', 'Entrypoint', 'Shell'])
    if (typeof body[name] === 'string') body[name] = [body[name]];
  return body as CreateRequest;
}
