/**
 * OCI config.json -> launch plan. Every decision about how a container is set up is made here,
 * in the order the shim will carry it out (docs/shim-plan.md).
 */
import { statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Device, Hook, Mount, Namespace, NamespaceType, Process, Spec } from '../oci/runtime-spec.js';
import { capabilityMask } from '../linux/capabilities.js';
import { MS, parseMountOptions, propagationFlag } from '../linux/mount-options.js';
import { RLIMITS, RLIM_INFINITY } from '../linux/rlimits.js';
import { invalidArgument } from '../common/errors.js';
import { SECCOMP_FILTER_FLAG } from '../linux/seccomp/actions.js';
import { CREATE, ops, type PlanOp } from './plan.js';
import { containerProcessState, hookState, type StateInfo } from './pid-template.js';
import type { CgroupHierarchy } from './cgroup-mounts.js';
import type { CgroupEntry } from '../linux/cgroups/types.js';

export const CLONE_FLAG: Record<NamespaceType, number> = {
  mount: 0x00020000,
  cgroup: 0x02000000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  network: 0x40000000,
  time: 0x00000080,
};

/** /proc/<pid>/ns/<name> for each namespace type. */
export const NS_FILE: Record<NamespaceType, string> = {
  mount: 'mnt',
  cgroup: 'cgroup',
  uts: 'uts',
  ipc: 'ipc',
  user: 'user',
  pid: 'pid',
  network: 'net',
  time: 'time',
};

/** The order namespaces are joined: the user namespace first (it grants the rights to join the others), mount last. */
// The user namespace after the others, which the caller (root of the host's user namespace) may
// join either way, but before mount (its path is read from the host's /proc): a network namespace
// the engine made belongs to the host's user namespace, and cannot be joined from inside the
// container's.
const JOIN_ORDER: NamespaceType[] = ['ipc', 'uts', 'network', 'pid', 'cgroup', 'time', 'user', 'mount'];

/** Devices every container gets (runtime-spec "Default Devices"). */
export const DEFAULT_DEVICES: Device[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, fileMode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, fileMode: 0o666, uid: 0, gid: 0 },
];

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;
const DEFAULT_ENV_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface CreatePlanOptions {
  /** The container's id, for the state hooks and a seccomp listener receive. */
  id: string;
  bundle: string;
  /** The container's state directory; exit.json and exec.fifo live there. */
  stateDir: string;
  detach: boolean;
  consoleSocket?: string;
  noPivot?: boolean;
  preserveFds?: number;
  /** Compiled seccomp program (or undefined for none). */
  seccomp?: { program: Uint8Array; flags: number };
  /** cgroup hierarchies of the host, to build the container's /sys/fs/cgroup. */
  cgroupHierarchies: CgroupHierarchy[];
  /** The container's cgroup path relative to each hierarchy root (for bind mounts without a cgroup namespace). */
  cgroupPath: string;
  /** How init gets into the container's cgroup (before `pid N`). */
  cgroupEntry: CgroupEntry;
  /** The shim holds the container's stdio: json-file log, attach socket, stdin (berthd's containers). */
  io?: ContainerIo;
}

/**
 * The shim ops that start init in its cgroup. CLONE_INTO_CGROUP checks the move against the
 * cgroup namespace child1 is in, where the caller's cgroup is out of sight: with a joined cgroup
 * namespace init moves itself instead.
 */
function cgroupEntryOps(entry: CgroupEntry, joinsCgroupNs: boolean): PlanOp[] {
  if (entry.kind === 'self-write') return entry.files.map((file) => ops.cgroupJoin(file));
  if (joinsCgroupNs) return [ops.cgroupJoin(join(entry.directory, 'cgroup.procs'))];
  return [ops.cloneIntoCgroup(entry.directory)];
}

export interface ContainerIo {
  logPath?: string;
  /** Bytes; 0 or undefined: never rotated. */
  logMaxSize?: number;
  logMaxFiles?: number;
  attachSocket: string;
  openStdin: boolean;
}

