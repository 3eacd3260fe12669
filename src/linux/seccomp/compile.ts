/**
 * Compiles an OCI seccomp profile (runtime-spec 1.2 `linux.seccomp`) into a classic BPF program for
 * seccomp(SECCOMP_SET_MODE_FILTER), with the semantics runc gets from libseccomp. Layout, arch handling
 * and precedence rules are described in docs/seccomp.md.
 */
import { invalidArgument } from '../../common/errors.js';
import type {
  Seccomp,
  SeccompAction,
  SeccompArg,
  SeccompOperator,
  SeccompSyscall,
} from '../../oci/runtime-spec.js';
import {
  ACTION_BASE,
  ENOSYS,
  EPERM,
  MAX_ERRNO,
  OCI_FILTER_FLAGS,
  SECCOMP_FILTER_FLAG,
  SECCOMP_RET,
  SECCOMP_RET_DATA,
  takesErrno,
} from './actions.js';
import { ARCHES, OCI_ARCHITECTURES, OTHER_FAMILY_SYSCALLS, type Arch, type ArchName } from './arches.js';
import { Assembler, BPF, INSTRUCTION_SIZE, MAX_INSTRUCTIONS, type Label } from './bpf.js';

export interface CompileOptions {
  /** The kernel's native architecture; only x86_64 is supported. */
  arch?: 'x86_64';
}

export interface CompiledSeccomp {
  /** Packed `struct sock_filter` instructions, ready for `struct sock_fprog`. */
  program: Buffer;
  /** Flags for seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog). */
  flags: number;
  instructions: number;
}

/** `struct seccomp_data` offsets. */
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const argumentOffset = (index: number): number => 16 + 8 * index;

/** libseccomp's default action for an architecture the filter does not cover. */
const BAD_ARCH_RETURN = SECCOMP_RET.KILL_THREAD;

const OPERATORS: ReadonlySet<string> = new Set<SeccompOperator>([
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_EQ',
  'SCMP_CMP_GE',
  'SCMP_CMP_GT',
  'SCMP_CMP_MASKED_EQ',
]);

const FIELD = 'linux.seccomp';
const MAX_ARGUMENT = 1n << 64n;

interface Condition {
  index: number;
  op: SeccompOperator;
  value: bigint;
  valueTwo: bigint;
}

/** One libseccomp rule: the conditions are ANDed; none means unconditional. */
interface Rule {
  ret: number;
  conditions: Condition[];
}

type Outcome = { kind: 'ret'; ret: number } | { kind: 'rules'; rules: Rule[] };

interface Interval {
  first: number;
  last: number;
  outcome: Outcome;
  weight: number;
}

