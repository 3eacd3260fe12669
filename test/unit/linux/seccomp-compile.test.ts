import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import { ARCHES, type ArchName } from '../../../src/linux/seccomp/arches.js';
import { compileSeccomp, type CompiledSeccomp } from '../../../src/linux/seccomp/compile.js';
import type { Seccomp, SeccompOperator, SeccompSyscall } from '../../../src/oci/runtime-spec.js';
import { checkFilter, runFilter, type FilterResult } from '../../helpers/bpf-interpreter.js';

const AUDIT_ARCH_AARCH64 = 0xc00000b7;

function nr(arch: ArchName, name: string): number {
  const value = ARCHES[arch].syscalls.get(name);
  if (value === undefined) throw new Error(`${name} is not a syscall on ${arch}`);
  return value;
}

function call(
  compiled: CompiledSeccomp,
  arch: ArchName,
  name: string | number,
  args: (bigint | number)[] = [],
): FilterResult {
  const number = typeof name === 'number' ? name : nr(arch, name);
  return runFilter(compiled.program, { nr: number, arch: ARCHES[arch].auditArch, args });
}

/** "ALLOW", "ERRNO 38", "KILL_THREAD", ... */
function outcome(result: FilterResult): string {
  return result.action === 'ERRNO' || result.action === 'TRACE'
    ? `${result.action} ${result.data}`
    : result.action;
}

const compile = (profile: Seccomp): CompiledSeccomp => {
  const compiled = compileSeccomp(profile);
  checkFilter(compiled.program);
  assert.equal(compiled.instructions * 8, compiled.program.length);
  return compiled;
};

const rule = (names: string[], more: Partial<SeccompSyscall> = {}): SeccompSyscall => ({
  names,
  action: 'SCMP_ACT_ERRNO',
  ...more,
});

test('every action maps to its seccomp return value', () => {
  const compiled = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      { names: ['getpid'], action: 'SCMP_ACT_KILL' },
      { names: ['getppid'], action: 'SCMP_ACT_KILL_PROCESS' },
      { names: ['gettid'], action: 'SCMP_ACT_KILL_THREAD' },
      { names: ['getuid'], action: 'SCMP_ACT_TRAP' },
      { names: ['getgid'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      { names: ['geteuid'], action: 'SCMP_ACT_ERRNO' },
      { names: ['getegid'], action: 'SCMP_ACT_TRACE', errnoRet: 4242 },
      { names: ['getpgrp'], action: 'SCMP_ACT_TRACE' },
      { names: ['getsid'], action: 'SCMP_ACT_LOG' },
      { names: ['getcwd'], action: 'SCMP_ACT_NOTIFY' },
    ],
  });
  const expected: [string, string][] = [
    ['getpid', 'KILL_THREAD'],
    ['getppid', 'KILL_PROCESS'],
    ['gettid', 'KILL_THREAD'],
    ['getuid', 'TRAP'],
    ['getgid', 'ERRNO 38'],
    ['geteuid', 'ERRNO 1'],
    ['getegid', 'TRACE 4242'],
    ['getpgrp', 'TRACE 1'],
    ['getsid', 'LOG'],
    ['getcwd', 'USER_NOTIF'],
    ['read', 'ALLOW'],
  ];
  for (const [name, want] of expected) assert.equal(outcome(call(compiled, 'x86_64', name)), want, name);
  assert.equal(compiled.flags, 8, 'a NOTIFY rule asks for SECCOMP_FILTER_FLAG_NEW_LISTENER');
});

test('defaultErrnoRet applies to the default action; a rule without errnoRet returns EPERM', () => {
  const compiled = compile({
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 95,
    syscalls: [
      rule(['mkdir']),
      rule(['rmdir'], { errnoRet: 0 }),
      { names: ['read'], action: 'SCMP_ACT_ALLOW' },
    ],
  });
  assert.equal(outcome(call(compiled, 'x86_64', 'mkdir')), 'ERRNO 1');
  assert.equal(outcome(call(compiled, 'x86_64', 'rmdir')), 'ERRNO 0');
  assert.equal(outcome(call(compiled, 'x86_64', 'read')), 'ALLOW');
  assert.equal(outcome(call(compiled, 'x86_64', 'getpid')), 'ERRNO 95');
});