export function rootfsPath(spec: Spec, bundle: string): string {
  const path = spec.root?.path ?? 'rootfs';
  return isAbsolute(path) ? path : resolve(bundle, path);
}

function namespaceMap(spec: Spec): Map<NamespaceType, Namespace> {
  return new Map((spec.linux?.namespaces ?? []).map((ns) => [ns.type, ns]));
}

const mapText = (mappings: { containerID: number; hostID: number; size: number }[] | undefined): string =>
  (mappings ?? []).map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The container's /sys/fs/cgroup: cgroup2 on a unified host, else a tmpfs with one mount per v1 hierarchy. */
function cgroupMountOps(
  root: string,
  mount: Mount,
  options: CreatePlanOptions,
  ownCgroupNs: boolean,
): PlanOp[] {
  const { flags, data } = parseMountOptions(mount.options);
  const readOnly = (flags & MS.RDONLY) !== 0n;
  const base = flags & ~MS.RDONLY;
  const dest = mount.destination;
  const result: PlanOp[] = [];
  const unified = options.cgroupHierarchies.find((h) => h.version === 2);
  const v1 = options.cgroupHierarchies.filter((h) => h.version === 1);
  if (v1.length === 0 && unified) {
    if (ownCgroupNs) return [ops.mountInRoot(root, dest, 'cgroup2', 'cgroup2', flags, data, CREATE.DIR)];
    return [
      ops.mountInRoot(
        root,
        dest,
        join(unified.mountPoint, options.cgroupPath),
        '',
        MS.BIND | MS.REC,
        '',
        CREATE.DIR,
      ),
      ops.remount(root, dest, base | (readOnly ? MS.RDONLY : 0n) | MS.BIND),
    ];
  }
  result.push(ops.mountInRoot(root, dest, 'tmpfs', 'tmpfs', base, 'mode=755', CREATE.DIR));
  // Like runc and Docker, a hybrid host's cgroup2 mount is not shown to the container.
  const all = v1;
  for (const hierarchy of all) {
    const target = join(dest, hierarchy.name);
    if (ownCgroupNs) {
      const fstype = hierarchy.version === 2 ? 'cgroup2' : 'cgroup';
      result.push(ops.mountInRoot(root, target, fstype, fstype, flags, hierarchy.superOptions, CREATE.DIR));
    } else {
      const source = join(hierarchy.mountPoint, options.cgroupPath);
      result.push(ops.mountInRoot(root, target, source, '', MS.BIND | MS.REC, '', CREATE.DIR));
      result.push(ops.remount(root, target, base | (readOnly ? MS.RDONLY : 0n)));
    }
  }
  // Docker's aliases for joined hierarchies (cpu -> cpu,cpuacct).
  for (const hierarchy of v1) {
    if (!hierarchy.name.includes(',')) continue;
    for (const part of hierarchy.name.split(',')) {
      if (!all.some((h) => h.name === part))
        result.push(ops.symlinkInRoot(root, join(dest, part), hierarchy.name));
    }
  }
  if (readOnly) result.push(ops.remount(root, dest, base | MS.RDONLY));
  return result;
}

function mountOps(
  root: string,
  mount: Mount,
  options: CreatePlanOptions,
  ownCgroupNs: boolean,
  index: number,
): PlanOp[] {
  const type = mount.type ?? '';
  const parsed = parseMountOptions(mount.options);
  if (type === 'cgroup' || type === 'cgroup2') return cgroupMountOps(root, mount, options, ownCgroupNs);
  const result: PlanOp[] = [];
  if (parsed.bind || type === 'bind') {
    const source = mount.source ?? '';
    if (source === '')
      throw invalidArgument(`config.json: mounts[${index}].source: a bind mount needs a source`);
    const hostSource = isAbsolute(source) ? source : resolve(options.bundle, source);
    const create = isDirectory(hostSource) ? CREATE.DIR : CREATE.FILE;
    const bindFlags = MS.BIND | (parsed.recursive ? MS.REC : 0n);
    result.push(ops.mountInRoot(root, mount.destination, hostSource, '', bindFlags, '', create));
    // A bind mount ignores other flags; they are applied by a remount.
    const extra = parsed.flags & ~(MS.BIND | MS.REC | MS.REMOUNT);
    if (extra !== 0n) result.push(ops.remount(root, mount.destination, extra));
  } else {
    result.push(
      ops.mountInRoot(
        root,
        mount.destination,
        mount.source ?? type,
        type,
        parsed.flags,
        parsed.data,
        CREATE.DIR,
      ),
    );
  }
  if (parsed.propagation !== 0n) {
    result.push(ops.mountInRoot(root, mount.destination, '', '', parsed.propagation, '', CREATE.NONE));
  }
  return result;
}

