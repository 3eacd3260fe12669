/**
 * berthd's configuration: defaults, /etc/berth/daemon.json (docker's daemon.json keys where they
 * exist) and command-line flags like dockerd's. One table describes every directive: its file key,
 * its flag, and the check its value must pass, so the file and the flags are validated alike. As in
 * dockerd, an unknown key or a key given both in the file and as a flag stops start-up.
 */
import { isIP } from 'node:net';
import { isAbsolute, normalize } from 'node:path';
import { describeError, invalidArgument } from '../common/errors.js';
import { DEFAULT_HOST, parseHost } from './hosts.js';
import { parseJsonText } from './json-text.js';
import { BUILTIN_RUNTIME } from '../engine/create-checks.js';

export const DEFAULT_CONFIG_FILE = '/etc/berth/daemon.json';
export { BUILTIN_RUNTIME } from '../engine/create-checks.js';
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

export interface RuntimeConfig {
  path: string;
  runtimeArgs?: string[];
}

export interface AddressPool {
  base: string;
  size: number;
}

export interface DaemonConfig {
  dataRoot: string;
  execRoot: string;
  hosts: string[];
  debug: boolean;
  logLevel: LogLevel;
  logDriver: string;
  logOpts: Record<string, string>;
  defaultUlimits: Record<string, Ulimit>;
  insecureRegistries: string[];
  registryMirrors: string[];
  liveRestore: boolean;
  defaultRuntime: string;
  runtimes: Record<string, RuntimeConfig>;
  metricsAddr?: string;
  tls: boolean;
  tlsVerify: boolean;
  tlsCaCert?: string;
  tlsCert?: string;
  tlsKey?: string;
  group?: string;
  bip?: string;
  /** Name of the default bridge device (Docker's `bridge` key, `-b`). */
  bridge: string;
  mtu: number;
  /** berth's own: CNI network configuration lists, each one a network of driver `cni`. */
  cniConfigDir: string;
  defaultAddressPools: AddressPool[];
  usernsRemap?: string;
  /** Run an init as PID 1 of every container that does not say otherwise (`--init=false`). */
  init?: boolean;
  /** The init binary (default: berth-init). */
  initPath?: string;
}

export function defaultConfig(): DaemonConfig {
  return {
    dataRoot: '/var/lib/berth',
    execRoot: '/run/berth',
    hosts: [],
    debug: false,
    logLevel: 'info',
    logDriver: 'json-file',
    logOpts: {},
    defaultUlimits: {},
    insecureRegistries: [],
    registryMirrors: [],
    liveRestore: false,
    defaultRuntime: BUILTIN_RUNTIME,
    runtimes: {},
    tls: false,
    tlsVerify: false,
    bridge: 'berth0',
    mtu: 1500,
    cniConfigDir: '/etc/berth/cni/net.d',
    defaultAddressPools: [],
  };
}

// ---- value checks: each gets the raw value and a label naming the key or flag ----

type Check<T> = (raw: unknown, label: string) => T;

function typeName(raw: unknown): string {
  if (raw === undefined) return 'nothing';
  if (raw === null) return 'null';
  if (Array.isArray(raw)) return 'a list';
  if (typeof raw === 'object') return 'an object';
  return `${typeof raw === 'string' ? 'the string' : typeof raw} ${JSON.stringify(raw)}`;
}

const fail = (label: string, message: string): never => {
  throw invalidArgument(`${label}: ${message}`);
};

const bool: Check<boolean> = (raw, label) =>
  typeof raw === 'boolean' ? raw : fail(label, `expected true or false, got ${typeName(raw)}`);

const text: Check<string> = (raw, label) => {
  if (typeof raw !== 'string') return fail(label, `expected a string, got ${typeName(raw)}`);
  if (raw.trim() === '') return fail(label, 'must not be empty');
  return raw;
};

const absolutePath: Check<string> = (raw, label) => {
  const path = text(raw, label);
  if (!isAbsolute(path)) fail(label, `must be an absolute path, got ${JSON.stringify(path)}`);
  return normalize(path).replace(/(.)\/$/, '$1');
};

function object(raw: unknown, label: string): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return fail(label, `expected an object, got ${typeName(raw)}`);
  }
  return raw as Record<string, unknown>;
}

function listOf<T>(check: Check<T>): Check<T[]> {
  return (raw, label) => {
    if (!Array.isArray(raw)) return fail(label, `expected a list, got ${typeName(raw)}`);
    return raw.map((item, i) => check(item, `${label}[${i}]`));
  };
}

