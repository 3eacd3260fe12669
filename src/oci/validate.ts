import { isAbsolute } from 'node:path';
import type { Spec } from './runtime-spec.js';
import { invalidArgument } from '../common/errors.js';
import { CAPABILITIES } from '../linux/capabilities.js';
import { RLIMITS, RLIM_INFINITY, type Limit } from '../linux/rlimits.js';

const NAMESPACE_TYPES = new Set(['pid', 'network', 'mount', 'ipc', 'uts', 'user', 'cgroup', 'time']);
const IPC_SYSCTLS = new Set([
  'kernel.msgmax',
  'kernel.msgmnb',
  'kernel.msgmni',
  'kernel.sem',
  'kernel.shmall',
  'kernel.shmmax',
  'kernel.shmmni',
  'kernel.shm_rmid_forced',
]);

const HOOK_KINDS = [
  'prestart',
  'createRuntime',
  'createContainer',
  'startContainer',
  'poststart',
  'poststop',
];
/** The longest hook timeout in seconds: timers and poll(2) take milliseconds in 32 bits. */
export const MAX_HOOK_TIMEOUT = 2147483;
/** sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH = 107;

export interface ValidationContext {
  /** The caller's own rlimits; a container limit above a hard limit cannot be set without CAP_SYS_RESOURCE. */
  callerLimits?: Record<string, Limit>;
  callerHasSysResource?: boolean;
}

type Check = (condition: boolean, field: string, problem: string) => void;

const check: Check = (condition, field, problem) => {
  if (!condition) throw invalidArgument(`config.json: ${field}: ${problem}`);
};

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isUint = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0;

function checkStringArray(value: unknown, field: string): void {
  if (value === undefined) return;
  check(Array.isArray(value), field, 'must be an array of strings');
  (value as unknown[]).forEach((item, i) =>
    check(typeof item === 'string', `${field}[${i}]`, 'must be a string'),
  );
}

function checkIdMappings(value: unknown, field: string): void {
  if (value === undefined) return;
  check(Array.isArray(value), field, 'must be an array');
  (value as unknown[]).forEach((item, i) => {
    check(isObject(item), `${field}[${i}]`, 'must be an object');
    const mapping = item as Record<string, unknown>;
    for (const key of ['containerID', 'hostID', 'size']) {
      check(isUint(mapping[key]), `${field}[${i}].${key}`, 'must be a non-negative integer');
    }
  });
}

const noNul = (value: unknown): boolean => typeof value !== 'string' || !value.includes('\0');

function checkHooks(value: unknown): void {
  if (value === undefined) return;
  check(isObject(value), 'hooks', 'must be an object');
  const hooks = value as Record<string, unknown>;
  for (const kind of HOOK_KINDS) {
    const list = hooks[kind];
    if (list === undefined) continue;
    check(Array.isArray(list), `hooks.${kind}`, 'must be an array');
    (list as unknown[]).forEach((item, i) => {
      const field = `hooks.${kind}[${i}]`;
      check(isObject(item), field, 'must be an object');
      const hook = item as Record<string, unknown>;
      check(
        typeof hook.path === 'string' && isAbsolute(hook.path) && noNul(hook.path),
        `${field}.path`,
        'must be an absolute path',
      );
      for (const list of ['args', 'env'] as const) {
        checkStringArray(hook[list], `${field}.${list}`);
        ((hook[list] as string[] | undefined) ?? []).forEach((text, j) =>
          check(noNul(text), `${field}.${list}[${j}]`, 'must not contain a NUL byte'),
        );
      }
      check(
        hook.timeout === undefined ||
          (isUint(hook.timeout) && hook.timeout > 0 && hook.timeout <= MAX_HOOK_TIMEOUT),
        `${field}.timeout`,
        `must be a whole number of seconds from 1 to ${MAX_HOOK_TIMEOUT}`,
      );
    });
  }
}

