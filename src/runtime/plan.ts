/**
 * The launch plan: the explicit, ordered list of operations that berth-shim executes. TypeScript
 * decides everything (which namespaces, which mounts in which order, which capabilities, the
 * seccomp program); the shim only carries the operations out and reports the first failure.
 * The binary encoding is documented in docs/shim-plan.md and decoded by native/shim/plan.c.
 */

/** Operation codes. Below 100: set-up done by the shim itself; from 100: done by the container process, in order. */
export const OP = {
  // Shim-level set-up (order among these does not matter, except JOIN_NS which is applied in order).
  JOIN_NS: 1,
  CLONE_FLAGS: 2,
  UID_MAP: 3,
  GID_MAP: 4,
  SETGROUPS: 5,
  CONSOLE_SOCKET: 6,
  TERMINAL_PROXY: 7,
  EXIT_FILE: 8,
  DETACH: 9,
  TIME_OFFSETS: 10,
  LOG_FILE: 11,
  MKFIFO: 12,
  // The container's stdio held by the shim: log, attach socket, stdin (docs/shim-plan.md, "Container stdio").
  STDIO_PIPES: 13,
  OPEN_STDIN: 14,
  LOG_JSON_FILE: 15,
  ATTACH_SOCKET: 16,
  // The cgroup init starts in (docs/shim-plan.md, "Cgroups").
  CGROUP_JOIN: 17,
  CLONE_INTO_CGROUP: 18,
  // Where the listener fd of a SECCOMP_ACT_NOTIFY filter goes (docs/shim-plan.md, SECCOMP_LISTENER).
  SECCOMP_LISTENER: 19,
  // Container-process operations, executed in plan order.
  MOUNT: 100,
  MOUNT_IN_ROOT: 101,
  REMOUNT: 102,
  MKNOD_IN_ROOT: 103,
  SYMLINK_IN_ROOT: 104,
  PIVOT_ROOT: 105,
  MOVE_ROOT: 106,
  MASK_PATH: 107,
  READONLY_PATH: 108,
  WRITE_FILE: 109,
  SETHOSTNAME: 110,
  SETDOMAINNAME: 111,
  SETRLIMIT: 112,
  SETGROUPS_IDS: 113,
  SETGID: 114,
  SETUID: 115,
  UMASK: 116,
  CAPS: 117,
  NO_NEW_PRIVS: 118,
  CHDIR: 119,
  SECCOMP: 120,
  OPEN_START_FIFO: 121,
  WAIT_START: 122,
  SETUP_TERMINAL: 123,
  PRESERVE_FDS: 124,
  PERSONALITY: 125,
  EXEC: 126,
  MKDIR_IN_ROOT: 127,
  UNSHARE: 128,
  HOOK: 129,
  // init waits while the runtime runs its prestart and createRuntime hooks (docs/shim-plan.md, RUNTIME_HOOKS).
  RUNTIME_HOOKS: 130,
} as const;

export type OpName = keyof typeof OP;
export const OP_NAMES: Record<number, OpName> = Object.fromEntries(
  Object.entries(OP).map(([name, code]) => [code, name as OpName]),
);

/** What a mount target is when it does not exist yet. */
export const CREATE = { NONE: 0, DIR: 1, FILE: 2 } as const;

/**
 * A text that contains the pid of the process the plan creates, which only the shim knows: the
 * shim joins the pieces with the pid in decimal (see pid-template.ts).
 */
export type PidTemplate = string[];

/** An OCI hook as HOOK runs it. */
export interface HookCommand {
  path: string;
  args?: string[];
  env?: string[];
  /** Seconds; 0 or undefined: none. */
  timeout?: number;
}

/** A field of an operation: a string (NUL-free), raw bytes, or an unsigned 64-bit number. */
export type Field = { s: string } | { b: Uint8Array } | { n: bigint | number };

export interface PlanOp {
  op: number;
  fields: Field[];
}