export function compileSeccomp(profile: Seccomp, options: CompileOptions = {}): CompiledSeccomp {
  if ((options.arch ?? 'x86_64') !== 'x86_64') {
    throw invalidArgument(`seccomp: unsupported native architecture ${JSON.stringify(options.arch)}`);
  }
  if (typeof profile !== 'object' || profile === null) throw invalidArgument(`${FIELD}: must be an object`);

  const defaultRet = parseAction(
    profile.defaultAction,
    profile.defaultErrnoRet,
    `${FIELD}.defaultAction`,
    `${FIELD}.defaultErrnoRet`,
  );
  if (profile.defaultAction === 'SCMP_ACT_NOTIFY') {
    throw invalidArgument(`${FIELD}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action`);
  }
  const listed = parseArchitectures(profile.architectures);
  // libseccomp always filters the native ABI; the listed ones are added to it.
  const inFilter = new Set<ArchName>(['x86_64', ...listed]);

  const { rulesByArch, highest, notify } = collectRules(profile.syscalls, inFilter, defaultRet);
  const flags = parseFlags(profile.flags, notify);

  // runc answers ENOSYS for calls newer than any the profile names (on the listed architectures), so
  // that programs fall back to older calls instead of failing with the default errno.
  const enosys =
    !permissive(profile.defaultAction) && defaultRet !== (SECCOMP_RET.ERRNO | ENOSYS)
      ? (arch: ArchName): number | undefined => (listed.has(arch) ? highest.get(arch) : undefined)
      : (): undefined => undefined;

  const sectionOf = (...names: ArchName[]): Interval[] =>
    names.flatMap((name) => {
      const arch = ARCHES[name];
      const byNumber = rulesByArch.get(name);
      if (byNumber === undefined) {
        return [{ first: arch.firstNumber, last: arch.lastNumber, outcome: ret(BAD_ARCH_RETURN), weight: 0 }];
      }
      return intervalsOf(arch, byNumber, defaultRet, enosys(name));
    });

  const asm = new Assembler();
  const x86_64 = asm.label();
  const i386 = inFilter.has('x86') ? asm.label() : undefined;
  asm.load(OFFSET_ARCH);
  if (i386 === undefined) {
    asm.jump(BPF.JEQ_K, ARCHES.x86_64.auditArch, x86_64, asm.returnLabel(BAD_ARCH_RETURN));
  } else {
    const next = asm.label();
    asm.jump(BPF.JEQ_K, ARCHES.x86_64.auditArch, x86_64, next);
    asm.place(next);
    asm.jump(BPF.JEQ_K, ARCHES.x86.auditArch, i386, asm.returnLabel(BAD_ARCH_RETURN));
  }
  asm.flushReturns();
  // x86_64 and x32 share the audit arch: one search tree covers both number ranges.
  emitSection(asm, x86_64, mergeIntervals(sectionOf('x86_64', 'x32')), defaultRet, 64);
  if (i386 !== undefined) emitSection(asm, i386, mergeIntervals(sectionOf('x86')), defaultRet, 32);

  const program = asm.assemble();
  const instructions = program.length / INSTRUCTION_SIZE;
  if (instructions > MAX_INSTRUCTIONS) {
    throw invalidArgument(
      `${FIELD}: the profile compiles to ${instructions} BPF instructions, more than the kernel's limit of ${MAX_INSTRUCTIONS}`,
    );
  }
  return { program, flags, instructions };
}

interface CollectedRules {
  /** Per ABI in the filter: call number -> its rules, in profile order. */
  rulesByArch: Map<ArchName, Map<number, Rule[]>>;
  /** Per ABI: the highest call number the profile names (for the ENOSYS range). */
  highest: Map<ArchName, number>;
  notify: boolean;
}

function collectRules(syscalls: unknown, inFilter: Set<ArchName>, defaultRet: number): CollectedRules {
  const rulesByArch = new Map<ArchName, Map<number, Rule[]>>();
  const highest = new Map<ArchName, number>();
  for (const name of inFilter) rulesByArch.set(name, new Map());
  let notify = false;
  if (syscalls === undefined || syscalls === null) return { rulesByArch, highest, notify };
  if (!Array.isArray(syscalls)) throw invalidArgument(`${FIELD}.syscalls: must be an array`);

  syscalls.forEach((entry: unknown, i) => {
    const field = `${FIELD}.syscalls[${i}]`;
    if (typeof entry !== 'object' || entry === null) throw invalidArgument(`${field}: must be an object`);
    const { names, action, errnoRet, args } = entry as Partial<SeccompSyscall>;
    const ret = parseAction(action, errnoRet, `${field}.action`, `${field}.errnoRet`);
    if (action === 'SCMP_ACT_NOTIFY') notify = true;
    const rules = parseRules(ret, args, field);
    if (!Array.isArray(names) || names.length === 0) {
      throw invalidArgument(`${field}.names: must list at least one system call`);
    }
    names.forEach((name: unknown, j) => {
      const nameField = `${field}.names[${j}]`;
      if (typeof name !== 'string') throw invalidArgument(`${nameField}: must be a string`);
      if (!isKnownSyscall(name)) {
        throw invalidArgument(`${nameField}: unknown syscall ${JSON.stringify(name)} on x86_64, x86 and x32`);
      }
      for (const arch of inFilter) {
        const nr = ARCHES[arch].syscalls.get(name);
        if (nr === undefined) continue;
        highest.set(arch, Math.max(highest.get(arch) ?? 0, nr));
        // runc skips rules whose action is the default action: they cannot change the outcome.
        if (ret === defaultRet) continue;
        const byNumber = rulesByArch.get(arch);
        byNumber?.set(nr, [...(byNumber.get(nr) ?? []), ...rules]);
      }
    });
  });
  return { rulesByArch, highest, notify };
}

const ret = (value: number): Outcome => ({ kind: 'ret', ret: value >>> 0 });