function deviceOps(root: string, devices: Device[], inUserNs: boolean): PlanOp[] {
  const result: PlanOp[] = [];
  for (const device of devices) {
    if (inUserNs) {
      // mknod is not allowed in a user namespace: bind the host's node instead.
      result.push(ops.mountInRoot(root, device.path, device.path, '', MS.BIND, '', CREATE.FILE));
      continue;
    }
    const typeBits = device.type === 'b' ? S_IFBLK : device.type === 'p' ? S_IFIFO : S_IFCHR;
    result.push(
      ops.mknodInRoot(
        root,
        device.path,
        typeBits | (device.fileMode ?? 0o666),
        device.major ?? 0,
        device.minor ?? 0,
        device.uid ?? 0,
        device.gid ?? 0,
      ),
    );
  }
  return result;
}

/** JSON turns 2^64-1 (RLIM_INFINITY) into 2^64: anything at or above it is unlimited. */
function rlimitValue(value: number): bigint {
  const big = BigInt(Math.floor(value));
  return big >= RLIM_INFINITY ? RLIM_INFINITY : big;
}

/** Credentials, capabilities and privileges: shared by create and exec. */
export function processIdentityOps(process: Process): PlanOp[] {
  const result: PlanOp[] = [];
  for (const rlimit of process.rlimits ?? []) {
    result.push(
      ops.setrlimit(RLIMITS[rlimit.type] ?? -1, rlimitValue(rlimit.soft), rlimitValue(rlimit.hard)),
    );
  }
  result.push(ops.setgroupsIds(process.user.additionalGids ?? []));
  result.push(ops.setgid(process.user.gid));
  result.push(ops.setuid(process.user.uid));
  const caps = process.capabilities ?? {};
  result.push(
    ops.caps(
      capabilityMask(caps.bounding, 'process.capabilities.bounding'),
      capabilityMask(caps.effective, 'process.capabilities.effective'),
      capabilityMask(caps.permitted, 'process.capabilities.permitted'),
      capabilityMask(caps.inheritable, 'process.capabilities.inheritable'),
      capabilityMask(caps.ambient, 'process.capabilities.ambient'),
    ),
  );
  if (process.noNewPrivileges) result.push(ops.noNewPrivs());
  if (process.user.umask !== undefined) result.push(ops.umask(process.user.umask));
  result.push(ops.chdir(process.cwd));
  return result;
}

export function execOp(process: Process): PlanOp {
  const env = process.env ?? [];
  return ops.exec(
    process.args ?? [],
    env.some((e) => e.startsWith('PATH=')) ? env : [...env, `PATH=${DEFAULT_ENV_PATH}`],
  );
}

/** HOOK ops for hooks that run inside the container (createContainer, startContainer). */
function hookOps(
  name: 'createContainer' | 'startContainer',
  hooks: Hook[] | undefined,
  info: StateInfo,
): PlanOp[] {
  if (!hooks?.length) return [];
  const state = hookState(info, name === 'createContainer' ? 'creating' : 'created');
  return hooks.map((hook) => ops.hook(name, hook, state));
}

/**
 * Whether the compiled filter hands out a listener fd (a SCMP_ACT_NOTIFY rule), which then needs
 * linux.seccomp.listenerPath (validateSpec checks this first; the shim refuses it too).
 */