/** Helpers that build each operation with its fields in the documented order. */
export const ops = {
  joinNs: (path: string, nstype: number): PlanOp => ({
    op: OP.JOIN_NS,
    fields: [{ s: path }, { n: nstype }],
  }),
  cloneFlags: (flags: number): PlanOp => ({ op: OP.CLONE_FLAGS, fields: [{ n: flags }] }),
  uidMap: (text: string): PlanOp => ({ op: OP.UID_MAP, fields: [{ s: text }] }),
  gidMap: (text: string): PlanOp => ({ op: OP.GID_MAP, fields: [{ s: text }] }),
  setgroups: (value: 'allow' | 'deny'): PlanOp => ({ op: OP.SETGROUPS, fields: [{ s: value }] }),
  consoleSocket: (path: string, rows: number, cols: number): PlanOp => ({
    op: OP.CONSOLE_SOCKET,
    fields: [{ s: path }, { n: rows }, { n: cols }],
  }),
  terminalProxy: (rows: number, cols: number): PlanOp => ({
    op: OP.TERMINAL_PROXY,
    fields: [{ n: rows }, { n: cols }],
  }),
  exitFile: (path: string): PlanOp => ({ op: OP.EXIT_FILE, fields: [{ s: path }] }),
  detach: (): PlanOp => ({ op: OP.DETACH, fields: [] }),
  timeOffsets: (text: string): PlanOp => ({ op: OP.TIME_OFFSETS, fields: [{ s: text }] }),
  logFile: (path: string): PlanOp => ({ op: OP.LOG_FILE, fields: [{ s: path }] }),
  mkfifo: (path: string, mode: number): PlanOp => ({ op: OP.MKFIFO, fields: [{ s: path }, { n: mode }] }),
  stdioPipes: (): PlanOp => ({ op: OP.STDIO_PIPES, fields: [] }),
  openStdin: (): PlanOp => ({ op: OP.OPEN_STDIN, fields: [] }),
  /** maxSize 0: never rotated; maxFiles 1 to 1000 (1: the file is truncated instead of rotated). */
  logJsonFile: (path: string, maxSize: number | bigint, maxFiles: number): PlanOp => ({
    op: OP.LOG_JSON_FILE,
    fields: [{ s: path }, { n: maxSize }, { n: maxFiles }],
  }),
  attachSocket: (path: string): PlanOp => ({ op: OP.ATTACH_SOCKET, fields: [{ s: path }] }),
  cgroupJoin: (file: string): PlanOp => ({ op: OP.CGROUP_JOIN, fields: [{ s: file }] }),
  cloneIntoCgroup: (directory: string): PlanOp => ({ op: OP.CLONE_INTO_CGROUP, fields: [{ s: directory }] }),
  /** The container process state sent with the listener fd, as a template for the process's pid. */
  seccompListener: (path: string, state: PidTemplate): PlanOp => ({
    op: OP.SECCOMP_LISTENER,
    fields: [{ s: path }, ...state.map((s) => ({ s }))],
  }),

  mount: (source: string, target: string, fstype: string, flags: bigint, data: string): PlanOp => ({
    op: OP.MOUNT,
    fields: [{ s: source }, { s: target }, { s: fstype }, { n: flags }, { s: data }],
  }),
  mountInRoot: (
    root: string,
    dest: string,
    source: string,
    fstype: string,
    flags: bigint,
    data: string,
    create: number,
  ): PlanOp => ({
    op: OP.MOUNT_IN_ROOT,
    fields: [
      { s: root },
      { s: dest },
      { s: source },
      { s: fstype },
      { n: flags },
      { s: data },
      { n: create },
    ],
  }),
  remount: (root: string, dest: string, flags: bigint): PlanOp => ({
    op: OP.REMOUNT,
    fields: [{ s: root }, { s: dest }, { n: flags }],
  }),
  mknodInRoot: (
    root: string,
    dest: string,
    mode: number,
    major: number,
    minor: number,
    uid: number,
    gid: number,
  ): PlanOp => ({
    op: OP.MKNOD_IN_ROOT,
    fields: [{ s: root }, { s: dest }, { n: mode }, { n: major }, { n: minor }, { n: uid }, { n: gid }],
  }),
  symlinkInRoot: (root: string, linkPath: string, target: string): PlanOp => ({
    op: OP.SYMLINK_IN_ROOT,
    fields: [{ s: root }, { s: linkPath }, { s: target }],
  }),
  mkdirInRoot: (root: string, dest: string, mode: number): PlanOp => ({
    op: OP.MKDIR_IN_ROOT,
    fields: [{ s: root }, { s: dest }, { n: mode }],
  }),
  pivotRoot: (root: string): PlanOp => ({ op: OP.PIVOT_ROOT, fields: [{ s: root }] }),
  moveRoot: (root: string): PlanOp => ({ op: OP.MOVE_ROOT, fields: [{ s: root }] }),
  maskPath: (path: string): PlanOp => ({ op: OP.MASK_PATH, fields: [{ s: path }] }),
  readonlyPath: (path: string): PlanOp => ({ op: OP.READONLY_PATH, fields: [{ s: path }] }),
  writeFile: (path: string, content: string): PlanOp => ({
    op: OP.WRITE_FILE,
    fields: [{ s: path }, { s: content }],
  }),
  sethostname: (name: string): PlanOp => ({ op: OP.SETHOSTNAME, fields: [{ s: name }] }),
  setdomainname: (name: string): PlanOp => ({ op: OP.SETDOMAINNAME, fields: [{ s: name }] }),
  setrlimit: (resource: number, soft: bigint, hard: bigint): PlanOp => ({
    op: OP.SETRLIMIT,
    fields: [{ n: resource }, { n: soft }, { n: hard }],
  }),
  setgroupsIds: (gids: number[]): PlanOp => ({ op: OP.SETGROUPS_IDS, fields: gids.map((n) => ({ n })) }),
  setgid: (gid: number): PlanOp => ({ op: OP.SETGID, fields: [{ n: gid }] }),
  setuid: (uid: number): PlanOp => ({ op: OP.SETUID, fields: [{ n: uid }] }),
  umask: (mask: number): PlanOp => ({ op: OP.UMASK, fields: [{ n: mask }] }),
  caps: (
    bounding: bigint,
    effective: bigint,
    permitted: bigint,
    inheritable: bigint,
    ambient: bigint,
  ): PlanOp => ({
    op: OP.CAPS,
    fields: [{ n: bounding }, { n: effective }, { n: permitted }, { n: inheritable }, { n: ambient }],
  }),
  noNewPrivs: (): PlanOp => ({ op: OP.NO_NEW_PRIVS, fields: [] }),
  chdir: (path: string): PlanOp => ({ op: OP.CHDIR, fields: [{ s: path }] }),
  seccomp: (flags: number, program: Uint8Array): PlanOp => ({
    op: OP.SECCOMP,
    fields: [{ n: flags }, { b: program }],
  }),
  openStartFifo: (path: string): PlanOp => ({ op: OP.OPEN_START_FIFO, fields: [{ s: path }] }),
  waitStart: (): PlanOp => ({ op: OP.WAIT_START, fields: [] }),
  setupTerminal: (): PlanOp => ({ op: OP.SETUP_TERMINAL, fields: [] }),
  preserveFds: (count: number): PlanOp => ({ op: OP.PRESERVE_FDS, fields: [{ n: count }] }),
  personality: (persona: number): PlanOp => ({ op: OP.PERSONALITY, fields: [{ n: persona }] }),
  unshare: (flags: number): PlanOp => ({ op: OP.UNSHARE, fields: [{ n: flags }] }),
  /** `name` (createContainer, startContainer) is for messages; `state` goes to the hook's stdin. */
  hook: (name: string, hook: HookCommand, state: PidTemplate): PlanOp => {
    const args = hook.args?.length ? hook.args : [hook.path];
    const env = hook.env ?? [];
    return {
      op: OP.HOOK,
      fields: [
        { s: name },
        { s: hook.path },
        { n: hook.timeout ?? 0 },
        { n: args.length },
        { n: env.length },
        ...[...args, ...env, ...state].map((s) => ({ s })),
      ],
    };
  },
  runtimeHooks: (): PlanOp => ({ op: OP.RUNTIME_HOOKS, fields: [] }),
  exec: (args: string[], env: string[]): PlanOp => ({
    op: OP.EXEC,
    fields: [{ n: args.length }, ...args.map((s) => ({ s })), ...env.map((s) => ({ s }))],
  }),
};