function integer(raw: unknown, label: string): number {
  if (typeof raw !== 'number' || !Number.isSafeInteger(raw)) {
    return fail(label, `expected an integer, got ${typeName(raw)}`);
  }
  return raw;
}

/** Rejects keys of a nested object that the directive does not know. */
function onlyKeys(value: Record<string, unknown>, allowed: string[], label: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(`${label}.${key}`, `unknown key (expected ${allowed.join(', ')})`);
  }
}

function cidr(value: string, label: string): { family: 4 | 6; prefix: number } {
  const slash = value.indexOf('/');
  const address = slash < 0 ? value : value.slice(0, slash);
  const prefixText = slash < 0 ? '' : value.slice(slash + 1);
  const family = isIP(address);
  if (family === 0 || !/^\d+$/.test(prefixText))
    fail(label, `${JSON.stringify(value)} is not a CIDR (address/prefix)`);
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128))
    fail(label, `${JSON.stringify(value)} has a prefix longer than the address`);
  return { family: family as 4 | 6, prefix };
}

const logLevel: Check<LogLevel> = (raw, label) => {
  const value = text(raw, label);
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    fail(label, `unknown log level ${JSON.stringify(value)} (expected ${LOG_LEVELS.join(', ')})`);
  }
  return value as LogLevel;
};

const logDriver: Check<string> = (raw, label) => {
  const value = text(raw, label);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(value))
    fail(label, `invalid log driver name ${JSON.stringify(value)}`);
  return value;
};

const stringMap: Check<Record<string, string>> = (raw, label) => {
  const value = object(raw, label);
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') fail(`${label}.${key}`, `expected a string, got ${typeName(item)}`);
    out[key] = item as string;
  }
  return out;
};

/** setrlimit resources by docker's names. */
export const ULIMIT_NAMES = [
  'as',
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
];

const ulimits: Check<Record<string, Ulimit>> = (raw, label) => {
  const out: Record<string, Ulimit> = {};
  for (const [name, entry] of Object.entries(object(raw, label))) {
    const where = `${label}.${name}`;
    if (!ULIMIT_NAMES.includes(name))
      fail(where, `unknown ulimit (expected one of ${ULIMIT_NAMES.join(', ')})`);
    const value = object(entry, where);
    onlyKeys(value, ['Name', 'Soft', 'Hard'], where);
    if (value.Name !== undefined && value.Name !== name)
      fail(`${where}.Name`, `must be ${JSON.stringify(name)}`);
    const soft = integer(value.Soft, `${where}.Soft`);
    const hard = integer(value.Hard, `${where}.Hard`);
    if (soft < -1 || hard < -1) fail(where, 'limits are -1 (unlimited) or at least 0');
    if (hard !== -1 && (soft === -1 || soft > hard))
      fail(where, `the soft limit ${soft} is above the hard limit ${hard}`);
    out[name] = { Name: name, Soft: soft, Hard: hard };
  }
  return out;
};

const insecureRegistry: Check<string> = (raw, label) => {
  const value = text(raw, label);
  if (value.includes('://')) fail(label, `insecure registry ${value} should not contain '://'`);
  if (value.includes('/')) cidr(value, label);
  else if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(value)) {
    fail(label, `${JSON.stringify(value)} is neither host[:port] nor a CIDR`);
  }
  return value;
};

const registryMirror: Check<string> = (raw, label) => {
  const value = text(raw, label);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(label, `invalid mirror ${JSON.stringify(value)}: not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    fail(label, `invalid mirror ${JSON.stringify(value)}: unsupported scheme ${url.protocol.slice(0, -1)}`);
  }
  if (url.username !== '' || url.password !== '')
    fail(label, `invalid mirror ${JSON.stringify(value)}: has credentials`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') {
    fail(label, `invalid mirror ${JSON.stringify(value)}: path, query, or fragment at end of the URI`);
  }
  return `${url.origin}/`;
};

const runtimes: Check<Record<string, RuntimeConfig>> = (raw, label) => {
  const out: Record<string, RuntimeConfig> = {};
  for (const [name, entry] of Object.entries(object(raw, label))) {
    const where = `${label}.${name}`;
    if (name === BUILTIN_RUNTIME) fail(where, `runtime name '${BUILTIN_RUNTIME}' is reserved`);
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) fail(where, 'invalid runtime name');
    const value = object(entry, where);
    onlyKeys(value, ['path', 'runtimeArgs'], where);
    const runtime: RuntimeConfig = { path: text(value.path, `${where}.path`) };
    if (value.runtimeArgs !== undefined)
      runtime.runtimeArgs = listOf(text)(value.runtimeArgs, `${where}.runtimeArgs`);
    out[name] = runtime;
  }
  return out;
};

const listenAddress: Check<string> = (raw, label) => {
  const value = text(raw, label);
  try {
    parseHost(value, false);
  } catch (err) {
    fail(label, describeError(err));
  }
  return value;
};

const hostPort: Check<string> = (raw, label) => {
  const value = text(raw, label);
  if (!/:\d+$/.test(value)) fail(label, `expected host:port, got ${JSON.stringify(value)}`);
  try {
    parseHost(`tcp://${value}`, false);
  } catch (err) {
    fail(label, describeError(err));
  }
  return value;
};

