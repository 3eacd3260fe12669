/**
 * Loads compiled filters into real processes (no berth-shim): a python3 script sets no_new_privs,
 * calls seccomp(SECCOMP_SET_MODE_FILTER) with the program and flags, then makes raw system calls —
 * 64-bit ones through syscall(3), 32-bit ones through `int 0x80` — and reports each result. Every
 * result must be what the BPF interpreter predicts for the same call.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ARCHES } from '../../src/linux/seccomp/arches.js';
import { compileSeccomp, type CompiledSeccomp } from '../../src/linux/seccomp/compile.js';
import { defaultSeccompProfile } from '../../src/oci/default-seccomp.js';
import type { Seccomp } from '../../src/oci/runtime-spec.js';
import { runFilter } from '../helpers/bpf-interpreter.js';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';

const SCRIPT = `
import ctypes, json, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.syscall.argtypes = [ctypes.c_long] + [ctypes.c_ulong] * 6
libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4

class SockFprog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]

program = open(sys.argv[1], 'rb').read()
flags = int(sys.argv[2])
probes = json.loads(sys.argv[3])
insns = ctypes.create_string_buffer(program, len(program))
fprog = SockFprog(len(program) // 8, ctypes.cast(insns, ctypes.c_void_p))

# i386 system calls from this 64-bit process: push rbx; mov eax, ecx; mov ebx, edi; mov ecx, esi;
# int 0x80; pop rbx; ret. Arguments 1-3 come in rdi, rsi, rdx (edx is used as is), the number in rcx.
page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(bytes([0x53, 0x89, 0xc8, 0x89, 0xfb, 0x89, 0xf1, 0xcd, 0x80, 0x5b, 0xc3]))
int80 = ctypes.CFUNCTYPE(ctypes.c_long, *[ctypes.c_ulong] * 4)(ctypes.addressof(ctypes.c_char.from_buffer(page)))

def fail(what):
    sys.stderr.write(what + ': ' + os.strerror(ctypes.get_errno()) + '\\n')
    sys.exit(2)

if libc.prctl(4, 0, 0, 0, 0) != 0:  # PR_SET_DUMPABLE 0: no core file when the filter kills
    fail('PR_SET_DUMPABLE')
if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    fail('PR_SET_NO_NEW_PRIVS')
listener = libc.syscall(317, 1, flags, ctypes.addressof(fprog), 0, 0, 0)  # seccomp(SET_MODE_FILTER)
if listener < 0:
    fail('seccomp')
if flags & 8:  # NEW_LISTENER: without a listener, notified calls fail with ENOSYS
    os.close(listener)

for probe in probes:
    ctypes.set_errno(0)
    kind = probe['kind']
    if kind == 'x86_64':
        args = [int(a) for a in probe['args']] + [0] * (6 - len(probe['args']))
        ret = libc.syscall(probe['nr'], *args)
        result = {'ret': ret, 'errno': ctypes.get_errno() if ret == -1 else 0}
    elif kind == 'x86':
        args = [int(a) for a in probe['args']] + [0] * (3 - len(probe['args']))
        ret = int80(*args, probe['nr']) & 0xffffffff
        ret = ret - (1 << 32) if ret >= 1 << 31 else ret
        result = {'ret': ret, 'errno': -ret if -4096 < ret < 0 else 0}
    elif kind == 'fork':
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        result = {'ret': os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), 'errno': 0}
    else:
        try:
            os.mkdir(probe['path'])
            result = {'ret': 0, 'errno': 0}
        except OSError as e:
            result = {'ret': -1, 'errno': e.errno}
    sys.stdout.write(json.dumps(result) + '\\n')
    sys.stdout.flush()
`;

type Probe =
  | { kind: 'x86_64' | 'x86'; name: string; args?: (number | bigint)[] }
  | { kind: 'fork' }
  | { kind: 'mkdir'; path: string };

interface Result {
  ret: number;
  errno: number;
}

interface Run {
  results: Result[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

const TIMEOUT_MS = 30_000;

async function runProbes(sandbox: Sandbox, compiled: CompiledSeccomp, probes: Probe[]): Promise<Run> {
  const programPath = join(sandbox.root, 'filter.bpf');
  await writeFile(programPath, compiled.program);
  const wire = probes.map((probe) => {
    if (probe.kind !== 'x86_64' && probe.kind !== 'x86') return probe;
    return { kind: probe.kind, nr: number(probe), args: (probe.args ?? []).map(String) };
  });
  const child = spawn('python3', ['-c', SCRIPT, programPath, String(compiled.flags), JSON.stringify(wire)], {
    cwd: sandbox.root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) sandbox.trackProcess(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, s) => resolve([c, s]));
  }).finally(() => clearTimeout(timer));
  const results = stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Result);
  return { results, code, signal, stderr };
}

function number(probe: { kind: 'x86_64' | 'x86'; name: string }): number {
  const nr = ARCHES[probe.kind].syscalls.get(probe.name);
  if (nr === undefined) throw new Error(`${probe.name} is not a syscall on ${probe.kind}`);
  return nr;
}

const label = (probe: Probe): string =>
  probe.kind === 'x86_64' || probe.kind === 'x86'
    ? `${probe.kind} ${probe.name}(${(probe.args ?? []).join(', ')})`
    : probe.kind;

/** glibc's fork(): clone(CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, ...). */
const FORK_FLAGS = 0x01200011;