function wantsListener(seccomp: { flags: number } | undefined, listenerPath: string | undefined): boolean {
  if (!seccomp || (seccomp.flags & SECCOMP_FILTER_FLAG.NEW_LISTENER) === 0) return false;
  if (!listenerPath)
    throw invalidArgument('config.json: linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs a listener socket');
  return true;
}

/** The plan that creates a container and holds it at its start fifo. */
export function buildCreatePlan(spec: Spec, options: CreatePlanOptions): PlanOp[] {
  const process = spec.process;
  if (!process) throw invalidArgument('config.json: process: is missing');
  const root = rootfsPath(spec, options.bundle);
  if (!isDirectory(root)) throw invalidArgument(`config.json: root.path: ${root} is not a directory`);
  const namespaces = namespaceMap(spec);
  const plan: PlanOp[] = [];

  // Shim set-up: namespaces to join (in a safe order), namespaces to create, id maps.
  let cloneFlags = 0;
  for (const type of JOIN_ORDER) {
    const ns = namespaces.get(type);
    if (!ns) continue;
    if (ns.path !== undefined) plan.push(ops.joinNs(ns.path, CLONE_FLAG[type]));
    // A cgroup namespace is created by init itself once it is in its cgroups (see UNSHARE below).
    else if (type !== 'cgroup' && type !== 'time') cloneFlags |= CLONE_FLAG[type];
  }
  plan.push(ops.cloneFlags(cloneFlags));
  plan.push(...cgroupEntryOps(options.cgroupEntry, namespaces.get('cgroup')?.path !== undefined));
  const newUserNs = namespaces.has('user') && namespaces.get('user')?.path === undefined;
  const inUserNs = namespaces.has('user');
  if (newUserNs) {
    plan.push(ops.uidMap(mapText(spec.linux?.uidMappings)), ops.gidMap(mapText(spec.linux?.gidMappings)));
  }
  const timeNs = namespaces.get('time');
  if (timeNs && timeNs.path === undefined) {
    const offsets = Object.entries(spec.linux?.timeOffsets ?? {})
      .map(([clock, o]) => `${clock} ${o.secs ?? 0} ${o.nanosecs ?? 0}\n`)
      .join('');
    plan.push(ops.timeOffsets(offsets));
  }
  plan.push(ops.exitFile(join(options.stateDir, 'exit.json')));
  plan.push(ops.mkfifo(join(options.stateDir, 'exec.fifo'), 0o622));
  const terminal = process.terminal === true;
  const rows = process.consoleSize?.height ?? 0;
  const cols = process.consoleSize?.width ?? 0;
  if (options.io) {
    plan.push(ops.stdioPipes());
    if (options.io.openStdin) plan.push(ops.openStdin());
    if (options.io.logPath) {
      plan.push(ops.logJsonFile(options.io.logPath, options.io.logMaxSize ?? 0, options.io.logMaxFiles ?? 1));
    }
    plan.push(ops.attachSocket(options.io.attachSocket));
    // The pty master comes to the shim, which serves it on the attach socket.
    if (terminal) plan.push(ops.terminalProxy(rows, cols));
  } else if (terminal && options.consoleSocket)
    plan.push(ops.consoleSocket(options.consoleSocket, rows, cols));
  else if (terminal) plan.push(ops.terminalProxy(rows, cols));
  if (options.detach) plan.push(ops.detach());
  const info: StateInfo = { id: options.id, bundle: options.bundle, annotations: spec.annotations };
  const profile = spec.linux?.seccomp;
  const listener = wantsListener(options.seccomp, profile?.listenerPath);
  if (listener && profile?.listenerPath) {
    const state = containerProcessState(info, profile.listenerMetadata, { status: 'creating' });
    plan.push(ops.seccompListener(profile.listenerPath, state));
  }

  // Container process, in order.
  const ownCgroupNs = namespaces.has('cgroup') && namespaces.get('cgroup')?.path === undefined;
  if (ownCgroupNs) plan.push(ops.unshare(CLONE_FLAG.cgroup));
  const newMountNs = namespaces.has('mount');
  if (newMountNs) {
    const rootPropagation = spec.linux?.rootfsPropagation;
    let propagation = MS.SLAVE | MS.REC;
    if (rootPropagation) {
      const flag = propagationFlag(rootPropagation);
      if (flag === undefined) {
        throw invalidArgument(
          `config.json: linux.rootfsPropagation: unknown value ${JSON.stringify(rootPropagation)}`,
        );
      }
      propagation = flag;
    }
    // Keep the container's mounts from propagating back to the host, then make the rootfs a mount point.
    plan.push(
      ops.mount(
        '',
        '/',
        '',
        propagation === (MS.SHARED | MS.REC) || propagation === MS.SHARED ? MS.SLAVE | MS.REC : propagation,
        '',
      ),
    );
    plan.push(ops.mount(root, root, '', MS.BIND | MS.REC, ''));
    if (propagation === MS.SHARED || propagation === (MS.SHARED | MS.REC)) {
      plan.push(ops.mount('', root, '', propagation, ''));
    }
    const mounts = spec.mounts ?? [];
    mounts.forEach((mount, index) => plan.push(...mountOps(root, mount, options, ownCgroupNs, index)));
    const hasDevpts = mounts.some((m) => m.destination === '/dev/pts' && m.type === 'devpts');
    const userDevices = spec.linux?.devices ?? [];
    const devices = [
      ...DEFAULT_DEVICES.filter((d) => !userDevices.some((u) => u.path === d.path)),
      ...userDevices,
    ];
    plan.push(...deviceOps(root, devices, inUserNs));
    plan.push(
      ops.symlinkInRoot(root, '/dev/fd', '/proc/self/fd'),
      ops.symlinkInRoot(root, '/dev/stdin', '/proc/self/fd/0'),
      ops.symlinkInRoot(root, '/dev/stdout', '/proc/self/fd/1'),
      ops.symlinkInRoot(root, '/dev/stderr', '/proc/self/fd/2'),
    );
    if (hasDevpts) plan.push(ops.symlinkInRoot(root, '/dev/ptmx', 'pts/ptmx'));
  }
  plan.push(ops.openStartFifo(join(options.stateDir, 'exec.fifo')));
  // runc's point for prestart and createRuntime hooks: the mounts and devices are made (a hook sees
  // them in /proc/<pid>/root), pivot_root is ahead. The runtime runs them while init waits here.
  if (spec.hooks?.prestart?.length || spec.hooks?.createRuntime?.length) plan.push(ops.runtimeHooks());
  // In the container's namespaces once its mounts are made, with the host's paths still in view.
  plan.push(...hookOps('createContainer', spec.hooks?.createContainer, info));
  if (newMountNs) plan.push(options.noPivot ? ops.moveRoot(root) : ops.pivotRoot(root));

  for (const [key, value] of Object.entries(spec.linux?.sysctl ?? {})) {
    plan.push(ops.writeFile(`/proc/sys/${key.replace(/\./g, '/')}`, value));
  }
  if (newMountNs) {
    for (const path of spec.linux?.readonlyPaths ?? []) plan.push(ops.readonlyPath(path));
    for (const path of spec.linux?.maskedPaths ?? []) plan.push(ops.maskPath(path));
    if (spec.root?.readonly) plan.push(ops.remount('', '/', MS.RDONLY));
  }
  if (namespaces.has('uts')) {
    if (spec.hostname) plan.push(ops.sethostname(spec.hostname));
    if (spec.domainname) plan.push(ops.setdomainname(spec.domainname));
  }
  if (process.oomScoreAdj !== undefined)
    plan.push(ops.writeFile('/proc/self/oom_score_adj', String(process.oomScoreAdj)));
  if (spec.linux?.personality)
    plan.push(ops.personality(spec.linux.personality.domain === 'LINUX32' ? 0x0008 : 0));
  if (terminal) plan.push(ops.setupTerminal());
  const seccomp = options.seccomp ? ops.seccomp(options.seccomp.flags, options.seccomp.program) : undefined;
  // Loading a filter needs no_new_privs or CAP_SYS_ADMIN: without no_new_privs it is loaded while
  // the capabilities are still there (as runc does), and the profile must allow what follows.
  if (seccomp && !process.noNewPrivileges) plan.push(seccomp);
  plan.push(...processIdentityOps(process));
  // A listener is reached during create (as with runc), so that a failure to reach it fails create.
  if (seccomp && process.noNewPrivileges && listener) plan.push(seccomp);
  plan.push(ops.waitStart());
  // Part of start: inside the container, after pivot_root, before the user's program.
  plan.push(...hookOps('startContainer', spec.hooks?.startContainer, info));
  plan.push(ops.preserveFds(options.preserveFds ?? 0));
  if (seccomp && process.noNewPrivileges && !listener) plan.push(seccomp);
  plan.push(execOp(process));
  return plan;
}