const bridgeIp: Check<string> = (raw, label) => {
  const value = text(raw, label);
  const { family, prefix } = cidr(value, label);
  if (family !== 4) fail(label, 'bip must be an IPv4 address with a prefix, such as 192.168.1.1/24');
  if (prefix < 1 || prefix > 30)
    fail(label, `a /${prefix} network leaves no room for a bridge and containers`);
  return value;
};

const bridgeName: Check<string> = (raw, label) => {
  const value = text(raw, label);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(value) || value === '.' || value === '..')
    fail(label, `"${value}" is not a valid interface name (1 to 15 letters, digits, '_', '.' or '-')`);
  return value;
};

const mtuValue: Check<number> = (raw, label) => {
  const value = integer(typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw, label);
  if (value < 68 || value > 65535) fail(label, `MTU ${value} is out of range (68 to 65535)`);
  return value;
};

const addressPools: Check<AddressPool[]> = (raw, label) =>
  listOf((entry, where) => {
    const value = object(entry, where);
    onlyKeys(value, ['base', 'size'], where);
    const base = text(value.base, `${where}.base`);
    const { family, prefix } = cidr(base, `${where}.base`);
    const size = integer(value.size, `${where}.size`);
    if (size < prefix || size > (family === 4 ? 32 : 128)) {
      fail(`${where}.size`, `must be between the base's prefix (${prefix}) and ${family === 4 ? 32 : 128}`);
    }
    return { base, size };
  })(raw, label);

const idName = '(?:[A-Za-z_][A-Za-z0-9_.-]*|\\d+)';
const usernsRemap: Check<string> = (raw, label) => {
  const value = text(raw, label);
  if (!new RegExp(`^${idName}(?::${idName})?$`).test(value)) {
    fail(label, `expected "default", a user or user:group, got ${JSON.stringify(value)}`);
  }
  return value;
};

// ---- flags that carry a directive ----

export interface FlagSpec {
  name: string;
  short?: string;
  kind: 'bool' | 'value' | 'list';
  /** Turns the flag's values into the value the file would hold. */
  toRaw?: (values: string[], label: string) => unknown;
}

function keyValue(value: string, label: string): [string, string] {
  const eq = value.indexOf('=');
  if (eq <= 0) fail(label, `expected name=value, got ${JSON.stringify(value)}`);
  return [value.slice(0, eq), value.slice(eq + 1)];
}

const toNumber = (value: string, label: string): number => {
  if (!/^-?\d+$/.test(value)) fail(label, `${JSON.stringify(value)} is not an integer`);
  return Number(value);
};

const ulimitFlags = (values: string[], label: string): unknown => {
  const out: Record<string, unknown> = {};
  for (const value of values) {
    const [name, limits] = keyValue(value, label);
    const [soft = '', hard = soft] = limits.split(':');
    out[name] = { Name: name, Soft: toNumber(soft, label), Hard: toNumber(hard, label) };
  }
  return out;
};

const runtimeFlags = (values: string[], label: string): unknown =>
  Object.fromEntries(values.map((value) => keyValue(value, label)).map(([name, path]) => [name, { path }]));

const poolFlags = (values: string[], label: string): unknown =>
  values.map((value) => {
    const fields = Object.fromEntries(value.split(',').map((part) => keyValue(part, label)));
    return { base: fields.base, size: fields.size === undefined ? undefined : toNumber(fields.size, label) };
  });

// ---- the directive table ----

