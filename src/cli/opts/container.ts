/**
 * `berth run` / `berth create` flags into the Docker API create body, field for field as the docker
 * CLI builds it (cli/command/container/opts.go): the same keys in the same order, the same empty
 * values (`[]` versus `null`), the same normalisation (capabilities, ports, mounts, env files).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { flagBool, flagValue, flagValues, type ParsedArgs } from '../args.js';
import type { FlagDef } from '../command.js';
import { CommandError, StatusError } from '../errors.js';
import { DOCKER_ULIMIT_NAMES } from '../../linux/rlimits.js';
import {
  expandEnv,
  keyValueMap,
  memSwapBytes,
  parseGoDuration,
  parseNanoCpus,
  ramInBytes,
  readKeyValueFile,
} from './values.js';

/** The flags `run` and `create` share (run adds -d, --rm is shared, --detach-keys, --sig-proxy). */
export const CONTAINER_FLAGS: FlagDef[] = [
  { name: 'add-host', type: 'list', description: 'Add a custom host-to-IP mapping (host:ip)' },
  {
    name: 'annotation',
    type: 'map',
    description: 'Add an annotation to the container (passed through to the OCI runtime)',
  },
  { name: 'attach', short: 'a', type: 'list', description: 'Attach to STDIN, STDOUT or STDERR' },
  {
    name: 'blkio-weight',
    type: 'uint16',
    description: 'Block IO (relative weight), between 10 and 1000, or 0 to disable',
  },
  { name: 'cap-add', type: 'list', description: 'Add Linux capabilities' },
  { name: 'cap-drop', type: 'list', description: 'Drop Linux capabilities' },
  { name: 'cgroup-parent', type: 'string', description: 'Optional parent cgroup for the container' },
  { name: 'cgroupns', type: 'string', description: 'Cgroup namespace to use (host|private)' },
  { name: 'cidfile', type: 'string', description: 'Write the container ID to the file' },
  { name: 'cpu-period', type: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) period' },
  { name: 'cpu-quota', type: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
  { name: 'cpu-rt-period', type: 'int', description: 'Limit CPU real-time period in microseconds' },
  { name: 'cpu-rt-runtime', type: 'int', description: 'Limit CPU real-time runtime in microseconds' },
  { name: 'cpu-shares', short: 'c', type: 'int', description: 'CPU shares (relative weight)' },
  { name: 'cpus', type: 'decimal', description: 'Number of CPUs' },
  { name: 'cpuset-cpus', type: 'string', description: 'CPUs in which to allow execution (0-3, 0,1)' },
  { name: 'cpuset-mems', type: 'string', description: 'MEMs in which to allow execution (0-3, 0,1)' },
  { name: 'device', type: 'list', description: 'Add a host device to the container' },
  { name: 'device-cgroup-rule', type: 'list', description: 'Add a rule to the cgroup allowed devices list' },
  { name: 'dns', type: 'list', description: 'Set custom DNS servers' },
  { name: 'dns-option', type: 'list', description: 'Set DNS options', aliases: ['dns-opt'] },
  { name: 'dns-search', type: 'list', description: 'Set custom DNS search domains' },
  { name: 'domainname', type: 'string', description: 'Container NIS domain name' },
  { name: 'entrypoint', type: 'string', description: 'Overwrite the default ENTRYPOINT of the image' },
  { name: 'env', short: 'e', type: 'list', description: 'Set environment variables' },
  { name: 'env-file', type: 'list', description: 'Read in a file of environment variables' },
  { name: 'expose', type: 'list', description: 'Expose a port or a range of ports' },
  {
    name: 'gpus',
    type: 'string',
    description: 'GPU devices to add to the container (not supported by berth)',
  },
  { name: 'group-add', type: 'list', description: 'Add additional groups to join' },
  { name: 'health-cmd', type: 'string', description: 'Command to run to check health' },
  {
    name: 'health-interval',
    type: 'duration',
    description: 'Time between running the check (ms|s|m|h)',
    defaultText: '0s',
  },
  { name: 'health-retries', type: 'int', description: 'Consecutive failures needed to report unhealthy' },
  {
    name: 'health-start-interval',
    type: 'duration',
    description: 'Time between running the check during the start period (ms|s|m|h)',
    defaultText: '0s',
  },
  {
    name: 'health-start-period',
    type: 'duration',
    description:
      'Start period for the container to initialize before starting health-retries countdown (ms|s|m|h)',
    defaultText: '0s',
  },
  {
    name: 'health-timeout',
    type: 'duration',
    description: 'Maximum time to allow one check to run (ms|s|m|h)',
    defaultText: '0s',
  },
  { name: 'hostname', short: 'h', type: 'string', description: 'Container host name' },
  {
    name: 'init',
    type: 'bool',
    description: 'Run an init inside the container that forwards signals and reaps processes',
  },
  { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
  { name: 'ip', type: 'string', description: 'IPv4 address (e.g., 172.30.100.104)' },
  { name: 'ip6', type: 'string', description: 'IPv6 address (e.g., 2001:db8::33)' },
  { name: 'ipc', type: 'string', description: 'IPC mode to use' },
  { name: 'isolation', type: 'string', description: 'Container isolation technology' },
  // Deprecated in docker, accepted and ignored by both (kernel memory limits are gone from cgroup v2).
  {
    name: 'kernel-memory',
    type: 'bytes',
    description: 'Kernel memory limit (deprecated, ignored)',
    hidden: true,
  },
  { name: 'label', short: 'l', type: 'list', description: 'Set meta data on a container' },
  { name: 'label-file', type: 'list', description: 'Read in a line delimited file of labels' },
  { name: 'link', type: 'list', description: 'Add link to another container' },
  { name: 'log-driver', type: 'string', description: 'Logging driver for the container' },
  { name: 'log-opt', type: 'list', description: 'Log driver options' },
  { name: 'mac-address', type: 'string', description: 'Container MAC address (e.g., 92:d0:c6:0a:29:33)' },
  { name: 'memory', short: 'm', type: 'bytes', description: 'Memory limit' },
  { name: 'memory-reservation', type: 'bytes', description: 'Memory soft limit' },
  {
    name: 'memory-swap',
    type: 'bytes',
    description: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap",
    validate: validator(memSwapBytes),
  },
  {
    name: 'memory-swappiness',
    type: 'int',
    description: 'Tune container memory swappiness (0 to 100)',
    defaultText: '-1',
  },
  {
    name: 'mount',
    type: 'mount',
    description: 'Attach a filesystem mount to the container',
    validate: validator((value) => parseMount(value, '/')),
  },
  { name: 'name', type: 'string', description: 'Assign a name to the container' },
  { name: 'network', type: 'network', description: 'Connect a container to a network', aliases: ['net'] },
  {
    name: 'network-alias',
    type: 'list',
    description: 'Add network-scoped alias for the container',
    aliases: ['net-alias'],
  },
  { name: 'no-healthcheck', type: 'bool', description: 'Disable any container-specified HEALTHCHECK' },
  { name: 'oom-kill-disable', type: 'bool', description: 'Disable OOM Killer' },
  { name: 'oom-score-adj', type: 'int', description: "Tune host's OOM preferences (-1000 to 1000)" },
  { name: 'pid', type: 'string', description: 'PID namespace to use' },
  { name: 'pids-limit', type: 'int', description: 'Tune container pids limit (set -1 for unlimited)' },
  { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' },
  { name: 'privileged', type: 'bool', description: 'Give extended privileges to this container' },
  { name: 'publish', short: 'p', type: 'list', description: "Publish a container's port(s) to the host" },
  { name: 'publish-all', short: 'P', type: 'bool', description: 'Publish all exposed ports to random ports' },
  {
    name: 'pull',
    type: 'string',
    description: 'Pull image before running ("always", "missing", "never")',
    defaultText: '"missing"',
  },
  { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the pull output' },
  { name: 'read-only', type: 'bool', description: "Mount the container's root filesystem as read only" },
  {
    name: 'restart',
    type: 'string',
    description: 'Restart policy to apply when a container exits',
    defaultText: '"no"',
  },
  {
    name: 'rm',
    type: 'bool',
    description: 'Automatically remove the container and its associated anonymous volumes when it exits',
  },
  { name: 'runtime', type: 'string', description: 'Runtime to use for this container' },
  { name: 'security-opt', type: 'list', description: 'Security Options' },
  { name: 'shm-size', type: 'bytes', description: 'Size of /dev/shm' },
  { name: 'stop-signal', type: 'string', description: 'Signal to stop the container' },
  { name: 'stop-timeout', type: 'int', description: 'Timeout (in seconds) to stop a container' },
  { name: 'storage-opt', type: 'list', description: 'Storage driver options for the container' },
  { name: 'sysctl', type: 'map', description: 'Sysctl options', validate: validateSysctl },
  { name: 'tmpfs', type: 'list', description: 'Mount a tmpfs directory' },
  { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
  { name: 'ulimit', type: 'ulimit', description: 'Ulimit options', validate: validator(parseUlimit) },
  {
    name: 'user',
    short: 'u',
    type: 'string',
    description: 'Username or UID (format: <name|uid>[:<group|gid>])',
  },
  { name: 'userns', type: 'string', description: 'User namespace to use' },
  { name: 'uts', type: 'string', description: 'UTS namespace to use' },
  { name: 'volume', short: 'v', type: 'list', description: 'Bind mount a volume' },
  { name: 'volume-driver', type: 'string', description: 'Optional volume driver for the container' },
  { name: 'volumes-from', type: 'list', description: 'Mount volumes from the specified container(s)' },
  { name: 'workdir', short: 'w', type: 'string', description: 'Working directory inside the container' },
];

export interface CreateRequest {
  name?: string;
  platform?: string;
  pull: 'always' | 'missing' | 'never';
  cidfile?: string;
  image: string;
  body: CreateBody;
}

export interface CreateBody extends Record<string, unknown> {
  Image: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  HostConfig: Record<string, unknown> & { AutoRemove: boolean };
}

/** An invalid run/create option: reported with "berth: " and exit code 125 like the docker CLI. */
const fail = (message: string): never => {
  throw new CommandError(message);
};

export interface RestartPolicy {
  Name: string;
  MaximumRetryCount: number;
}

/** opts.ParseRestartPolicy: `no`, `always`, `unless-stopped`, `on-failure[:N]`; "" stays empty. */
export function parseRestartPolicy(policy: string): RestartPolicy {
  if (policy === '') return { Name: '', MaximumRetryCount: 0 };
  const colon = policy.indexOf(':');
  const name = colon === -1 ? policy : policy.slice(0, colon);
  const count = colon === -1 ? '' : policy.slice(colon + 1);
  if (colon !== -1 && name === '') fail('invalid restart policy format: no policy provided before colon');
  let maximum = 0;
  if (count !== '') {
    if (!/^[+-]?\d+$/.test(count))
      fail('invalid restart policy format: maximum retry count must be an integer');
    maximum = Number(count);
  }
  return { Name: name, MaximumRetryCount: maximum };
}

// ---------------------------------------------------------------------------------------------
// Ports (nat.ParsePortSpecs)

interface PortBinding {
  HostIp: string;
  HostPort: string;
}

function parsePortRange(ports: string): [number, number] | undefined {
  const valid = (s: string): boolean => /^\d+$/.test(s) && Number(s) <= 65535;
  if (!ports.includes('-')) return valid(ports) ? [Number(ports), Number(ports)] : undefined;
  const [start = '', end = ''] = ports.split('-');
  if (!valid(start) || !valid(end) || Number(end) < Number(start)) return undefined;
  return [Number(start), Number(end)];
}

/** nat.SplitProtoPort: "80/udp" -> ["udp", "80"]; a bare port is tcp. */
function splitProtoPort(raw: string): [string, string] {
  const parts = raw.split('/');
  if (raw === '' || (parts[0] ?? '') === '') return ['', ''];
  if (parts.length === 1) return ['tcp', raw];
  if ((parts[1] ?? '') === '') return ['tcp', parts[0] ?? ''];
  return [parts[1] ?? '', parts[0] ?? ''];
}

/** An IPv4 or IPv6 address (the URL parser checks IPv6; node:net is not loaded for this). */
function isIpAddress(ip: string): boolean {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) return ip.split('.').every((part) => Number(part) <= 255);
  if (!ip.includes(':')) return false;
  try {
    return new URL(`http://[${ip}]/`).hostname !== '';
  } catch {
    return false;
  }
}

export function parsePortSpecs(specs: string[]): {
  exposed: Record<string, Record<string, never>>;
  bindings: Record<string, PortBinding[]>;
} {
  const exposed: Record<string, Record<string, never>> = {};
  const bindings: Record<string, PortBinding[]> = {};
  for (const raw of specs) {
    const parts = raw.split(':');
    const n = parts.length;
    let containerPart = parts[n - 1] ?? '';
    let ip = n >= 3 ? parts.slice(0, n - 2).join(':') : '';
    let hostPort = n >= 2 ? (parts[n - 2] ?? '') : '';
    const [protoRaw, portText] = splitProtoPort(containerPart);
    containerPart = portText;
    if (ip.startsWith('[')) {
      const end = ip.indexOf(']');
      if (end === -1) fail(`invalid IP address ${ip}: missing ']' in address`);
      ip = ip.slice(1, end);
    }
    if (ip !== '' && !isIpAddress(ip)) fail(`invalid IP address: ${ip}`);
    if (containerPart === '') fail(`no port specified: ${raw}<empty>`);
    const range = parsePortRange(containerPart);
    if (!range) return fail(`invalid containerPort: ${containerPart}`);
    const [start, end] = range;
    let hostRange: [number, number] = [0, 0];
    if (hostPort !== '') {
      const parsed = parsePortRange(hostPort);
      if (!parsed) return fail(`invalid hostPort: ${hostPort}`);
      hostRange = parsed;
    }
    if (hostPort !== '' && end - start !== hostRange[1] - hostRange[0] && end !== start) {
      fail(`invalid ranges specified for container and host Ports: ${containerPart} and ${hostPort}`);
    }
    const proto = protoRaw.toLowerCase();
    if (!['tcp', 'udp', 'sctp'].includes(proto)) fail(`invalid proto: ${proto}`);
    for (let i = 0; i <= end - start; i++) {
      if (hostPort !== '') hostPort = String(hostRange[0] + i);
      if (start === end && hostRange[0] !== hostRange[1]) hostPort = `${hostPort}-${hostRange[1]}`;
      const key = `${start + i}/${proto}`;
      exposed[key] = {};
      (bindings[key] ??= []).push({ HostIp: ip, HostPort: hostPort });
    }
  }
  return { exposed, bindings };
}

// ---------------------------------------------------------------------------------------------
// Mounts, volumes, devices, ulimits

/** A CSV record as Go's encoding/csv reads one line (quotes allowed). */
function csvFields(value: string): string[] {
  const fields: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '"' && value[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else field += c;
  }
  fields.push(field);
  return fields;
}

const parseBool = (value: string): boolean | undefined =>
  ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)
    ? true
    : ['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)
      ? false
      : undefined;

/** opts.MountOpt: `type=bind,source=/a,target=/b,readonly` into a mount.Mount. */
export function parseMount(value: string, cwd: string): Record<string, unknown> {
  const problem = (message: string): never => fail(message);
  const mount: {
    Type: string;
    Source?: string;
    Target?: string;
    ReadOnly?: boolean;
    Consistency?: string;
    BindOptions?: Record<string, unknown>;
    VolumeOptions?: {
      NoCopy?: boolean;
      Labels: Record<string, string>;
      Subpath?: string;
      DriverConfig: { Name?: string; Options?: Record<string, string> };
    };
    TmpfsOptions?: { SizeBytes?: number; Mode?: number };
  } = { Type: 'volume' };
  const volume = (): NonNullable<typeof mount.VolumeOptions> =>
    (mount.VolumeOptions ??= { Labels: {}, DriverConfig: {} });
  const bind = (): Record<string, unknown> => (mount.BindOptions ??= {});
  const tmpfs = (): NonNullable<typeof mount.TmpfsOptions> => (mount.TmpfsOptions ??= {});
  const setOnMap = (target: Record<string, string>, kv: string): void => {
    const eq = kv.indexOf('=');
    const k = eq === -1 ? kv : kv.slice(0, eq);
    if (k !== '') target[k] = eq === -1 ? '' : kv.slice(eq + 1);
  };
  const bool = (key: string, val: string): boolean =>
    parseBool(val) ?? problem(`invalid value for ${key}: ${val}`);
  for (const field of csvFields(value)) {
    const eq = field.indexOf('=');
    const key = (eq === -1 ? field : field.slice(0, eq)).toLowerCase();
    const val = eq === -1 ? '' : field.slice(eq + 1);
    if (eq === -1) {
      if (key === 'readonly' || key === 'ro') mount.ReadOnly = true;
      else if (key === 'volume-nocopy') volume().NoCopy = true;
      else if (key === 'bind-nonrecursive') bind().NonRecursive = true;
      else problem(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    switch (key) {
      case 'type':
        mount.Type = val.toLowerCase();
        break;
      case 'source':
      case 'src':
        mount.Source = !isAbsolute(val) && val.startsWith('.') ? resolve(cwd, val) : val;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        mount.Target = val;
        break;
      case 'readonly':
      case 'ro':
        mount.ReadOnly = bool(key, val);
        break;
      case 'consistency':
        mount.Consistency = val.toLowerCase();
        break;
      case 'bind-propagation':
        bind().Propagation = val.toLowerCase();
        break;
      case 'bind-nonrecursive':
        bind().NonRecursive = bool(key, val);
        break;
      case 'bind-recursive':
        if (val === 'disabled') bind().NonRecursive = true;
        else if (val === 'writable') bind().ReadOnlyNonRecursive = true;
        else if (val === 'readonly') bind().ReadOnlyForceRecursive = true;
        else if (val !== 'enabled') {
          problem(
            `invalid value for ${key}: ${val} (must be "enabled", "disabled", "writable", or "readonly")`,
          );
        }
        break;
      case 'volume-subpath':
        volume().Subpath = val;
        break;
      case 'volume-nocopy':
        volume().NoCopy = bool(key, val);
        break;
      case 'volume-label':
        setOnMap(volume().Labels, val);
        break;
      case 'volume-driver':
        volume().DriverConfig.Name = val;
        break;
      case 'volume-opt':
        setOnMap((volume().DriverConfig.Options ??= {}), val);
        break;
      case 'tmpfs-size':
        try {
          tmpfs().SizeBytes = ramInBytes(val);
        } catch {
          problem(`invalid value for ${key}: ${val}`);
        }
        break;
      case 'tmpfs-mode':
        if (!/^[0-7]+$/.test(val)) problem(`invalid value for ${key}: ${val}`);
        tmpfs().Mode = Number.parseInt(val, 8);
        break;
      default:
        problem(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (mount.Type === '') problem('type is required');
  if (!mount.Target) problem('target is required');
  if (mount.VolumeOptions && mount.Type !== 'volume')
    problem(`cannot mix 'volume-*' options with mount type '${mount.Type}'`);
  if (mount.BindOptions && mount.Type !== 'bind')
    problem(`cannot mix 'bind-*' options with mount type '${mount.Type}'`);
  if (mount.TmpfsOptions && mount.Type !== 'tmpfs')
    problem(`cannot mix 'tmpfs-*' options with mount type '${mount.Type}'`);
  if (mount.BindOptions?.ReadOnlyNonRecursive && !mount.ReadOnly) {
    problem("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction");
  }
  if (mount.BindOptions?.ReadOnlyForceRecursive && !mount.ReadOnly) {
    problem("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction");
  }
  // Go omits empty fields (omitempty); keep docker's key order.
  const out: Record<string, unknown> = { Type: mount.Type };
  if (mount.Source) out.Source = mount.Source;
  out.Target = mount.Target;
  if (mount.ReadOnly) out.ReadOnly = true;
  if (mount.Consistency) out.Consistency = mount.Consistency;
  if (mount.BindOptions) out.BindOptions = mount.BindOptions;
  if (mount.VolumeOptions) {
    const v = mount.VolumeOptions;
    const options: Record<string, unknown> = {};
    if (v.NoCopy) options.NoCopy = true;
    if (Object.keys(v.Labels).length > 0) options.Labels = sortKeys(v.Labels);
    if (v.Subpath) options.Subpath = v.Subpath;
    const driver: Record<string, unknown> = {};
    if (v.DriverConfig.Name) driver.Name = v.DriverConfig.Name;
    if (v.DriverConfig.Options && Object.keys(v.DriverConfig.Options).length > 0) {
      driver.Options = sortKeys(v.DriverConfig.Options);
    }
    options.DriverConfig = driver;
    out.VolumeOptions = options;
  }
  if (mount.TmpfsOptions) out.TmpfsOptions = mount.TmpfsOptions;
  return out;
}

const sortKeys = <T>(map: Record<string, T>): Record<string, T> =>
  Object.fromEntries(
    Object.keys(map)
      .sort()
      .map((k) => [k, map[k] as T]),
  );

const DEVICE_MODE = /^[rwm]{1,3}$/;

const SYSCTL_KEYS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

/** opts.ValidateSysctl: namespaced sysctls only (IPC kernel keys, fs.mqueue.*, net.*). */
export function validateSysctl(value: string): string | undefined {
  const eq = value.indexOf('=');
  const key = value.slice(0, eq);
  if (eq !== -1 && (SYSCTL_KEYS.has(key) || key.startsWith('fs.mqueue.') || key.startsWith('net.')))
    return undefined;
  return `sysctl '${value}' is not allowed`;
}

/** A checker for a flag value: the error message, or undefined when the value is fine. */
export function validator(parse: (value: string) => unknown): (value: string) => string | undefined {
  return (value) => {
    try {
      parse(value);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  };
}

/** parseLinuxDevice: `/dev/a[:/dev/b][:rwm]`. */
export function parseDevice(value: string): Record<string, string> {
  const parts = value.split(':');
  if (parts.length > 3) fail(`invalid device specification: ${value}`);
  let permissions = 'rwm';
  let dst = '';
  if (parts.length === 3) permissions = parts[2] ?? '';
  if (parts.length >= 2) {
    const second = parts[1] ?? '';
    if (DEVICE_MODE.test(second) && new Set(second).size === second.length) permissions = second;
    else dst = second;
  }
  const src = parts[0] ?? '';
  if (dst === '') dst = src;
  if (!DEVICE_MODE.test(permissions)) fail(`bad mode specified: ${permissions}`);
  if (!dst.startsWith('/')) fail(`invalid device specification: ${value}`);
  return { PathOnHost: src, PathInContainer: dst, CgroupPermissions: permissions };
}

const ULIMIT_NAMES = DOCKER_ULIMIT_NAMES;

/** units.ParseUlimit: `name=soft[:hard]`. */
export function parseUlimit(value: string): { Name: string; Hard: number; Soft: number } {
  const eq = value.indexOf('=');
  if (eq === -1) fail(`invalid ulimit argument: ${value}`);
  const name = value.slice(0, eq);
  if (!ULIMIT_NAMES.has(name)) fail(`invalid ulimit type: ${name}`);
  const limits = value.slice(eq + 1).split(':');
  if (limits.length > 2)
    fail(`too many limit value arguments - ${value.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``);
  const number = (text: string): number => {
    if (!/^-?\d+$/.test(text)) fail(`invalid ulimit argument: ${value}`);
    return Number(text);
  };
  const soft = number(limits[0] ?? '');
  const hard = limits.length === 2 ? number(limits[1] ?? '') : soft;
  if (soft > hard) fail(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { Name: name, Hard: hard, Soft: soft };
}

/** opts.NormalizeCapability and EffectiveCapAddCapDrop: CAP_ prefix, ALL kept, sorted. */
export function effectiveCaps(
  add: string[],
  drop: string[],
): { add: string[] | null; drop: string[] | null } {
  const normalize = (cap: string): string => {
    const upper = cap.trim().toUpperCase();
    return upper === 'ALL' || upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  };
  const adds = new Set(add.map(normalize));
  const drops = new Set<string>();
  for (const cap of drop.map(normalize)) if (cap === 'ALL' || !adds.has(cap)) drops.add(cap);
  const addList = adds.has('ALL') ? ['ALL'] : [...adds].sort();
  const dropList = [...drops].sort();
  return { add: addList.length > 0 ? addList : null, drop: dropList.length > 0 ? dropList : null };
}

/** parseSecurityOpts: a seccomp profile file is sent as its (compacted) JSON text. */
export function parseSecurityOpts(values: string[]): string[] {
  return values.map((opt) => {
    let sep = opt.indexOf('=');
    if (sep === -1 && opt !== 'no-new-privileges') sep = opt.indexOf(':');
    const key = sep === -1 ? opt : opt.slice(0, sep);
    const value = sep === -1 ? '' : opt.slice(sep + 1);
    if ((sep === -1 || value === '') && key !== 'no-new-privileges')
      fail(`Invalid --security-opt: ${JSON.stringify(opt)}`);
    if (key !== 'seccomp' || value === 'builtin' || value === 'unconfined') return opt;
    let text: string;
    try {
      text = readFileSync(value, 'utf8');
    } catch (err) {
      return fail(`opening seccomp profile (${value}) failed: ${(err as Error).message}`);
    }
    try {
      return `seccomp=${JSON.stringify(JSON.parse(text))}`;
    } catch (err) {
      return fail(`compacting json for seccomp profile (${value}) failed: ${(err as Error).message}`);
    }
  });
}

/** `-v` values: `/ctr` alone is an anonymous volume; `src:dst[:opts]` a bind or named volume. */
function splitVolumes(values: string[], cwd: string): { binds: string[]; volumes: string[] } {
  const binds: string[] = [];
  const volumes: string[] = [];
  for (const value of values) {
    if (value === '') fail('invalid empty volume spec');
    const parts = value.split(':');
    if (parts.length === 1) {
      if (!value.startsWith('/'))
        fail(
          `invalid volume specification: '${value}': invalid mount config for type "volume": invalid mount path: '${value}' mount path must be absolute`,
        );
      volumes.push(value);
      continue;
    }
    if (parts.length > 3 || (parts[1] ?? '') === '') fail(`invalid spec: ${value}: too many colons`);
    let source = parts[0] ?? '';
    if (!isAbsolute(source) && source.startsWith('.')) source = resolve(cwd, source);
    binds.push([source, ...parts.slice(1)].join(':'));
  }
  return { binds, volumes };
}

// ---------------------------------------------------------------------------------------------
// Networks

const NON_USER_DEFINED = new Set(['default', 'bridge', 'host', 'none']);
const isUserDefined = (network: string): boolean =>
  !NON_USER_DEFINED.has(network) && !network.startsWith('container:');

interface Attachment {
  target: string;
  aliases: string[];
  ipv4?: string;
  ipv6?: string;
  mac?: string;
  linkLocalIps: string[];
  driverOpts: Record<string, string>;
  gwPriority: number;
  links: string[];
}

/** `--network NAME` or the advanced `--network name=n,alias=a,ip=...`. */
function parseNetworkFlag(value: string): Attachment {
  const attachment: Attachment = {
    target: value,
    aliases: [],
    linkLocalIps: [],
    driverOpts: {},
    gwPriority: 0,
    links: [],
  };
  if (!value.includes('=')) return attachment;
  attachment.target = '';
  for (const field of csvFields(value)) {
    const eq = field.indexOf('=');
    const key = field.slice(0, eq).toLowerCase();
    const val = field.slice(eq + 1);
    if (eq === -1) fail(`invalid field ${field}`);
    switch (key) {
      case 'name':
        attachment.target = val;
        break;
      case 'alias':
        attachment.aliases.push(val);
        break;
      case 'ip':
        attachment.ipv4 = val;
        break;
      case 'ip6':
        attachment.ipv6 = val;
        break;
      case 'mac-address':
        attachment.mac = val;
        break;
      case 'link-local-ip':
        attachment.linkLocalIps.push(val);
        break;
      case 'driver-opt': {
        const kv = val.indexOf('=');
        attachment.driverOpts[val.slice(0, kv === -1 ? undefined : kv)] = kv === -1 ? '' : val.slice(kv + 1);
        break;
      }
      case 'gw-priority':
        attachment.gwPriority = Number(val);
        break;
      default:
        fail(`invalid field key ${key}`);
    }
  }
  return attachment;
}

function endpointSettings(a: Attachment): Record<string, unknown> {
  if (a.target.trim() === '') fail('no name set for network');
  if (!isUserDefined(a.target)) {
    if (a.aliases.length > 0) fail('network-scoped aliases are only supported for user-defined networks');
    if (a.links.length > 0) fail('links are only supported for user-defined networks');
  }
  let ipam: Record<string, unknown> | null = null;
  if (a.ipv4 || a.ipv6 || a.linkLocalIps.length > 0) {
    ipam = {};
    if (a.ipv4) ipam.IPv4Address = a.ipv4;
    if (a.ipv6) ipam.IPv6Address = a.ipv6;
    if (a.linkLocalIps.length > 0) ipam.LinkLocalIPs = a.linkLocalIps;
  }
  if (a.mac !== undefined && a.mac !== '' && !/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(a.mac.trim())) {
    fail(`${a.mac} is not a valid mac address`);
  }
  return {
    IPAMConfig: ipam,
    Links: a.links.length > 0 ? a.links : null,
    Aliases: a.aliases.length > 0 ? a.aliases : null,
    MacAddress: a.mac ?? '',
    DriverOpts: Object.keys(a.driverOpts).length > 0 ? a.driverOpts : null,
    GwPriority: a.gwPriority,
    NetworkID: '',
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: null,
  };
}

const isEmptyEndpoint = (a: Attachment): boolean =>
  a.aliases.length === 0 &&
  !a.ipv4 &&
  !a.ipv6 &&
  !a.mac &&
  a.linkLocalIps.length === 0 &&
  Object.keys(a.driverOpts).length === 0 &&
  a.gwPriority === 0 &&
  a.links.length === 0;

function networking(args: ParsedArgs): { mode: string; endpoints: Record<string, unknown> } {
  const attachments = flagValues(args, 'network').map(parseNetworkFlag);
  const aliases = flagValues(args, 'network-alias');
  const links = flagValues(args, 'link');
  const ipv4 = flagValue(args, 'ip') ?? '';
  const ipv6 = flagValue(args, 'ip6') ?? '';
  const mac = flagValue(args, 'mac-address') ?? '';
  const apply = (a: Attachment): void => {
    if (a.aliases.length > 0 && aliases.length > 0)
      fail('conflicting options: cannot specify both --network-alias and per-network alias');
    if (a.ipv4 && ipv4) fail('conflicting options: cannot specify both --ip and per-network IPv4 address');
    if (a.ipv6 && ipv6) fail('conflicting options: cannot specify both --ip6 and per-network IPv6 address');
    if (a.mac && mac)
      fail('conflicting options: cannot specify both --mac-address and per-network MAC address');
    if (aliases.length > 0) a.aliases = [...aliases];
    if (isUserDefined(a.target) && links.length > 0) a.links = [...links];
    if (ipv4) a.ipv4 = ipv4;
    if (ipv6) a.ipv6 = ipv6;
    if (mac) a.mac = mac;
  };
  const endpoints: Record<string, unknown> = {};
  if (attachments.length === 0) {
    const a = parseNetworkFlag('default');
    apply(a);
    endpoints.default = endpointSettings(a);
    return { mode: 'default', endpoints };
  }
  let userDefined = false;
  let nonUserDefined = false;
  attachments.forEach((a, i) => {
    if (isUserDefined(a.target)) userDefined = true;
    else nonUserDefined = true;
    if (i === 0) apply(a);
    const settings = endpointSettings(a);
    if (a.target in endpoints) fail(`network ${JSON.stringify(a.target)} is specified multiple times`);
    // docker leaves out the endpoint of a single network given without options.
    if (i === 0 && attachments.length === 1 && isEmptyEndpoint(a)) return;
    endpoints[a.target] = settings;
  });
  if (userDefined && nonUserDefined)
    fail('conflicting options: cannot attach both user-defined and non-user-defined network-modes');
  return { mode: attachments[0]?.target ?? 'default', endpoints };
}

// ---------------------------------------------------------------------------------------------
// The create body

export interface ParseContext {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** run -d: nothing is attached. */
  detach: boolean;
}

/** Builds the create request from parsed run/create flags; positional[0] is the image. */
export function parseCreate(args: ParsedArgs, context: ParseContext): CreateRequest {
  const [image = '', ...cmd] = args.positional;
  const str = (name: string): string => flagValue(args, name) ?? '';
  const int = (name: string, fallback = 0): number => {
    const value = flagValue(args, name);
    return value === undefined ? fallback : Number(value);
  };
  const bytes = (name: string): number => {
    const value = flagValue(args, name);
    return value === undefined ? 0 : ramInBytes(value);
  };
  const duration = (name: string): number => {
    const value = flagValue(args, name);
    return value === undefined ? 0 : parseGoDuration(value);
  };
  const changed = (name: string): boolean => args.flags.has(name);

  if (changed('gpus')) fail('--gpus is not supported by berth');

  // Attach
  const attach = flagValues(args, 'attach').map((s) => s.toLowerCase());
  for (const stream of attach) {
    if (!['stdin', 'stdout', 'stderr'].includes(stream)) fail(`valid streams are STDIN, STDOUT and STDERR`);
  }
  const interactive = flagBool(args, 'interactive');
  let attachStdin = attach.includes('stdin') || interactive;
  let attachStdout = attach.includes('stdout') || attach.length === 0;
  let attachStderr = attach.includes('stderr') || attach.length === 0;
  if (context.detach) {
    if (attach.length > 0)
      throw new StatusError(1, 'conflicting options: cannot specify both --attach and --detach');
    attachStdin = attachStdout = attachStderr = false;
  }

  // Environment and labels
  const env: string[] = [];
  for (const file of flagValues(args, 'env-file')) env.push(...readKeyValueFile(file, context.env, true));
  for (const value of flagValues(args, 'env')) env.push(expandEnv(value, context.env));
  const labelLines: string[] = [];
  for (const file of flagValues(args, 'label-file'))
    labelLines.push(...readKeyValueFile(file, context.env, false));
  labelLines.push(...flagValues(args, 'label'));
  const labels = sortKeys(keyValueMap(labelLines));

  // Ports
  const { exposed, bindings } = parsePortSpecs(flagValues(args, 'publish'));
  for (const value of flagValues(args, 'expose')) {
    if (value.includes(':')) fail(`invalid port format for --expose: ${value}`);
    const [proto, port] = splitProtoPort(value);
    const range = parsePortRange(port);
    if (!range) return fail(`invalid range format for --expose: ${value}, error: invalid port: ${port}`);
    for (let p = range[0]; p <= range[1]; p++) exposed[`${p}/${proto}`] ??= {};
  }

  // Healthcheck
  const healthSet =
    str('health-cmd') !== '' ||
    ['health-interval', 'health-timeout', 'health-start-period', 'health-start-interval'].some(
      (n) => duration(n) !== 0,
    ) ||
    int('health-retries') !== 0;
  let healthcheck: Record<string, unknown> | undefined;
  if (flagBool(args, 'no-healthcheck')) {
    if (healthSet) fail('--no-healthcheck conflicts with --health-* options');
    healthcheck = { Test: ['NONE'] };
  } else if (healthSet) {
    for (const name of [
      'health-interval',
      'health-timeout',
      'health-retries',
      'health-start-period',
      'health-start-interval',
    ]) {
      const value = name === 'health-retries' ? int(name) : duration(name);
      if (value < 0) fail(`--${name} cannot be negative`);
    }
    healthcheck = {};
    if (str('health-cmd') !== '') healthcheck.Test = ['CMD-SHELL', str('health-cmd')];
    const add = (key: string, value: number): void => {
      if (value !== 0 && healthcheck) healthcheck[key] = value;
    };
    add('Interval', duration('health-interval'));
    add('Timeout', duration('health-timeout'));
    add('StartPeriod', duration('health-start-period'));
    add('StartInterval', duration('health-start-interval'));
    add('Retries', int('health-retries'));
  }

  // Restart policy and removal
  const restart = parseRestartPolicy(flagValue(args, 'restart') ?? 'no');
  const autoRemove = flagBool(args, 'rm');
  if (autoRemove && restart.Name !== '' && restart.Name !== 'no') {
    fail('conflicting options: cannot specify both --restart and --rm');
  }

  const entrypointFlag = flagValue(args, 'entrypoint');
  const entrypoint = entrypointFlag === undefined ? null : [entrypointFlag];
  const { binds, volumes } = splitVolumes(flagValues(args, 'volume'), context.cwd);
  const caps = effectiveCaps(flagValues(args, 'cap-add'), flagValues(args, 'cap-drop'));
  const tmpfs: Record<string, string> = {};
  for (const value of flagValues(args, 'tmpfs')) {
    const colon = value.indexOf(':');
    const target = colon === -1 ? value : value.slice(0, colon);
    if (!target.startsWith('/')) fail(`invalid tmpfs mount: ${value}: the path must be absolute`);
    tmpfs[target] = colon === -1 ? '' : value.slice(colon + 1);
  }
  const sysctls = keyValueMap(flagValues(args, 'sysctl'));
  const storageOpts = keyValueMap(flagValues(args, 'storage-opt'));
  const annotations = keyValueMap(flagValues(args, 'annotation'));
  const logOpts = keyValueMap(flagValues(args, 'log-opt'));
  const extraHosts = flagValues(args, 'add-host').map((value) => {
    const sep = value.search(/[=:]/);
    if (sep <= 0) fail(`bad format for add-host: ${JSON.stringify(value)}`);
    return `${value.slice(0, sep)}:${value.slice(sep + 1)}`;
  });
  const mounts = flagValues(args, 'mount').map((value) => parseMount(value, context.cwd));
  const ulimits = flagValues(args, 'ulimit')
    .map(parseUlimit)
    .sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
  const memorySwap = flagValue(args, 'memory-swap');
  const cpus = flagValue(args, 'cpus');
  const net = networking(args);
  const stopTimeout = flagValue(args, 'stop-timeout');
  const securityOpt = flagValues(args, 'security-opt');
  const pull = str('pull') || 'missing';
  if (!['always', 'missing', 'never'].includes(pull)) {
    fail(`invalid pull option: '${pull}': must be one of "always", "missing" or "never"`);
  }
  const tty = flagBool(args, 'tty');

  const config: Record<string, unknown> = {
    Hostname: str('hostname'),
    Domainname: str('domainname'),
    User: str('user'),
    AttachStdin: attachStdin,
    AttachStdout: attachStdout,
    AttachStderr: attachStderr,
  };
  if (Object.keys(exposed).length > 0) config.ExposedPorts = sortKeys(exposed);
  Object.assign(config, {
    Tty: tty,
    OpenStdin: interactive,
    StdinOnce: interactive && attachStdin,
    Env: env.length > 0 ? env : null,
    Cmd: cmd.length > 0 ? cmd : null,
  });
  if (healthcheck) config.Healthcheck = healthcheck;
  Object.assign(config, {
    Image: image,
    Volumes: Object.fromEntries(volumes.sort().map((v) => [v, {}])),
    WorkingDir: str('workdir'),
    Entrypoint: entrypoint,
    OnBuild: null,
    Labels: labels,
  });
  if (str('stop-signal') !== '') config.StopSignal = str('stop-signal');
  if (stopTimeout !== undefined) config.StopTimeout = Number(stopTimeout);

  const hostConfig: Record<string, unknown> & { AutoRemove: boolean } = {
    Binds: binds.length > 0 ? binds : null,
    ContainerIDFile: str('cidfile'),
    LogConfig: { Type: str('log-driver'), Config: sortKeys(logOpts) },
    NetworkMode: net.mode,
    PortBindings: sortKeys(bindings),
    RestartPolicy: restart,
    AutoRemove: autoRemove,
    VolumeDriver: str('volume-driver'),
    VolumesFrom: flagValues(args, 'volumes-from').length > 0 ? flagValues(args, 'volumes-from') : null,
    ConsoleSize: [0, 0],
  };
  if (Object.keys(annotations).length > 0) hostConfig.Annotations = sortKeys(annotations);
  Object.assign(hostConfig, {
    CapAdd: caps.add,
    CapDrop: caps.drop,
    CgroupnsMode: str('cgroupns'),
    Dns: flagValues(args, 'dns'),
    DnsOptions: flagValues(args, 'dns-option'),
    DnsSearch: flagValues(args, 'dns-search'),
    ExtraHosts: extraHosts.length > 0 ? extraHosts : null,
    GroupAdd: flagValues(args, 'group-add').length > 0 ? flagValues(args, 'group-add') : null,
    IpcMode: str('ipc'),
    Cgroup: '',
    Links: links(args, net.mode),
    OomScoreAdj: int('oom-score-adj'),
    PidMode: str('pid'),
    Privileged: flagBool(args, 'privileged'),
    PublishAllPorts: flagBool(args, 'publish-all'),
    ReadonlyRootfs: flagBool(args, 'read-only'),
    SecurityOpt: securityOpt.length > 0 ? parseSecurityOpts(securityOpt) : null,
  });
  if (Object.keys(storageOpts).length > 0) hostConfig.StorageOpt = sortKeys(storageOpts);
  if (Object.keys(tmpfs).length > 0) hostConfig.Tmpfs = sortKeys(tmpfs);
  Object.assign(hostConfig, { UTSMode: str('uts'), UsernsMode: str('userns'), ShmSize: bytes('shm-size') });
  if (Object.keys(sysctls).length > 0) hostConfig.Sysctls = sortKeys(sysctls);
  if (str('runtime') !== '') hostConfig.Runtime = str('runtime');
  Object.assign(hostConfig, {
    Isolation: str('isolation'),
    CpuShares: int('cpu-shares'),
    Memory: bytes('memory'),
    NanoCpus: cpus === undefined ? 0 : parseNanoCpus(cpus),
    CgroupParent: str('cgroup-parent'),
    BlkioWeight: int('blkio-weight'),
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: [],
    BlkioDeviceWriteBps: [],
    BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [],
    CpuPeriod: int('cpu-period'),
    CpuQuota: int('cpu-quota'),
    CpuRealtimePeriod: int('cpu-rt-period'),
    CpuRealtimeRuntime: int('cpu-rt-runtime'),
    CpusetCpus: str('cpuset-cpus'),
    CpusetMems: str('cpuset-mems'),
    Devices: flagValues(args, 'device').map(parseDevice),
    DeviceCgroupRules:
      flagValues(args, 'device-cgroup-rule').length > 0 ? flagValues(args, 'device-cgroup-rule') : null,
    DeviceRequests: null,
    MemoryReservation: bytes('memory-reservation'),
    MemorySwap: memorySwap === undefined ? 0 : memSwapBytes(memorySwap),
    MemorySwappiness: int('memory-swappiness', -1),
    OomKillDisable: flagBool(args, 'oom-kill-disable'),
    PidsLimit: int('pids-limit'),
    Ulimits: ulimits,
    CpuCount: 0,
    CpuPercent: 0,
    IOMaximumIOps: 0,
    IOMaximumBandwidth: 0,
  });
  if (mounts.length > 0) hostConfig.Mounts = mounts;
  Object.assign(hostConfig, { MaskedPaths: null, ReadonlyPaths: null });
  if (changed('init')) hostConfig.Init = flagBool(args, 'init');

  const body = {
    ...config,
    HostConfig: hostConfig,
    NetworkingConfig: { EndpointsConfig: net.endpoints },
  } as unknown as CreateBody;
  return {
    name: flagValue(args, 'name'),
    platform: flagValue(args, 'platform'),
    pull: pull as CreateRequest['pull'],
    cidfile: flagValue(args, 'cidfile'),
    image,
    body,
  };
}

/** `--link` is a legacy link only on the default bridge; on user networks it is an endpoint alias. */
function links(args: ParsedArgs, mode: string): string[] | null {
  const values = flagValues(args, 'link');
  if (values.length === 0 || isUserDefined(mode)) return null;
  return values.map((link) => (link.includes(':') ? link : `${link}:${link}`));
}