export interface ExecPlanOptions {
  /** The container's init pid, whose namespaces are joined. */
  pid: number;
  /** Which namespace types the container has (joined in a safe order). */
  namespaces: NamespaceType[];
  detach: boolean;
  consoleSocket?: string;
  exitFile?: string;
  preserveFds?: number;
  seccomp?: { program: Uint8Array; flags: number };
  /** The shim holds the process's stdio on an attach socket (berthd's exec). */
  io?: ContainerIo;
  /** How the process gets into the container's cgroup. */
  cgroupEntry: CgroupEntry;
  /**
   * The container's seccomp listener: each exec'd process loads its own filter, whose listener fd
   * goes there too, with the state of the running container (runc does the same).
   */
  seccompListener?: { path: string; metadata?: string; container: StateInfo };
}

/** The plan that runs one more process inside a running container. */
export function buildExecPlan(process: Process, options: ExecPlanOptions): PlanOp[] {
  const plan: PlanOp[] = [];
  for (const type of JOIN_ORDER) {
    if (options.namespaces.includes(type))
      plan.push(ops.joinNs(`/proc/${options.pid}/ns/${NS_FILE[type]}`, CLONE_FLAG[type]));
  }
  plan.push(ops.cloneFlags(0));
  plan.push(...cgroupEntryOps(options.cgroupEntry, options.namespaces.includes('cgroup')));
  if (options.exitFile) plan.push(ops.exitFile(options.exitFile));
  const rows = process.consoleSize?.height ?? 0;
  const cols = process.consoleSize?.width ?? 0;
  if (options.io) {
    plan.push(ops.stdioPipes());
    if (options.io.openStdin) plan.push(ops.openStdin());
    plan.push(ops.attachSocket(options.io.attachSocket));
    if (process.terminal) plan.push(ops.terminalProxy(rows, cols));
  } else if (process.terminal && options.consoleSocket)
    plan.push(ops.consoleSocket(options.consoleSocket, rows, cols));
  else if (process.terminal) plan.push(ops.terminalProxy(rows, cols));
  if (options.detach) plan.push(ops.detach());
  const listener = options.seccompListener;
  if (wantsListener(options.seccomp, listener?.path) && listener) {
    const running = { status: 'running' as const, pid: options.pid };
    plan.push(
      ops.seccompListener(
        listener.path,
        containerProcessState(listener.container, listener.metadata, running),
      ),
    );
  }
  if (process.terminal) plan.push(ops.setupTerminal());
  const seccomp = options.seccomp ? ops.seccomp(options.seccomp.flags, options.seccomp.program) : undefined;
  if (seccomp && !process.noNewPrivileges) plan.push(seccomp);
  plan.push(...processIdentityOps(process));
  plan.push(ops.preserveFds(options.preserveFds ?? 0));
  if (seccomp && process.noNewPrivileges) plan.push(seccomp);
  plan.push(execOp(process));
  return plan;
}