const isKnownSyscall = (name: string): boolean =>
  Object.values(ARCHES).some((arch) => arch.syscalls.has(name)) || OTHER_FAMILY_SYSCALLS.has(name);

/** Default actions for which runc adds no ENOSYS stub: unknown calls are let through anyway. */
const permissive = (action: SeccompAction): boolean =>
  action === 'SCMP_ACT_ALLOW' || action === 'SCMP_ACT_LOG' || action === 'SCMP_ACT_TRACE';

/** The filter return value of an action; ERRNO and TRACE default to EPERM as the runtime spec says. */
function parseAction(action: unknown, errnoRet: unknown, field: string, errnoField: string): number {
  if (typeof action !== 'string' || !Object.hasOwn(ACTION_BASE, action)) {
    throw invalidArgument(`${field}: unknown action ${JSON.stringify(action)}`);
  }
  const name = action as SeccompAction;
  if (errnoRet === undefined || errnoRet === null) {
    return (ACTION_BASE[name] | (takesErrno(name) ? EPERM : 0)) >>> 0;
  }
  if (!takesErrno(name))
    throw invalidArgument(`${errnoField}: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno`);
  const max = name === 'SCMP_ACT_ERRNO' ? MAX_ERRNO : SECCOMP_RET_DATA;
  if (typeof errnoRet !== 'number' || !Number.isInteger(errnoRet) || errnoRet < 0 || errnoRet > max) {
    throw invalidArgument(
      `${errnoField}: must be an integer from 0 to ${max}, got ${JSON.stringify(errnoRet)}`,
    );
  }
  return (ACTION_BASE[name] | errnoRet) >>> 0;
}

function parseArchitectures(architectures: unknown): Set<ArchName> {
  const listed = new Set<ArchName>();
  if (architectures === undefined || architectures === null) return listed;
  if (!Array.isArray(architectures)) throw invalidArgument(`${FIELD}.architectures: must be an array`);
  architectures.forEach((name: unknown, i) => {
    if (typeof name !== 'string' || !Object.hasOwn(OCI_ARCHITECTURES, name)) {
      throw invalidArgument(`${FIELD}.architectures[${i}]: unknown architecture ${JSON.stringify(name)}`);
    }
    const arch = OCI_ARCHITECTURES[name];
    if (arch) listed.add(arch);
  });
  return listed;
}

function parseFlags(names: unknown, notify: boolean): number {
  let flags = notify ? SECCOMP_FILTER_FLAG.NEW_LISTENER : 0;
  if (names === undefined || names === null) return flags;
  if (!Array.isArray(names)) throw invalidArgument(`${FIELD}.flags: must be an array`);
  names.forEach((name: unknown, i) => {
    if (typeof name !== 'string' || !Object.hasOwn(OCI_FILTER_FLAGS, name)) {
      throw invalidArgument(`${FIELD}.flags[${i}]: unknown flag ${JSON.stringify(name)}`);
    }
    flags |= OCI_FILTER_FLAGS[name] ?? 0;
  });
  if (flags & SECCOMP_FILTER_FLAG.WAIT_KILLABLE_RECV && !notify) {
    throw invalidArgument(
      `${FIELD}.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a rule with SCMP_ACT_NOTIFY`,
    );
  }
  // The kernel refuses TSYNC with a listener unless a failed sync reports ESRCH instead of a thread id.
  if (flags & SECCOMP_FILTER_FLAG.TSYNC && notify) flags |= SECCOMP_FILTER_FLAG.TSYNC_ESRCH;
  return flags;
}

/**
 * The rules one profile entry stands for. Conditions on different arguments are ANDed. Like runc, an
 * entry that compares one argument more than once becomes one rule per condition (ORed), because
 * libseccomp accepts a single comparison per argument and rule.
 */
function parseRules(retValue: number, args: unknown, field: string): Rule[] {
  if (args === undefined || args === null) return [{ ret: retValue, conditions: [] }];
  if (!Array.isArray(args)) throw invalidArgument(`${field}.args: must be an array`);
  const conditions = args.map((arg: unknown, k) => parseCondition(arg, `${field}.args[${k}]`));
  const indexes = new Set(conditions.map((c) => c.index));
  if (indexes.size === conditions.length) return [{ ret: retValue, conditions }];
  return conditions.map((c) => ({ ret: retValue, conditions: [c] }));
}