export const PLAN_MAGIC = 'BSP1';
export const PLAN_VERSION = 1;
const FIELD_STRING = 1;
const FIELD_BYTES = 2;
const FIELD_NUMBER = 3;

/** Encode a plan: header, then each operation with its typed, length-prefixed fields (little-endian). */
export function encodePlan(plan: PlanOp[]): Buffer {
  // Strings are converted once; the buffer is sized exactly and written in one pass.
  const bodies = plan.map(({ fields }) =>
    fields.map((field): Buffer | bigint => {
      if ('s' in field) {
        if (field.s.includes('\0'))
          throw new Error(`plan string contains a NUL byte: ${JSON.stringify(field.s)}`);
        return Buffer.from(field.s, 'utf8');
      }
      if ('b' in field) return Buffer.from(field.b.buffer, field.b.byteOffset, field.b.byteLength);
      return BigInt.asUintN(64, BigInt(field.n));
    }),
  );
  let size = 12;
  for (const fields of bodies) {
    size += 4;
    for (const body of fields) size += 5 + (typeof body === 'bigint' ? 8 : body.length);
  }
  const out = Buffer.alloc(size);
  out.write(PLAN_MAGIC, 0, 'ascii');
  out.writeUInt32LE(PLAN_VERSION, 4);
  out.writeUInt32LE(plan.length, 8);
  let offset = 12;
  plan.forEach(({ op, fields }, index) => {
    offset = out.writeUInt16LE(op, offset);
    offset = out.writeUInt16LE(fields.length, offset);
    for (const [i, body] of (bodies[index] ?? []).entries()) {
      const field = fields[i];
      if (typeof body === 'bigint') {
        offset = out.writeUInt8(FIELD_NUMBER, offset);
        offset = out.writeUInt32LE(8, offset);
        offset = out.writeBigUInt64LE(body, offset);
      } else {
        offset = out.writeUInt8(field !== undefined && 's' in field ? FIELD_STRING : FIELD_BYTES, offset);
        offset = out.writeUInt32LE(body.length, offset);
        offset += body.copy(out, offset);
      }
    }
  });
  return out;
}

/** A readable listing of a plan, for `--debug` logs and error reports. */
export function describePlan(plan: PlanOp[]): string {
  return plan
    .map(({ op, fields }, index) => {
      const text = fields
        .map((f) =>
          's' in f
            ? JSON.stringify(f.s)
            : 'b' in f
              ? `<${f.b.length} bytes>`
              : `0x${BigInt(f.n).toString(16)}`,
        )
        .join(' ');
      return `${index} ${OP_NAMES[op] ?? `OP${op}`} ${text}`;
    })
    .join('\n');
}