export interface Directive {
  /** The daemon.json key. */
  key: string;
  flag?: FlagSpec;
  /** Checks a raw value (from the file, or a flag's converted value) and stores it. */
  apply(config: DaemonConfig, raw: unknown, label: string): void;
}

function directive<K extends keyof DaemonConfig>(
  key: string,
  field: K,
  check: Check<DaemonConfig[K]>,
  flag?: FlagSpec,
): Directive {
  return {
    key,
    flag,
    apply: (config, raw, label) => {
      config[field] = check(raw, label);
    },
  };
}

export const DIRECTIVES: Directive[] = [
  directive('data-root', 'dataRoot', absolutePath, { name: 'data-root', kind: 'value' }),
  directive('exec-root', 'execRoot', absolutePath, { name: 'exec-root', kind: 'value' }),
  directive('hosts', 'hosts', listOf(listenAddress), { name: 'host', short: 'H', kind: 'list' }),
  directive('debug', 'debug', bool, { name: 'debug', short: 'D', kind: 'bool' }),
  directive('log-level', 'logLevel', logLevel, { name: 'log-level', short: 'l', kind: 'value' }),
  directive('log-driver', 'logDriver', logDriver, { name: 'log-driver', kind: 'value' }),
  directive('log-opts', 'logOpts', stringMap, {
    name: 'log-opt',
    kind: 'list',
    toRaw: (values, label) => Object.fromEntries(values.map((value) => keyValue(value, label))),
  }),
  directive('default-ulimits', 'defaultUlimits', ulimits, {
    name: 'default-ulimit',
    kind: 'list',
    toRaw: ulimitFlags,
  }),
  directive('insecure-registries', 'insecureRegistries', listOf(insecureRegistry), {
    name: 'insecure-registry',
    kind: 'list',
  }),
  directive('registry-mirrors', 'registryMirrors', listOf(registryMirror), {
    name: 'registry-mirror',
    kind: 'list',
  }),
  directive('live-restore', 'liveRestore', bool, { name: 'live-restore', kind: 'bool' }),
  directive('default-runtime', 'defaultRuntime', text, { name: 'default-runtime', kind: 'value' }),
  directive('runtimes', 'runtimes', runtimes, { name: 'add-runtime', kind: 'list', toRaw: runtimeFlags }),
  directive('metrics-addr', 'metricsAddr', hostPort, { name: 'metrics-addr', kind: 'value' }),
  directive('tls', 'tls', bool, { name: 'tls', kind: 'bool' }),
  directive('tlsverify', 'tlsVerify', bool, { name: 'tlsverify', kind: 'bool' }),
  directive('tlscacert', 'tlsCaCert', absolutePath, { name: 'tlscacert', kind: 'value' }),
  directive('tlscert', 'tlsCert', absolutePath, { name: 'tlscert', kind: 'value' }),
  directive('tlskey', 'tlsKey', absolutePath, { name: 'tlskey', kind: 'value' }),
  directive('group', 'group', text, { name: 'group', short: 'G', kind: 'value' }),
  directive('bip', 'bip', bridgeIp, { name: 'bip', kind: 'value' }),
  directive('bridge', 'bridge', bridgeName, { name: 'bridge', short: 'b', kind: 'value' }),
  directive('mtu', 'mtu', mtuValue, { name: 'mtu', kind: 'value' }),
  directive('cni-config-dir', 'cniConfigDir', absolutePath, { name: 'cni-config-dir', kind: 'value' }),
  directive('default-address-pools', 'defaultAddressPools', addressPools, {
    name: 'default-address-pool',
    kind: 'list',
    toRaw: poolFlags,
  }),
  directive('userns-remap', 'usernsRemap', usernsRemap, { name: 'userns-remap', kind: 'value' }),
  directive('init', 'init', bool, { name: 'init', kind: 'bool' }),
  directive('init-path', 'initPath', absolutePath, { name: 'init-path', kind: 'value' }),
];

/** What a reload (SIGHUP) changes in the running daemon, by daemon.json key. */
const RELOADABLE = {
  debug: 'debug',
  'log-level': 'logLevel',
  'live-restore': 'liveRestore',
  'insecure-registries': 'insecureRegistries',
  'registry-mirrors': 'registryMirrors',
} as const satisfies Record<string, keyof DaemonConfig>;

/**
 * Copies the reloadable settings of `next` into `current` (the rest needs a restart) and returns
 * them as the attributes of the `daemon reload` event.
 */