const MAX = (1n << 64n) - 1n;
/** Rule values (exact as JavaScript numbers) around the 32-bit halves and the ends of the range. */
const VALUES = [
  0n,
  1n,
  5n,
  0xffffffffn,
  0x100000000n,
  0x100000005n,
  0x1fffffffen,
  0x200000000n,
  (1n << 53n) - 1n,
  1n << 63n,
  (1n << 64n) - 2048n,
];
/** Arguments: each value and its neighbours, plus values whose halves differ from the rule's. */
const ARGUMENTS = [
  ...new Set(
    [
      ...VALUES.flatMap((v) => [v - 1n, v, v + 1n]),
      0x5n,
      0x200000005n,
      0xffffffff00000005n,
      0x1_00000004n,
      0x1_00000006n,
      MAX,
    ].filter((v) => v >= 0n && v <= MAX),
  ),
];

function holds(op: SeccompOperator, arg: bigint, value: bigint, valueTwo: bigint): boolean {
  switch (op) {
    case 'SCMP_CMP_EQ':
      return arg === value;
    case 'SCMP_CMP_NE':
      return arg !== value;
    case 'SCMP_CMP_LT':
      return arg < value;
    case 'SCMP_CMP_LE':
      return arg <= value;
    case 'SCMP_CMP_GT':
      return arg > value;
    case 'SCMP_CMP_GE':
      return arg >= value;
    case 'SCMP_CMP_MASKED_EQ':
      return (arg & value) === valueTwo;
  }
}

const OPERATORS: SeccompOperator[] = [
  'SCMP_CMP_EQ',
  'SCMP_CMP_NE',
  'SCMP_CMP_LT',
  'SCMP_CMP_LE',
  'SCMP_CMP_GT',
  'SCMP_CMP_GE',
];

test('every operator compares full 64-bit values on x86_64 and x32, the low halves on x86', () => {
  let checked = 0;
  for (const op of OPERATORS) {
    for (const value of VALUES) {
      const compiled = compile({
        defaultAction: 'SCMP_ACT_ALLOW',
        architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
        syscalls: [rule(['getsid'], { errnoRet: 77, args: [{ index: 2, value: Number(value), op }] })],
      });
      for (const arg of ARGUMENTS) {
        const low = (v: bigint): bigint => v & 0xffffffffn;
        const cases: [ArchName, boolean][] = [
          ['x86_64', holds(op, arg, value, 0n)],
          ['x32', holds(op, arg, value, 0n)],
          ['x86', holds(op, low(arg), low(value), 0n)],
        ];
        for (const [arch, match] of cases) {
          const got = outcome(call(compiled, arch, 'getsid', [0, 0, arg]));
          assert.equal(got, match ? 'ERRNO 77' : 'ALLOW', `${arch}: ${arg} ${op} ${value}`);
          checked++;
        }
      }
    }
  }
  assert.ok(checked > 1000);
});

test('MASKED_EQ compares (arg & value) with valueTwo, one 32-bit half at a time', () => {
  const masks: [bigint, bigint][] = [
    [0x7e020000n, 0n], // Docker's clone rule: no namespace flag set
    [0xffn, 0x42n],
    [0xff00000000n, 0x4200000000n], // high half only
    [0xff000000ffn, 0x1200000034n], // both halves
    [0n, 0n], // always true
    [0n, 1n], // never true
    [0xf0n, 0x0fn], // never true: expected bits outside the mask
    [0xffffffffn, 0x12345678n],
  ];
  const args = [0n, 0x42n, 0x142n, 0x4200000000n, 0x4200000042n, 0x1200000034n, 0x12345678n, 0x10000n, MAX];
  for (const [value, valueTwo] of masks) {
    const compiled = compile({
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
      syscalls: [
        rule(['getsid'], {
          errnoRet: 78,
          args: [{ index: 0, value: Number(value), valueTwo: Number(valueTwo), op: 'SCMP_CMP_MASKED_EQ' }],
        }),
      ],
    });
    for (const arg of args) {
      const want = holds('SCMP_CMP_MASKED_EQ', arg, value, valueTwo) ? 'ERRNO 78' : 'ALLOW';
      assert.equal(
        outcome(call(compiled, 'x86_64', 'getsid', [arg])),
        want,
        `${arg} & ${value} == ${valueTwo}`,
      );
      const low = (v: bigint): bigint => v & 0xffffffffn;
      const want32 = holds('SCMP_CMP_MASKED_EQ', low(arg), low(value), low(valueTwo)) ? 'ERRNO 78' : 'ALLOW';
      assert.equal(
        outcome(call(compiled, 'x86', 'getsid', [arg])),
        want32,
        `x86: ${arg} & ${value} == ${valueTwo}`,
      );
    }
  }
});