function parseCondition(arg: unknown, field: string): Condition {
  if (typeof arg !== 'object' || arg === null) throw invalidArgument(`${field}: must be an object`);
  const { index, op, value, valueTwo } = arg as Partial<SeccompArg>;
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 5) {
    throw invalidArgument(
      `${field}.index: must be an argument index from 0 to 5, got ${JSON.stringify(index)}`,
    );
  }
  if (typeof op !== 'string' || !OPERATORS.has(op)) {
    throw invalidArgument(`${field}.op: unknown operator ${JSON.stringify(op)}`);
  }
  return {
    index,
    op,
    value: parseValue(value, `${field}.value`),
    valueTwo: valueTwo === undefined || valueTwo === null ? 0n : parseValue(valueTwo, `${field}.valueTwo`),
  };
}

function parseValue(value: unknown, field: string): bigint {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || BigInt(value) >= MAX_ARGUMENT) {
    throw invalidArgument(`${field}: must be an integer from 0 to 2^64-1, got ${JSON.stringify(value)}`);
  }
  return BigInt(value);
}

/**
 * What each call number of one ABI leads to, as sorted intervals covering the ABI's whole number range:
 * a return value, or the rules to evaluate. An unconditional rule decides its call alone (libseccomp
 * replaces a call's argument tree with it); otherwise the conditional rules are tried in profile order.
 */
function intervalsOf(
  arch: Arch,
  byNumber: Map<number, Rule[]>,
  defaultRet: number,
  enosysAbove: number | undefined,
): Interval[] {
  const out: Interval[] = [];
  const gap = (first: number, last: number): void => {
    const split = enosysAbove === undefined ? last : Math.min(last, enosysAbove);
    if (first <= split) out.push({ first, last: split, outcome: ret(defaultRet), weight: 0 });
    const from = Math.max(first, split + 1);
    if (from <= last) out.push({ first: from, last, outcome: ret(SECCOMP_RET.ERRNO | ENOSYS), weight: 0 });
  };
  let next = arch.firstNumber;
  for (const nr of [...byNumber.keys()].sort((a, b) => a - b)) {
    const rules = byNumber.get(nr) ?? [];
    gap(next, nr - 1);
    const unconditional = rules.find((rule) => rule.conditions.length === 0);
    out.push({
      first: nr,
      last: nr,
      outcome: unconditional ? ret(unconditional.ret) : { kind: 'rules', rules },
      weight: 0,
    });
    next = nr + 1;
  }
  gap(next, arch.lastNumber);
  return weigh(arch, out);
}

/**
 * How often a typical container makes a call, relative to a call not listed (1). The search tree puts
 * heavy calls near its root; since every call counts, large blocks of allowed calls are found quickly
 * too. Event loops and I/O dominate; then memory management, files and signals.
 */
const CALL_WEIGHTS: Readonly<Record<string, number>> = {
  ...Object.fromEntries(
    [
      'read',
      'write',
      'futex',
      'epoll_wait',
      'epoll_pwait',
      'poll',
      'ppoll',
      'recvfrom',
      'sendto',
      'recvmsg',
      'sendmsg',
    ].map((name) => [name, 1000]),
  ),
  ...Object.fromEntries(
    [
      'readv',
      'writev',
      'pread64',
      'pwrite64',
      'epoll_ctl',
      'openat',
      'close',
      'newfstatat',
      'fstat',
      'statx',
      'lseek',
      'mmap',
      'munmap',
      'mprotect',
      'madvise',
      'brk',
      'nanosleep',
      'clock_nanosleep',
      'clock_gettime',
      'getpid',
      'gettid',
      'sched_yield',
      'rt_sigprocmask',
      'rt_sigreturn',
      'ioctl',
      'fcntl',
    ].map((name) => [name, 100]),
  ),
};
/** x32 shares the x86_64 tree but is rarely used (most kernels are built without it). */
const X32_SCALE = 1 / 1024;