/** What the interpreter says the filter does with a probe; python's os.mkdir calls mkdir(2). */
function predicted(compiled: CompiledSeccomp, probe: Probe): { action: string; errno: number } {
  const call =
    probe.kind === 'fork'
      ? { nr: number({ kind: 'x86_64', name: 'clone' }), arch: ARCHES.x86_64.auditArch, args: [FORK_FLAGS] }
      : probe.kind === 'mkdir'
        ? { nr: number({ kind: 'x86_64', name: 'mkdir' }), arch: ARCHES.x86_64.auditArch }
        : { nr: number(probe), arch: ARCHES[probe.kind].auditArch, args: probe.args ?? [] };
  const result = runFilter(compiled.program, call);
  return { action: result.action, errno: result.data };
}

/**
 * Runs the probes and checks each result against the interpreter: ERRNO(e) must be observed as errno
 * e, USER_NOTIF without a listener as ENOSYS, and an allowed call must not fail with any errno the
 * profile returns (`filterErrnos`).
 */
async function assertKernelAgrees(
  sandbox: Sandbox,
  compiled: CompiledSeccomp,
  probes: Probe[],
  filterErrnos: number[],
): Promise<Result[]> {
  const run = await runProbes(sandbox, compiled, probes);
  assert.equal(run.code, 0, `python3 exited with ${run.code ?? run.signal}: ${run.stderr}`);
  assert.equal(run.results.length, probes.length);
  probes.forEach((probe, i) => {
    const got = run.results[i] as Result;
    const want = predicted(compiled, probe);
    if (want.action === 'ERRNO' || want.action === 'USER_NOTIF') {
      const errno = want.action === 'ERRNO' ? want.errno : 38;
      assert.equal(got.errno, errno, `${label(probe)}: expected errno ${errno}, got ${JSON.stringify(got)}`);
    } else {
      assert.equal(want.action, 'ALLOW', label(probe));
      assert.ok(
        !filterErrnos.includes(got.errno),
        `${label(probe)} should pass the filter: ${JSON.stringify(got)}`,
      );
    }
  });
  return run.results;
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_VSOCK = 40;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK_CLOEXEC = 0x80800;

test('the kernel agrees with the interpreter on operators, arguments, errnos and architectures', async (t) => {
  const sandbox = await createSandbox(t);
  const profile: Seccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
    flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
    syscalls: [
      { names: ['getppid'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      {
        names: ['socket'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 97,
        args: [{ index: 0, value: AF_INET6, op: 'SCMP_CMP_EQ' }],
      },
      {
        names: ['socket'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 93,
        args: [
          { index: 0, value: AF_INET, op: 'SCMP_CMP_EQ' },
          { index: 1, value: 0xf, valueTwo: SOCK_DGRAM, op: 'SCMP_CMP_MASKED_EQ' },
        ],
      },
      {
        names: ['getsid'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 77,
        args: [{ index: 0, value: 0x100000000, op: 'SCMP_CMP_GT' }],
      },
      {
        names: ['getpgid'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 78,
        args: [{ index: 0, value: 0xff00000000, valueTwo: 0x4200000000, op: 'SCMP_CMP_MASKED_EQ' }],
      },
      {
        names: ['sched_get_priority_max'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 80,
        args: [{ index: 0, value: 0x100000007, op: 'SCMP_CMP_EQ' }],
      },
      {
        names: ['sched_get_priority_min'],
        action: 'SCMP_ACT_ERRNO',
        errnoRet: 81,
        args: [{ index: 0, value: 0xffffffff, op: 'SCMP_CMP_LE' }],
      },
      { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 84 },
      { names: ['getpriority'], action: 'SCMP_ACT_NOTIFY' },
    ],
  };
  const compiled = compileSeccomp(profile);
  assert.equal(compiled.flags, 2 | 4 | 8);
  const denied = join(sandbox.root, 'denied');
  const probes: Probe[] = [
    { kind: 'x86_64', name: 'getppid' },
    { kind: 'x86', name: 'getppid' },
    { kind: 'x86_64', name: 'getpid' },
    { kind: 'x86', name: 'getpid' },
    { kind: 'x86_64', name: 'socket', args: [AF_INET6, SOCK_STREAM, 0] },
    { kind: 'x86_64', name: 'socket', args: [AF_INET, SOCK_DGRAM, 0] },
    { kind: 'x86_64', name: 'socket', args: [AF_INET, SOCK_DGRAM | SOCK_NONBLOCK_CLOEXEC, 0] },
    { kind: 'x86_64', name: 'socket', args: [AF_INET, SOCK_STREAM, 0] },
    { kind: 'x86_64', name: 'socket', args: [AF_UNIX, SOCK_DGRAM, 0] },
    { kind: 'x86', name: 'socket', args: [AF_INET6, SOCK_STREAM, 0] },
    { kind: 'x86_64', name: 'getsid', args: [0x100000001n] },
    { kind: 'x86_64', name: 'getsid', args: [0x100000000n] },
    { kind: 'x86_64', name: 'getsid', args: [0x200000000n] },
    { kind: 'x86_64', name: 'getsid', args: [0xffffffffn] },
    { kind: 'x86_64', name: 'getsid', args: [0] },
    { kind: 'x86_64', name: 'getpgid', args: [0x4200000000n] },
    { kind: 'x86_64', name: 'getpgid', args: [0x4300000000n] },
    { kind: 'x86_64', name: 'getpgid', args: [0x42] },
    { kind: 'x86_64', name: 'sched_get_priority_max', args: [7] },
    { kind: 'x86_64', name: 'sched_get_priority_max', args: [0x100000007n] },
    { kind: 'x86', name: 'sched_get_priority_max', args: [7] },
    { kind: 'x86_64', name: 'sched_get_priority_min', args: [0] },
    { kind: 'x86_64', name: 'sched_get_priority_min', args: [0x100000000n] },
    { kind: 'x86_64', name: 'getpriority', args: [0, 0] },
    { kind: 'mkdir', path: denied },
  ];
  const results = await assertKernelAgrees(sandbox, compiled, probes, [38, 97, 93, 77, 78, 80, 81, 84]);
  assert.equal(results[probes.length - 1]?.errno, 84, 'mkdir through python os.mkdir');
  assert.equal(await exists(denied), false);
  // The interpreter and the kernel could agree on a wrong program: check the semantics too.
  const errnoOf = (kind: string, name: string, args: string): number | undefined =>
    results[probes.findIndex((p) => label(p) === `${kind} ${name}(${args})`)]?.errno;
  assert.equal(errnoOf('x86_64', 'getsid', '4294967297'), 77, 'GT decided by the low half');
  assert.notEqual(errnoOf('x86_64', 'getsid', '4294967296'), 77, 'not greater than itself');
  assert.equal(errnoOf('x86_64', 'getsid', '8589934592'), 77, 'GT decided by the high half');
  assert.notEqual(errnoOf('x86_64', 'getsid', '4294967295'), 77);
  assert.equal(errnoOf('x86_64', 'getpgid', '283467841536'), 78, 'MASKED_EQ on the high half');
  assert.notEqual(errnoOf('x86_64', 'sched_get_priority_max', '7'), 80, 'the high half differs');
  assert.equal(errnoOf('x86_64', 'sched_get_priority_max', '4294967303'), 80);
  assert.equal(errnoOf('x86', 'sched_get_priority_max', '7'), 80, 'i386 compares low halves');
  assert.equal(errnoOf('x86_64', 'socket', '2, 526338, 0'), 93, 'MASKED_EQ ignores the flag bits');
  assert.equal(errnoOf('x86_64', 'getpriority', '0, 0'), 38, 'NOTIFY without a listener is ENOSYS');
  assert.ok((results[2]?.ret ?? 0) > 0, 'getpid works');
  assert.equal(results[3]?.ret, results[2]?.ret, 'int 0x80 getpid returns the same pid');
});

test('the filter kills on KILL_PROCESS and for an architecture it does not list', async (t) => {
  const sandbox = await createSandbox(t);
  const only64 = compileSeccomp({
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_KILL_PROCESS' }],
  });
  const killed = await runProbes(sandbox, only64, [
    { kind: 'x86_64', name: 'getpid' },
    { kind: 'x86_64', name: 'getppid' },
    { kind: 'x86_64', name: 'getpid' },
  ]);
  assert.equal(killed.signal, 'SIGSYS', killed.stderr);
  assert.equal(killed.results.length, 1, 'killed at the second call');

  const badArch = await runProbes(sandbox, only64, [
    { kind: 'x86_64', name: 'getpid' },
    { kind: 'x86', name: 'getpid' },
  ]);
  assert.equal(badArch.signal, 'SIGSYS', 'an i386 call is killed when SCMP_ARCH_X86 is not listed');
  assert.equal(badArch.results.length, 1);
  assert.equal(predicted(only64, { kind: 'x86', name: 'getpid' }).action, 'KILL_THREAD');

  const both = compileSeccomp({
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
  });
  await assertKernelAgrees(sandbox, both, [{ kind: 'x86', name: 'getpid' }], []);
});

const DOCKER_CAPS = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

test("Docker's default profile without CAP_SYS_ADMIN denies namespaces and mounts in the kernel", async (t) => {
  const sandbox = await createSandbox(t);
  const compiled = compileSeccomp(defaultSeccompProfile(DOCKER_CAPS));
  const made = join(sandbox.root, 'made');
  const probes: Probe[] = [
    { kind: 'x86_64', name: 'unshare', args: [0] },
    { kind: 'x86_64', name: 'mount', args: [0, 0, 0, 0, 0] },
    { kind: 'x86_64', name: 'umount2', args: [0, 0] },
    { kind: 'x86_64', name: 'setns', args: [-1 >>> 0, 0] },
    { kind: 'x86_64', name: 'clone3', args: [0, 0] },
    { kind: 'x86_64', name: 'keyctl', args: [0, 0] },
    { kind: 'x86_64', name: 'io_uring_setup', args: [0, 0] },
    { kind: 'x86_64', name: 'socket', args: [AF_VSOCK, SOCK_STREAM, 0] },
    { kind: 'x86_64', name: 'socket', args: [AF_UNIX, SOCK_STREAM, 0] },
    { kind: 'x86_64', name: 'personality', args: [0xffffffff] },
    { kind: 'x86_64', name: 'personality', args: [0x400000] },
    { kind: 'x86_64', name: 'file_getattr', args: [0, 0, 0, 0, 0] },
    { kind: 'x86_64', name: 'getcwd', args: [0, 0] },
    { kind: 'x86', name: 'unshare', args: [0] },
    { kind: 'x86', name: 'getpid' },
    { kind: 'fork' },
    { kind: 'mkdir', path: made },
  ];
  const results = await assertKernelAgrees(sandbox, compiled, probes, [1, 38]);
  assert.equal(results[0]?.errno, 1, 'unshare is EPERM');
  assert.equal(results[4]?.errno, 38, 'clone3 is ENOSYS');
  assert.ok((results[8]?.ret ?? -1) >= 0, 'an AF_UNIX socket is created');
  assert.equal(results[15]?.ret, 7, 'fork (clone without namespace flags) works');
  assert.equal(await exists(made), true, 'os.mkdir works');
});

test("Docker's default profile with CAP_SYS_ADMIN lets unshare, mount and clone3 through", async (t) => {
  const sandbox = await createSandbox(t);
  const compiled = compileSeccomp(defaultSeccompProfile([...DOCKER_CAPS, 'CAP_SYS_ADMIN']));
  const probes: Probe[] = [
    { kind: 'x86_64', name: 'unshare', args: [0] },
    { kind: 'x86_64', name: 'mount', args: [0, 0, 0, 0, 0] },
    { kind: 'x86_64', name: 'clone3', args: [0, 0] },
    { kind: 'x86_64', name: 'keyctl', args: [0, 0] },
  ];
  const results = await assertKernelAgrees(sandbox, compiled, probes, [1, 38]);
  assert.equal(results[0]?.ret, 0, 'unshare(0) succeeds');
  assert.equal(results[3]?.errno, 1, 'keyctl stays denied');
});