/**
 * The seccomp listener (runtime-spec 1.2): SCMP_ACT_NOTIFY needs listenerPath, listenerMetadata
 * needs listenerPath. The rest of the profile is checked when it is compiled.
 */
function checkSeccompListener(value: Record<string, unknown>): void {
  const path = value.listenerPath;
  check(
    path === undefined ||
      path === '' ||
      (typeof path === 'string' &&
        isAbsolute(path) &&
        noNul(path) &&
        Buffer.byteLength(path) <= MAX_SOCKET_PATH),
    'linux.seccomp.listenerPath',
    `must be an absolute path of at most ${MAX_SOCKET_PATH} bytes (a unix socket address)`,
  );
  const hasListener = typeof path === 'string' && path !== '';
  check(
    value.listenerMetadata === undefined ||
      (typeof value.listenerMetadata === 'string' && noNul(value.listenerMetadata)),
    'linux.seccomp.listenerMetadata',
    'must be a string',
  );
  check(
    value.listenerMetadata === undefined || hasListener,
    'linux.seccomp.listenerMetadata',
    'may only be set with linux.seccomp.listenerPath',
  );
  if (!Array.isArray(value.syscalls)) return;
  (value.syscalls as unknown[]).forEach((rule, i) => {
    if (!isObject(rule) || rule.action !== 'SCMP_ACT_NOTIFY') return;
    const field = `linux.seccomp.syscalls[${i}]`;
    check(hasListener, `${field}.action`, 'SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath');
    // The container process passes the listener fd to berth-shim with sendmsg right after loading
    // the filter: notifying that call would wait for a listener that never gets the fd.
    const names = Array.isArray(rule.names) ? (rule.names as unknown[]) : [];
    names.forEach((name, j) =>
      check(
        name !== 'sendmsg',
        `${field}.names[${j}]`,
        'SCMP_ACT_NOTIFY cannot be used for sendmsg (the listener fd is handed over with it)',
      ),
    );
  });
}

/** A sysctl is allowed only when the namespace that holds it is the container's own. */
export function sysctlNamespace(key: string): 'ipc' | 'network' | 'uts' | undefined {
  if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) return 'ipc';
  if (key.startsWith('net.')) return 'network';
  if (key === 'kernel.hostname' || key === 'kernel.domainname') return 'uts';
  return undefined;
}

/**
 * Check a config.json before anything is created: types, names the kernel must know, limits the
 * caller can grant. Throws one invalid-argument error naming the first bad field.
 */