test('conditions on different arguments are ANDed', () => {
  const compiled = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      rule(['socket'], {
        errnoRet: 97,
        args: [
          { index: 0, value: 2, op: 'SCMP_CMP_EQ' },
          { index: 1, value: 0xf, valueTwo: 2, op: 'SCMP_CMP_MASKED_EQ' },
          { index: 2, value: 17, op: 'SCMP_CMP_LE' },
        ],
      }),
    ],
  });
  assert.equal(outcome(call(compiled, 'x86_64', 'socket', [2, 2, 17])), 'ERRNO 97');
  assert.equal(outcome(call(compiled, 'x86_64', 'socket', [2, 0x80802, 0])), 'ERRNO 97');
  assert.equal(outcome(call(compiled, 'x86_64', 'socket', [2, 1, 0])), 'ALLOW');
  assert.equal(outcome(call(compiled, 'x86_64', 'socket', [10, 2, 0])), 'ALLOW');
  assert.equal(outcome(call(compiled, 'x86_64', 'socket', [2, 2, 18])), 'ALLOW');
  assert.equal(outcome(call(compiled, 'x86_64', 'socket', [0x100000002n, 2, 0])), 'ALLOW');
});

test('an entry comparing one argument twice matches either condition, as runc does', () => {
  const compiled = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      rule(['getsid'], {
        errnoRet: 79,
        args: [
          { index: 0, value: 1, op: 'SCMP_CMP_EQ' },
          { index: 0, value: 3, op: 'SCMP_CMP_EQ' },
        ],
      }),
    ],
  });
  assert.equal(outcome(call(compiled, 'x86_64', 'getsid', [1])), 'ERRNO 79');
  assert.equal(outcome(call(compiled, 'x86_64', 'getsid', [3])), 'ERRNO 79');
  assert.equal(outcome(call(compiled, 'x86_64', 'getsid', [2])), 'ALLOW');
});

test('conditional rules for one call are tried in profile order; the first match decides', () => {
  const compiled = compile({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      rule(['getsid'], { errnoRet: 10, args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] }),
      { names: ['getsid'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 5, op: 'SCMP_CMP_LE' }] },
      rule(['getsid'], { errnoRet: 30, args: [{ index: 1, value: 0, op: 'SCMP_CMP_EQ' }] }),
    ],
  });
  assert.equal(outcome(call(compiled, 'x86_64', 'getsid', [1, 0])), 'ERRNO 10');
  assert.equal(outcome(call(compiled, 'x86_64', 'getsid', [3, 0])), 'ALLOW');
  assert.equal(outcome(call(compiled, 'x86_64', 'getsid', [9, 0])), 'ERRNO 30');
  assert.equal(outcome(call(compiled, 'x86_64', 'getsid', [9, 1])), 'ERRNO 1');
});

test('an unconditional rule decides its call whatever conditional rules say (libseccomp)', () => {
  const compiled = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      rule(['getsid'], { errnoRet: 10, args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] }),
      rule(['getsid'], { errnoRet: 20 }),
      rule(['getsid'], { errnoRet: 30 }),
    ],
  });
  assert.equal(outcome(call(compiled, 'x86_64', 'getsid', [1])), 'ERRNO 20');
  assert.equal(outcome(call(compiled, 'x86_64', 'getsid', [2])), 'ERRNO 20');
});

test('rules whose action is the default action are skipped, as runc does', () => {
  const compiled = compile({
    defaultAction: 'SCMP_ACT_ERRNO',
    syscalls: [
      rule(['write'], { args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }] }),
      { names: ['write'], action: 'SCMP_ACT_ALLOW', args: [{ index: 2, value: 0, op: 'SCMP_CMP_EQ' }] },
    ],
  });
  assert.equal(outcome(call(compiled, 'x86_64', 'write', [1, 0, 0])), 'ALLOW');
  assert.equal(outcome(call(compiled, 'x86_64', 'write', [1, 0, 5])), 'ERRNO 1');
});

