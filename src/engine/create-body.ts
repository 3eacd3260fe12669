/**
 * Type checks of `POST /containers/create` bodies before the engine reads them: a field of the
 * wrong JSON type is a 400 with Go's unmarshalling message, as dockerd answers, never a crash
 * deeper in. Docker's string-or-array fields (Cmd, Entrypoint, Shell) become arrays.
 */
import { invalidArgument } from '../common/errors.js';
import type { CreateRequest } from './engine.js';

type Kind = 'string' | 'number' | 'boolean' | 'object' | 'strings' | 'strslice' | 'objects' | 'stringMap';

const CONFIG_FIELDS: Record<string, Kind> = {
  Hostname: 'string',
  Domainname: 'string',
  User: 'string',
  AttachStdin: 'boolean',
  AttachStdout: 'boolean',
  AttachStderr: 'boolean',
  ExposedPorts: 'object',
  Tty: 'boolean',
  OpenStdin: 'boolean',
  StdinOnce: 'boolean',
  Env: 'strings',
  Cmd: 'strslice',
  Healthcheck: 'object',
  ArgsEscaped: 'boolean',
  Image: 'string',
  Volumes: 'object',
  WorkingDir: 'string',
  Entrypoint: 'strslice',
  NetworkDisabled: 'boolean',
  MacAddress: 'string',
  OnBuild: 'strings',
  Labels: 'stringMap',
  StopSignal: 'string',
  StopTimeout: 'number',
  Shell: 'strslice',
  HostConfig: 'object',
  NetworkingConfig: 'object',
};

const HOST_CONFIG_FIELDS: Record<string, Kind> = {
  Binds: 'strings',
  ContainerIDFile: 'string',
  LogConfig: 'object',
  NetworkMode: 'string',
  PortBindings: 'object',
  RestartPolicy: 'object',
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
  BlkioWeightDevice: 'objects',
  BlkioDeviceReadBps: 'objects',
  BlkioDeviceWriteBps: 'objects',
  BlkioDeviceReadIOps: 'objects',
  BlkioDeviceWriteIOps: 'objects',
  CpuPeriod: 'number',
  CpuQuota: 'number',
  CpuRealtimePeriod: 'number',
  CpuRealtimeRuntime: 'number',
  CpusetCpus: 'string',
  CpusetMems: 'string',
  Devices: 'objects',
  DeviceCgroupRules: 'strings',
  DeviceRequests: 'objects',
  MemoryReservation: 'number',
  MemorySwap: 'number',
  MemorySwappiness: 'number',
  OomKillDisable: 'boolean',
  PidsLimit: 'number',
  Ulimits: 'objects',
  Mounts: 'objects',
  MaskedPaths: 'strings',
  ReadonlyPaths: 'strings',
  Init: 'boolean',
};

const GO_TYPE: Record<Kind, string> = {
  string: 'string',
  number: 'int64',
  boolean: 'bool',
  object: 'struct',
  strings: '[]string',
  strslice: 'strslice.StrSlice',
  objects: '[]struct',
  stringMap: 'map[string]string',
};

function jsonType(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  return typeof value === 'object' ? 'object' : typeof value;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function fits(kind: Kind, value: unknown): boolean {
  switch (kind) {
    case 'string':
    case 'number':
    case 'boolean':
      return typeof value === kind && (kind !== 'number' || Number.isFinite(value));
    case 'object':
      return isObject(value);
    case 'strings':
      return Array.isArray(value) && value.every((item) => typeof item === 'string');
    case 'strslice':
      return (
        typeof value === 'string' || (Array.isArray(value) && value.every((item) => typeof item === 'string'))
      );
    case 'objects':
      return Array.isArray(value) && value.every(isObject);
    case 'stringMap':
      return isObject(value) && Object.values(value).every((item) => typeof item === 'string');
  }
}

function checkFields(value: Record<string, unknown>, fields: Record<string, Kind>, struct: string): void {
  for (const [name, kind] of Object.entries(fields)) {
    const field = value[name];
    // null is Go's zero value for every field type here.
    if (field === undefined || field === null || fits(kind, field)) continue;
    // Go names the element that failed inside an array of strings.
    const bad =
      (kind === 'strings' || kind === 'strslice') && Array.isArray(field)
        ? field.find((item) => typeof item !== 'string')
        : undefined;
    throw invalidArgument(
      bad === undefined
        ? `json: cannot unmarshal ${jsonType(field)} into Go struct field ${struct}.${name} of type ${GO_TYPE[kind]}`
        : `json: cannot unmarshal ${jsonType(bad)} into Go struct field ${struct}.${name} of type string`,
    );
  }
}

/** The create body, checked; strings in string-or-array fields made arrays. */
export function checkCreateBody(body: unknown): CreateRequest {
  if (!isObject(body)) throw invalidArgument('Config cannot be empty in order to create a container');
  checkFields(body, CONFIG_FIELDS, 'ContainerConfigWrapper');
  if (isObject(body.HostConfig)) checkFields(body.HostConfig, HOST_CONFIG_FIELDS, 'HostConfig');
  for (const name of ['Cmd', 'Entrypoint', 'Shell'])
    if (typeof body[name] === 'string') body[name] = [body[name]];
  return body as CreateRequest;
}