export function validateSpec(value: unknown, context: ValidationContext = {}): Spec {
  check(isObject(value), '(top level)', 'must be a JSON object');
  const spec = value as Record<string, unknown>;
  check(typeof spec.ociVersion === 'string', 'ociVersion', 'must be a string');
  check(isObject(spec.root), 'root', 'is missing');
  const root = spec.root as Record<string, unknown>;
  check(typeof root.path === 'string' && root.path !== '', 'root.path', 'must be a non-empty string');
  check(
    root.readonly === undefined || typeof root.readonly === 'boolean',
    'root.readonly',
    'must be a boolean',
  );
  check(isObject(spec.process), 'process', 'is missing');
  const process = spec.process as Record<string, unknown>;
  checkStringArray(process.args, 'process.args');
  check(
    Array.isArray(process.args) && process.args.length > 0,
    'process.args',
    'must name the program to run',
  );
  check(
    typeof process.cwd === 'string' && isAbsolute(process.cwd),
    'process.cwd',
    'must be an absolute path',
  );
  checkStringArray(process.env, 'process.env');
  check(
    process.terminal === undefined || typeof process.terminal === 'boolean',
    'process.terminal',
    'must be a boolean',
  );
  check(isObject(process.user), 'process.user', 'is missing');
  const user = process.user as Record<string, unknown>;
  check(isUint(user.uid), 'process.user.uid', 'must be a non-negative integer');
  check(isUint(user.gid), 'process.user.gid', 'must be a non-negative integer');
  check(
    user.umask === undefined || isUint(user.umask),
    'process.user.umask',
    'must be a non-negative integer',
  );
  if (user.additionalGids !== undefined) {
    check(Array.isArray(user.additionalGids), 'process.user.additionalGids', 'must be an array');
    (user.additionalGids as unknown[]).forEach((gid, i) =>
      check(isUint(gid), `process.user.additionalGids[${i}]`, 'must be a non-negative integer'),
    );
  }
  if (process.capabilities !== undefined) {
    check(isObject(process.capabilities), 'process.capabilities', 'must be an object');
    const caps = process.capabilities as Record<string, unknown>;
    for (const set of ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']) {
      const field = `process.capabilities.${set}`;
      checkStringArray(caps[set], field);
      ((caps[set] as string[] | undefined) ?? []).forEach((name, i) =>
        check(name in CAPABILITIES, `${field}[${i}]`, `unknown capability ${JSON.stringify(name)}`),
      );
    }
  }
  if (process.rlimits !== undefined) {
    check(Array.isArray(process.rlimits), 'process.rlimits', 'must be an array');
    const seen = new Set<string>();
    (process.rlimits as unknown[]).forEach((item, i) => {
      const field = `process.rlimits[${i}]`;
      check(isObject(item), field, 'must be an object');
      const rlimit = item as Record<string, unknown>;
      check(
        typeof rlimit.type === 'string' && rlimit.type in RLIMITS,
        `${field}.type`,
        `unknown rlimit ${JSON.stringify(rlimit.type)}`,
      );
      const type = rlimit.type as string;
      check(!seen.has(type), `${field}.type`, `${type} is given twice`);
      seen.add(type);
      check(isUint(rlimit.soft), `${field}.soft`, 'must be a non-negative integer');
      check(isUint(rlimit.hard), `${field}.hard`, 'must be a non-negative integer');
      check((rlimit.soft as number) <= (rlimit.hard as number), field, 'soft limit is above the hard limit');
      const callerHard = context.callerLimits?.[type]?.hard;
      if (callerHard !== undefined && callerHard !== RLIM_INFINITY && !context.callerHasSysResource) {
        check(
          BigInt(Math.floor(rlimit.hard as number)) <= callerHard,
          `${field}.hard`,
          `${type} hard limit ${rlimit.hard as number} is above this process's hard limit ${callerHard} and raising it needs CAP_SYS_RESOURCE`,
        );
      }
    });
  }
  check(
    process.oomScoreAdj === undefined ||
      (typeof process.oomScoreAdj === 'number' &&
        Number.isInteger(process.oomScoreAdj) &&
        process.oomScoreAdj >= -1000 &&
        process.oomScoreAdj <= 1000),
    'process.oomScoreAdj',
    'must be an integer from -1000 to 1000',
  );
  check(spec.hostname === undefined || typeof spec.hostname === 'string', 'hostname', 'must be a string');
  check(
    spec.domainname === undefined || typeof spec.domainname === 'string',
    'domainname',
    'must be a string',
  );

  if (spec.mounts !== undefined) {
    check(Array.isArray(spec.mounts), 'mounts', 'must be an array');
    (spec.mounts as unknown[]).forEach((item, i) => {
      const field = `mounts[${i}]`;
      check(isObject(item), field, 'must be an object');
      const mount = item as Record<string, unknown>;
      check(
        typeof mount.destination === 'string' && isAbsolute(mount.destination),
        `${field}.destination`,
        'must be an absolute path',
      );
      check(
        mount.source === undefined || typeof mount.source === 'string',
        `${field}.source`,
        'must be a string',
      );
      check(mount.type === undefined || typeof mount.type === 'string', `${field}.type`, 'must be a string');
      checkStringArray(mount.options, `${field}.options`);
    });
  }

  const linux = spec.linux;
  const namespaces = new Map<string, string | undefined>();
  if (linux !== undefined) {
    check(isObject(linux), 'linux', 'must be an object');
    const l = linux as Record<string, unknown>;
    if (l.namespaces !== undefined) {
      check(Array.isArray(l.namespaces), 'linux.namespaces', 'must be an array');
      (l.namespaces as unknown[]).forEach((item, i) => {
        const field = `linux.namespaces[${i}]`;
        check(isObject(item), field, 'must be an object');
        const ns = item as Record<string, unknown>;
        check(
          typeof ns.type === 'string' && NAMESPACE_TYPES.has(ns.type),
          `${field}.type`,
          `unknown namespace ${JSON.stringify(ns.type)}`,
        );
        check(
          !namespaces.has(ns.type as string),
          `${field}.type`,
          `namespace ${ns.type as string} is given twice`,
        );
        check(
          ns.path === undefined || (typeof ns.path === 'string' && isAbsolute(ns.path)),
          `${field}.path`,
          'must be an absolute path',
        );
        namespaces.set(ns.type as string, ns.path as string | undefined);
      });
    }
    checkIdMappings(l.uidMappings, 'linux.uidMappings');
    checkIdMappings(l.gidMappings, 'linux.gidMappings');
    if (namespaces.has('user') && namespaces.get('user') === undefined) {
      check(
        Array.isArray(l.uidMappings) && l.uidMappings.length > 0,
        'linux.uidMappings',
        'a new user namespace needs uid mappings',
      );
      check(
        Array.isArray(l.gidMappings) && l.gidMappings.length > 0,
        'linux.gidMappings',
        'a new user namespace needs gid mappings',
      );
    }
    checkStringArray(l.maskedPaths, 'linux.maskedPaths');
    checkStringArray(l.readonlyPaths, 'linux.readonlyPaths');
    check(
      l.cgroupsPath === undefined || typeof l.cgroupsPath === 'string',
      'linux.cgroupsPath',
      'must be a string',
    );
    if (l.sysctl !== undefined) {
      check(isObject(l.sysctl), 'linux.sysctl', 'must be an object of strings');
      for (const [key, val] of Object.entries(l.sysctl as Record<string, unknown>)) {
        const field = `linux.sysctl[${JSON.stringify(key)}]`;
        check(typeof val === 'string', field, 'must be a string');
        const ns = sysctlNamespace(key);
        check(ns !== undefined, field, 'is not a namespaced sysctl; it would change the host');
        check(namespaces.has(ns as string), field, `needs the container's own ${ns as string} namespace`);
      }
    }
    if (l.devices !== undefined) {
      check(Array.isArray(l.devices), 'linux.devices', 'must be an array');
      (l.devices as unknown[]).forEach((item, i) => {
        const field = `linux.devices[${i}]`;
        check(isObject(item), field, 'must be an object');
        const device = item as Record<string, unknown>;
        check(
          typeof device.path === 'string' && isAbsolute(device.path),
          `${field}.path`,
          'must be an absolute path',
        );
        check(
          ['c', 'b', 'u', 'p'].includes(device.type as string),
          `${field}.type`,
          'must be one of c, b, u, p',
        );
        if (device.type !== 'p') {
          check(isUint(device.major), `${field}.major`, 'must be a non-negative integer');
          check(isUint(device.minor), `${field}.minor`, 'must be a non-negative integer');
        }
      });
    }
    check(l.seccomp === undefined || isObject(l.seccomp), 'linux.seccomp', 'must be an object');
    if (l.seccomp !== undefined) checkSeccompListener(l.seccomp as Record<string, unknown>);
    check(l.resources === undefined || isObject(l.resources), 'linux.resources', 'must be an object');
  }
  if (spec.hostname !== undefined && spec.hostname !== '') {
    check(namespaces.has('uts'), 'hostname', 'setting a hostname needs a uts namespace');
  }
  checkHooks(spec.hooks);
  return value as unknown as Spec;
}