function weigh(arch: Arch, intervals: Interval[]): Interval[] {
  const scale = arch.name === 'x32' ? X32_SCALE : 1;
  const weights = new Map<number, number>();
  for (const [name, nr] of arch.syscalls) {
    const weight = (CALL_WEIGHTS[name] ?? 1) * scale;
    weights.set(nr, Math.max(weights.get(nr) ?? 0, weight));
  }
  const numbers = [...weights.keys()].sort((a, b) => a - b);
  let k = 0;
  return intervals.map((interval) => {
    // Empty ranges still weigh a little so that the tree stays balanced over them.
    let weight = scale / 64;
    while (k < numbers.length && (numbers[k] ?? 0) < interval.first) k++;
    for (let j = k; j < numbers.length && (numbers[j] ?? 0) <= interval.last; j++) {
      weight += weights.get(numbers[j] ?? 0) ?? 0;
    }
    return { ...interval, weight };
  });
}

/** Joins neighbouring intervals that return the same value. */
function mergeIntervals(intervals: Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const interval of intervals) {
    const last = out[out.length - 1];
    if (
      last !== undefined &&
      last.outcome.kind === 'ret' &&
      interval.outcome.kind === 'ret' &&
      last.outcome.ret === interval.outcome.ret &&
      last.last + 1 === interval.first
    ) {
      out[out.length - 1] = { ...last, last: interval.last, weight: last.weight + interval.weight };
    } else {
      out.push(interval);
    }
  }
  return out;
}

/** A search tree over the intervals with `jge` on `seccomp_data.nr`, shaped by `optimalSplits`. */
function emitSection(
  asm: Assembler,
  entry: Label,
  intervals: Interval[],
  defaultRet: number,
  argumentBits: 32 | 64,
): void {
  const splitOf = optimalSplits(intervals.map((interval) => interval.weight));
  const at = (i: number): Interval => {
    const interval = intervals[i];
    if (interval === undefined) throw new RangeError(`interval ${i}`);
    return interval;
  };

  const target = (from: number, to: number): { label: Label; emit: boolean } => {
    const only = at(from);
    if (from === to && only.outcome.kind === 'ret')
      return { label: asm.returnLabel(only.outcome.ret), emit: false };
    return { label: asm.label(), emit: true };
  };

  const emit = (from: number, to: number): void => {
    if (from === to) {
      const outcome = at(from).outcome;
      if (outcome.kind === 'ret') asm.ret(outcome.ret);
      else emitRules(asm, outcome.rules, argumentBits, defaultRet);
      return;
    }
    const split = splitOf(from, to);
    const left = target(from, split - 1);
    const right = target(split, to);
    asm.jump(BPF.JGE_K, at(split).first, right.label, left.label);
    if (left.emit) {
      asm.place(left.label);
      emit(from, split - 1);
    }
    if (right.emit) {
      asm.place(right.label);
      emit(split, to);
    }
  };

  asm.place(entry);
  asm.load(OFFSET_NR);
  emit(0, intervals.length - 1);
  asm.flushReturns();
}

/**
 * The binary search tree over leaves 0..n-1 with the least weighted depth (sum of weight x number of
 * comparisons), by dynamic programming with Knuth's bound on the root (O(n^2)): the best split of
 * [i, j] lies between the best splits of [i, j-1] and [i+1, j]. Returns, for a range, the first leaf of
 * its right subtree.
 */
function optimalSplits(weights: number[]): (from: number, to: number) => number {
  const n = weights.length;
  const prefix = new Float64Array(n + 1);
  weights.forEach((w, i) => (prefix[i + 1] = (prefix[i] ?? 0) + w));
  const cost = new Float64Array(n * n);
  const root = new Int32Array(n * n);
  for (let i = 0; i < n; i++) root[i * n + i] = i;
  for (let length = 2; length <= n; length++) {
    for (let i = 0; i + length - 1 < n; i++) {
      const j = i + length - 1;
      const lowest = Math.max(root[i * n + j - 1] ?? 0, i + 1);
      const highest = Math.min(root[(i + 1) * n + j] ?? j, j);
      let best = Infinity;
      let bestRoot = lowest;
      for (let k = lowest; k <= highest; k++) {
        const c = (cost[i * n + k - 1] ?? 0) + (cost[k * n + j] ?? 0);
        if (c < best) {
          best = c;
          bestRoot = k;
        }
      }
      cost[i * n + j] = best + (prefix[j + 1] ?? 0) - (prefix[i] ?? 0);
      root[i * n + j] = bestRoot;
    }
  }
  return (from, to) => root[from * n + to] ?? from + 1;
}