export function applyReload(current: DaemonConfig, next: DaemonConfig): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const [key, field] of Object.entries(RELOADABLE)) {
    const value = next[field];
    (current as unknown as Record<string, unknown>)[field] = value;
    attributes[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  return attributes;
}

/** Flag values as parsed from the command line, by directive key. */
export type FlagValues = Map<string, string[]>;

export function flagRaw(directive: Directive, values: string[]): unknown {
  const flag = directive.flag;
  const label = `--${flag?.name ?? directive.key}`;
  if (flag?.toRaw !== undefined) return flag.toRaw(values, label);
  if (flag?.kind === 'bool') return values.at(-1) === 'true';
  if (flag?.kind === 'list') return values;
  return values.at(-1);
}

/** The keys of a daemon.json text, parsed and checked to be an object. */
export function parseConfigFile(textContent: string): Record<string, unknown> {
  const parsed = parseJsonText(textContent);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error(`expected a JSON object, got ${typeName(parsed)}`);
  }
  return parsed as Record<string, unknown>;
}

const showFlag = (values: string[], directive: Directive): string =>
  directive.flag?.kind === 'list' ? `[${values.join(' ')}]` : (values.at(-1) ?? '');

/**
 * The configuration from defaults, the file's keys and the flags. `file` is the parsed file with
 * its path for messages; every problem is a BerthError naming the key.
 */
export function buildConfig(
  flags: FlagValues,
  file?: { path: string; values: Record<string, unknown> },
): DaemonConfig {
  const config = defaultConfig();
  const byKey = new Map(DIRECTIVES.map((d) => [d.key, d]));
  if (file !== undefined) {
    const fileError = (message: string): never => {
      throw invalidArgument(`unable to configure berthd with file ${file.path}: ${message}`);
    };
    const unknown = Object.keys(file.values)
      .filter((key) => !byKey.has(key))
      .sort();
    if (unknown.length > 0) {
      fileError(`the following directives don't match any configuration option: ${unknown.join(', ')}`);
    }
    const conflicts = Object.keys(file.values)
      .filter((key) => flags.has(key))
      .map((key) => {
        const directive = byKey.get(key) as Directive;
        const fromFlag = showFlag(flags.get(key) ?? [], directive);
        return `${key}: (from flag: ${fromFlag}, from file: ${JSON.stringify(file.values[key])})`;
      });
    if (conflicts.length > 0) {
      fileError(
        `the following directives are specified both as a flag and in the configuration file: ${conflicts.join(', ')}`,
      );
    }
    for (const [key, raw] of Object.entries(file.values)) {
      try {
        (byKey.get(key) as Directive).apply(config, raw, key);
      } catch (err) {
        fileError(describeError(err));
      }
    }
  }
  for (const [key, values] of flags) {
    const directive = byKey.get(key);
    if (directive === undefined) throw invalidArgument(`unknown directive ${key}`);
    directive.apply(config, flagRaw(directive, values), `--${directive.flag?.name ?? key}`);
  }
  return finish(config);
}

/** Checks that span several directives, and derived defaults. */
function finish(config: DaemonConfig): DaemonConfig {
  if (config.hosts.length === 0) config.hosts = [DEFAULT_HOST];
  if (config.debug) config.logLevel = 'debug';
  if (config.tlsVerify) {
    config.tls = true;
    const missing = (['tlscacert', 'tlscert', 'tlskey'] as const).filter(
      (key) =>
        ({ tlscacert: config.tlsCaCert, tlscert: config.tlsCert, tlskey: config.tlsKey })[key] === undefined,
    );
    if (missing.length > 0) {
      throw invalidArgument(`tlsverify needs tlscacert, tlscert and tlskey (missing: ${missing.join(', ')})`);
    }
  } else if (config.tls && (config.tlsCert === undefined || config.tlsKey === undefined)) {
    throw invalidArgument('tls needs tlscert and tlskey');
  }
  if (config.defaultRuntime !== BUILTIN_RUNTIME && config.runtimes[config.defaultRuntime] === undefined) {
    throw invalidArgument(
      `default-runtime: no runtime named ${JSON.stringify(config.defaultRuntime)} (known: ${[
        BUILTIN_RUNTIME,
        ...Object.keys(config.runtimes),
      ].join(', ')})`,
    );
  }
  for (const host of config.hosts) parseHost(host, config.tls);
  return config;
}