test('the audit arch is checked first: unlisted architectures get KILL_THREAD', () => {
  const compiled = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'],
    syscalls: [],
  });
  assert.equal(outcome(call(compiled, 'x86_64', 'read')), 'ALLOW');
  assert.equal(outcome(call(compiled, 'x86', 'read')), 'KILL_THREAD');
  assert.equal(outcome(call(compiled, 'x32', 'read')), 'KILL_THREAD');
  const aarch64 = runFilter(compiled.program, { nr: 63, arch: AUDIT_ARCH_AARCH64 });
  assert.equal(aarch64.action, 'KILL_THREAD', 'other CPU families are accepted in the list but never match');
});

test('the native x86_64 ABI is always filtered, also when architectures does not list it', () => {
  const compiled = compile({
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86'],
    syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }],
  });
  assert.equal(outcome(call(compiled, 'x86_64', 'read')), 'ALLOW');
  assert.equal(outcome(call(compiled, 'x86', 'read')), 'ALLOW');
  assert.equal(outcome(call(compiled, 'x86_64', 'write')), 'ERRNO 1');
  assert.equal(outcome(call(compiled, 'x32', 'read')), 'KILL_THREAD');
});

test('x32 calls are told apart from x86_64 calls by bit 30 and need SCMP_ARCH_X32', () => {
  const profile = (architectures: string[]): Seccomp => ({
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures,
    syscalls: [
      { names: ['read', 'rt_sigaction'], action: 'SCMP_ACT_ALLOW' },
      rule(['preadv2'], { errnoRet: 22, args: [{ index: 5, value: 0x100000000, op: 'SCMP_CMP_GE' }] }),
    ],
  });
  const without = compile(profile(['SCMP_ARCH_X86_64']));
  assert.equal(outcome(call(without, 'x86_64', 'read')), 'ALLOW');
  assert.equal(outcome(call(without, 'x32', 'read')), 'KILL_THREAD', 'x32 read is not x86_64 read');
  assert.equal(outcome(call(without, 'x86_64', 0x40000000 | 13)), 'KILL_THREAD');
  assert.equal(outcome(call(without, 'x86_64', 0xffffffff)), 'KILL_THREAD');

  const withX32 = compile(profile(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32']));
  assert.equal(outcome(call(withX32, 'x32', 'read')), 'ALLOW');
  assert.equal(nr('x32', 'rt_sigaction'), 0x40000000 + 512);
  assert.equal(outcome(call(withX32, 'x32', 'rt_sigaction')), 'ALLOW');
  assert.equal(
    outcome(call(withX32, 'x32', 0x40000000 | 13)),
    'ERRNO 1',
    '64-bit-only number under the x32 bit',
  );
  assert.equal(outcome(call(withX32, 'x86_64', 'rt_sigaction')), 'ALLOW');
  assert.equal(outcome(call(withX32, 'x32', 'preadv2', [0, 0, 0, 0, 0, 0x100000000n])), 'ERRNO 22');
  assert.equal(outcome(call(withX32, 'x32', 'preadv2', [0, 0, 0, 0, 0, 0xffffffffn])), 'ERRNO 1');
  assert.equal(outcome(call(withX32, 'x86_64', 'preadv2', [0, 0, 0, 0, 0, 0x100000000n])), 'ERRNO 22');
});

test('names are resolved per architecture; a name missing on one is ignored there', () => {
  const compiled = compile({
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
    syscalls: [
      rule(['chown32', 'arch_prctl', 'socket', 's390_runtime_instr'], { errnoRet: 81 }),
      rule(['uretprobe'], { errnoRet: 82 }),
    ],
  });
  assert.equal(outcome(call(compiled, 'x86', 'chown32')), 'ERRNO 81');
  assert.equal(nr('x86', 'chown32'), 212);
  assert.equal(outcome(call(compiled, 'x86_64', 212)), 'ALLOW', 'x86_64 212 is lookup_dcookie');
  assert.equal(outcome(call(compiled, 'x86_64', 'arch_prctl')), 'ERRNO 81');
  assert.equal(outcome(call(compiled, 'x86', 172)), 'ALLOW', 'i386 172 is prctl, not arch_prctl');
  assert.equal(outcome(call(compiled, 'x86_64', 'socket')), 'ERRNO 81');
  assert.equal(outcome(call(compiled, 'x86', 'socket')), 'ERRNO 81');
  assert.equal(outcome(call(compiled, 'x86_64', 'uretprobe')), 'ERRNO 82');
});

test('calls newer than any the profile names get ENOSYS on the listed architectures (runc)', () => {
  const syscalls: SeccompSyscall[] = [
    { names: ['read', 'clone3'], action: 'SCMP_ACT_ALLOW' },
    rule(['getsid'], { errnoRet: 5 }),
  ];
  const listed = compile({
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
    syscalls,
  });
  assert.equal(outcome(call(listed, 'x86_64', 'clone3')), 'ALLOW');
  assert.equal(outcome(call(listed, 'x86_64', 'close_range')), 'ERRNO 38', '436 > clone3 (435)');
  assert.equal(outcome(call(listed, 'x86_64', 'mseal')), 'ERRNO 38');
  assert.equal(outcome(call(listed, 'x86_64', 0x3fffffff)), 'ERRNO 38');
  assert.equal(outcome(call(listed, 'x86_64', 'pidfd_open')), 'ERRNO 1', '434 < 435 keeps the default');
  assert.equal(outcome(call(listed, 'x86', 'mseal')), 'ERRNO 38');
  assert.equal(outcome(call(listed, 'x86', 0xfffffffe)), 'ERRNO 38');

  const unlisted = compile({ defaultAction: 'SCMP_ACT_ERRNO', syscalls });
  assert.equal(outcome(call(unlisted, 'x86_64', 'mseal')), 'ERRNO 1');

  const permissive = compile({
    defaultAction: 'SCMP_ACT_LOG',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls,
  });
  assert.equal(outcome(call(permissive, 'x86_64', 'mseal')), 'LOG');

  const killing = compile({
    defaultAction: 'SCMP_ACT_KILL_PROCESS',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls,
  });
  assert.equal(outcome(call(killing, 'x86_64', 'mseal')), 'ERRNO 38');
  assert.equal(outcome(call(killing, 'x86_64', 'pidfd_open')), 'KILL_PROCESS');
});

test('long programs use trampolines for jumps beyond 255 instructions', () => {
  const names = [...ARCHES.x86_64.syscalls.keys()]
    .filter((name) => !['read', 'write'].includes(name))
    .slice(0, 250);
  const syscalls: SeccompSyscall[] = names.map((name, i) =>
    rule([name], {
      errnoRet: 1 + (i % 4000),
      args: [
        { index: 0, value: i, op: 'SCMP_CMP_EQ' },
        { index: 1, value: 0x100000000 + i, op: 'SCMP_CMP_GT' },
      ],
    }),
  );
  syscalls.push({ names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' });
  const compiled = compile({
    defaultAction: 'SCMP_ACT_KILL_PROCESS',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls,
  });
  assert.ok(compiled.instructions > 2500, `${compiled.instructions} instructions`);
  names.forEach((name, i) => {
    const n = nr('x86_64', name);
    assert.equal(
      outcome(call(compiled, 'x86_64', n, [i, 0x100000001n + BigInt(i)])),
      `ERRNO ${1 + (i % 4000)}`,
      name,
    );
    assert.equal(outcome(call(compiled, 'x86_64', n, [i, 0x100000000n + BigInt(i)])), 'KILL_PROCESS', name);
    assert.equal(outcome(call(compiled, 'x86_64', n, [i + 1, 0x200000000n])), 'KILL_PROCESS', name);
  });
  assert.equal(outcome(call(compiled, 'x86_64', 'read')), 'ALLOW');
  assert.equal(outcome(call(compiled, 'x86_64', 'write')), 'ALLOW');
});

test('flags: the listed ones, NEW_LISTENER for NOTIFY rules, TSYNC_ESRCH with both', () => {
  const base: Seccomp = { defaultAction: 'SCMP_ACT_ALLOW' };
  assert.equal(compile(base).flags, 0);
  assert.equal(compile({ ...base, flags: ['SECCOMP_FILTER_FLAG_LOG'] }).flags, 2);
  assert.equal(
    compile({ ...base, flags: ['SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_TSYNC'] }).flags,
    5,
  );
  const notify: Seccomp = { ...base, syscalls: [{ names: ['mount'], action: 'SCMP_ACT_NOTIFY' }] };
  assert.equal(compile(notify).flags, 8);
  assert.equal(compile({ ...notify, flags: ['SECCOMP_FILTER_FLAG_TSYNC'] }).flags, 1 | 8 | 16);
  assert.equal(compile({ ...notify, flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] }).flags, 8 | 32);
});

function rejects(profile: unknown, message: string): void {
  assert.throws(
    () => compileSeccomp(profile as Seccomp),
    (err: unknown) => {
      assert.ok(err instanceof BerthError, String(err));
      assert.equal(err.kind, 'invalid-argument');
      assert.equal(err.message, message);
      return true;
    },
  );
}

test('invalid profiles are refused with a message naming the field', () => {
  const ok = { names: ['read'], action: 'SCMP_ACT_ALLOW' };
  rejects(
    { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [ok, { names: ['read', 'foo'], action: 'SCMP_ACT_ALLOW' }] },
    'linux.seccomp.syscalls[1].names[1]: unknown syscall "foo" on x86_64, x86 and x32',
  );
  rejects({ defaultAction: 'SCMP_ACT_DENY' }, 'linux.seccomp.defaultAction: unknown action "SCMP_ACT_DENY"');
  rejects(
    { defaultAction: 'SCMP_ACT_NOTIFY' },
    'linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action',
  );
  rejects(
    { defaultAction: 'SCMP_ACT_ALLOW', defaultErrnoRet: 1 },
    'linux.seccomp.defaultErrnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno',
  );
  rejects(
    { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_KILLALL' }] },
    'linux.seccomp.syscalls[0].action: unknown action "SCMP_ACT_KILLALL"',
  );
  rejects(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', errnoRet: 4096 }],
    },
    'linux.seccomp.syscalls[0].errnoRet: must be an integer from 0 to 4095, got 4096',
  );
  rejects(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_TRACE', errnoRet: 65536 }],
    },
    'linux.seccomp.syscalls[0].errnoRet: must be an integer from 0 to 65535, got 65536',
  );
  rejects(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_KILL', errnoRet: 1 }],
    },
    'linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno',
  );
  rejects(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ ...rule(['read']), args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }],
    },
    'linux.seccomp.syscalls[0].args[0].index: must be an argument index from 0 to 5, got 6',
  );
  rejects(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        {
          ...rule(['read']),
          args: [
            { index: 0, value: 0, op: 'SCMP_CMP_EQ' },
            { index: 1, value: 0 },
          ],
        },
      ],
    },
    'linux.seccomp.syscalls[0].args[1].op: unknown operator undefined',
  );
  rejects(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ ...rule(['read']), args: [{ index: 0, value: -1, op: 'SCMP_CMP_EQ' }] }],
    },
    'linux.seccomp.syscalls[0].args[0].value: must be an integer from 0 to 2^64-1, got -1',
  );
  rejects(
    {
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [
        { ...rule(['read']), args: [{ index: 0, value: 1, valueTwo: 0.5, op: 'SCMP_CMP_MASKED_EQ' }] },
      ],
    },
    'linux.seccomp.syscalls[0].args[0].valueTwo: must be an integer from 0 to 2^64-1, got 0.5',
  );
  rejects(
    { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64', 'amd64'] },
    'linux.seccomp.architectures[1]: unknown architecture "amd64"',
  );
  rejects(
    { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_NEW_LISTENER'] },
    'linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"',
  );
  rejects(
    { defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] },
    'linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a rule with SCMP_ACT_NOTIFY',
  );
  rejects(
    { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] },
    'linux.seccomp.syscalls[0].names: must list at least one system call',
  );
});

test('a profile too large for the kernel is refused', () => {
  const conditions = [0, 1, 2, 3, 4, 5].map((index) => ({
    index,
    value: 0x100000001 + index,
    op: 'SCMP_CMP_LE' as const,
  }));
  const syscalls = [...ARCHES.x86_64.syscalls.keys()].map((name) => rule([name], { args: conditions }));
  assert.throws(
    () => compileSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls }),
    /^BerthError: linux\.seccomp: the profile compiles to \d+ BPF instructions, more than the kernel's limit of 4096$/,
  );
});