/**
 * Conditional rules of one call, in profile order: the first whose conditions all hold decides. The
 * block ends with its own default return, close enough for every failed comparison to reach.
 */
function emitRules(asm: Assembler, rules: Rule[], argumentBits: 32 | 64, defaultRet: number): void {
  for (const rule of rules) {
    const fail = asm.label();
    let possible = true;
    for (const condition of rule.conditions) {
      possible = emitCondition(asm, condition, argumentBits, fail);
      if (!possible) break;
    }
    if (possible) asm.ret(rule.ret);
    asm.place(fail);
  }
  asm.ret(defaultRet);
}

const low = (value: bigint): number => Number(value & 0xffffffffn);
const high = (value: bigint): number => Number((value >> 32n) & 0xffffffffn);

/**
 * Code that falls through when the condition holds and jumps to `fail` when it does not. 64-bit values
 * are compared as two 32-bit halves: the high halves decide unless they are equal. Returns false when
 * the condition can never hold (the code then only jumps to `fail`).
 */
function emitCondition(asm: Assembler, c: Condition, bits: 32 | 64, fail: Label): boolean {
  const lo = argumentOffset(c.index);
  const hi = lo + 4;
  const ok = asm.label();
  const value = bits === 32 ? c.value & 0xffffffffn : c.value;
  const valueTwo = bits === 32 ? c.valueTwo & 0xffffffffn : c.valueTwo;

  // Unsigned comparisons that cannot fail or cannot succeed.
  if (c.op === 'SCMP_CMP_GE' && value === 0n) return true;
  if (c.op === 'SCMP_CMP_LT' && value === 0n) {
    asm.ja(fail);
    return false;
  }

  /** Jumps on the high halves: to `onAbove` if greater, `onBelow` if smaller, falls through if equal. */
  const compareHigh = (onAbove: Label, onBelow: Label): void => {
    if (bits === 32) return;
    const equal = asm.label();
    asm.load(hi);
    if (high(value) === 0) {
      asm.jump(BPF.JGT_K, 0, onAbove, equal);
    } else {
      const notAbove = asm.label();
      asm.jump(BPF.JGT_K, high(value), onAbove, notAbove);
      asm.place(notAbove);
      asm.jump(BPF.JEQ_K, high(value), equal, onBelow);
    }
    asm.place(equal);
  };

  switch (c.op) {
    case 'SCMP_CMP_EQ':
    case 'SCMP_CMP_NE': {
      const [onEqual, onDifferent] = c.op === 'SCMP_CMP_EQ' ? [ok, fail] : [fail, ok];
      if (bits === 64) {
        const next = asm.label();
        asm.load(hi);
        asm.jump(BPF.JEQ_K, high(value), next, onDifferent);
        asm.place(next);
      }
      asm.load(lo);
      asm.jump(BPF.JEQ_K, low(value), onEqual, onDifferent);
      break;
    }
    case 'SCMP_CMP_GT':
    case 'SCMP_CMP_GE':
      compareHigh(ok, fail);
      asm.load(lo);
      asm.jump(c.op === 'SCMP_CMP_GT' ? BPF.JGT_K : BPF.JGE_K, low(value), ok, fail);
      break;
    case 'SCMP_CMP_LT':
    case 'SCMP_CMP_LE':
      compareHigh(fail, ok);
      asm.load(lo);
      // A < v is !(A >= v); A <= v is !(A > v).
      asm.jump(c.op === 'SCMP_CMP_LT' ? BPF.JGE_K : BPF.JGT_K, low(value), fail, ok);
      break;
    case 'SCMP_CMP_MASKED_EQ': {
      // (arg & value) == valueTwo, one half at a time; a half whose mask is 0 is decided statically.
      const halves: [number, number, number][] =
        bits === 64
          ? [
              [hi, high(value), high(valueTwo)],
              [lo, low(value), low(valueTwo)],
            ]
          : [[lo, low(value), low(valueTwo)]];
      for (const [offset, mask, expected] of halves) {
        if (mask === 0) {
          if (expected === 0) continue;
          asm.ja(fail);
          return false;
        }
        const next = asm.label();
        asm.load(offset);
        if (mask !== 0xffffffff) asm.and(mask);
        asm.jump(BPF.JEQ_K, expected, next, fail);
        asm.place(next);
      }
      break;
    }
  }
  asm.place(ok);
  return true;
}
