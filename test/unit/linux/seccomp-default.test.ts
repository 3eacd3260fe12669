import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ARCHES, type ArchName } from '../../../src/linux/seccomp/arches.js';
import { compileSeccomp, type CompiledSeccomp } from '../../../src/linux/seccomp/compile.js';
import { defaultSeccompProfile } from '../../../src/oci/default-seccomp.js';
import { runFilter, type FilterResult } from '../../helpers/bpf-interpreter.js';

/** Docker's default capability set. */
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

const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWNET = 0x40000000;
/** What glibc's fork() passes: CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD. */
const FORK_FLAGS = 0x01200011;

const compiled = (caps: string[]): CompiledSeccomp => compileSeccomp(defaultSeccompProfile(caps));

function call(
  program: CompiledSeccomp,
  name: string,
  args: (bigint | number)[] = [],
  arch: ArchName = 'x86_64',
): FilterResult {
  const nr = ARCHES[arch].syscalls.get(name);
  if (nr === undefined) throw new Error(`${name} is not a syscall on ${arch}`);
  return runFilter(program.program, { nr, arch: ARCHES[arch].auditArch, args });
}

const outcome = (r: FilterResult): string => (r.action === 'ERRNO' ? `ERRNO ${r.data}` : r.action);

test('the default profile has Docker shape: ERRNO(EPERM) by default, x86_64 with x86 and x32', () => {
  const profile = defaultSeccompProfile(DOCKER_CAPS);
  assert.equal(profile.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(profile.defaultErrnoRet, 1);
  assert.deepEqual(profile.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.equal(compileSeccomp(JSON.parse(JSON.stringify(profile))).flags, 0, 'the JSON form compiles');
});

test('with Docker default capabilities: everyday calls allowed, dangerous ones EPERM', () => {
  const program = compiled(DOCKER_CAPS);
  for (const name of [
    'read',
    'write',
    'exit',
    'exit_group',
    'futex',
    'epoll_wait',
    'openat',
    'mmap',
    'execve',
    'arch_prctl',
    'chroot',
    'ptrace',
    'name_to_handle_at',
    'fchmodat2',
    'mseal',
    'statmount',
    'getxattrat',
  ]) {
    assert.equal(outcome(call(program, name)), 'ALLOW', name);
  }
  for (const name of [
    'mount',
    'umount2',
    'unshare',
    'setns',
    'reboot',
    'kexec_load',
    'kexec_file_load',
    'keyctl',
    'add_key',
    'request_key',
    'bpf',
    'perf_event_open',
    'init_module',
    'finit_module',
    'delete_module',
    'swapon',
    'acct',
    'settimeofday',
    'clock_settime',
    'iopl',
    'ioperm',
    'open_by_handle_at',
    'userfaultfd',
    'io_uring_setup',
    'io_uring_enter',
    'pivot_root',
    'syslog',
    'vhangup',
    'mbind',
    'kcmp',
    'pidfd_getfd',
    'lsm_set_self_attr',
    'fsopen',
  ]) {
    assert.equal(outcome(call(program, name)), 'ERRNO 1', name);
  }
});

test('clone without namespace flags only, clone3 gives ENOSYS, socket anything but AF_VSOCK', () => {
  const program = compiled(DOCKER_CAPS);
  assert.equal(outcome(call(program, 'clone', [FORK_FLAGS])), 'ALLOW');
  assert.equal(outcome(call(program, 'clone', [FORK_FLAGS | CLONE_NEWUSER])), 'ERRNO 1');
  assert.equal(outcome(call(program, 'clone', [CLONE_NEWNET])), 'ERRNO 1');
  assert.equal(outcome(call(program, 'clone3', [0, 88])), 'ERRNO 38');
  assert.equal(outcome(call(program, 'socket', [2, 1, 0])), 'ALLOW');
  assert.equal(outcome(call(program, 'socket', [1, 1, 0])), 'ALLOW');
  assert.equal(outcome(call(program, 'socket', [40, 1, 0])), 'ERRNO 1');
  for (const persona of [0, 8, 0x20000, 0x20008, 0xffffffff]) {
    assert.equal(outcome(call(program, 'personality', [persona])), 'ALLOW', `personality ${persona}`);
  }
  assert.equal(outcome(call(program, 'personality', [0x400000])), 'ERRNO 1', 'READ_IMPLIES_EXEC');
  assert.equal(outcome(call(program, 'personality', [0x1ffffffffn])), 'ERRNO 1');
});

test('32-bit and x32 processes are filtered with their own numbers', () => {
  const program = compiled(DOCKER_CAPS);
  assert.equal(outcome(call(program, 'read', [], 'x86')), 'ALLOW');
  assert.equal(outcome(call(program, 'socketcall', [], 'x86')), 'ALLOW');
  assert.equal(outcome(call(program, 'chown32', [], 'x86')), 'ALLOW');
  assert.equal(outcome(call(program, 'mount', [], 'x86')), 'ERRNO 1');
  assert.equal(outcome(call(program, 'clone', [FORK_FLAGS], 'x86')), 'ALLOW');
  assert.equal(outcome(call(program, 'clone', [CLONE_NEWUSER], 'x86')), 'ERRNO 1');
  assert.equal(outcome(call(program, 'read', [], 'x32')), 'ALLOW');
  assert.equal(outcome(call(program, 'rt_sigaction', [], 'x32')), 'ALLOW');
  assert.equal(outcome(call(program, 'unshare', [], 'x32')), 'ERRNO 1');
});

test('calls newer than the profile get ENOSYS so that programs fall back (runc)', () => {
  const program = compiled(DOCKER_CAPS);
  assert.equal(outcome(call(program, 'file_getattr')), 'ERRNO 38');
  assert.equal(outcome(call(program, 'listns')), 'ERRNO 38');
  assert.equal(outcome(call(program, 'listns', [], 'x86')), 'ERRNO 38');
});

test('capabilities open the calls Docker ties to them', () => {
  const groups: [string, string[]][] = [
    [
      'CAP_SYS_ADMIN',
      [
        'mount',
        'umount2',
        'unshare',
        'setns',
        'bpf',
        'perf_event_open',
        'fsopen',
        'syslog',
        'lsm_get_self_attr',
      ],
    ],
    ['CAP_SYS_BOOT', ['reboot']],
    ['CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
    ['CAP_SYS_TIME', ['settimeofday', 'clock_settime']],
    ['CAP_SYS_PTRACE', ['kcmp', 'pidfd_getfd', 'process_madvise']],
    ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
    ['CAP_SYS_NICE', ['mbind', 'set_mempolicy', 'get_mempolicy', 'set_mempolicy_home_node']],
    ['CAP_SYS_PACCT', ['acct']],
    ['CAP_SYS_TTY_CONFIG', ['vhangup']],
    ['CAP_SYSLOG', ['syslog']],
    ['CAP_BPF', ['bpf']],
    ['CAP_PERFMON', ['perf_event_open']],
    ['CAP_DAC_READ_SEARCH', ['open_by_handle_at']],
  ];
  const without = compiled(DOCKER_CAPS.filter((cap) => cap !== 'CAP_SYS_CHROOT'));
  assert.equal(outcome(call(without, 'chroot')), 'ERRNO 1', 'chroot needs CAP_SYS_CHROOT');
  for (const [cap, names] of groups) {
    const program = compiled([...DOCKER_CAPS, cap]);
    for (const name of names) {
      assert.equal(outcome(call(without, name)), 'ERRNO 1', `${name} without ${cap}`);
      assert.equal(outcome(call(program, name)), 'ALLOW', `${name} with ${cap}`);
    }
  }
});

test('CAP_SYS_ADMIN lifts the clone restrictions; some calls stay denied whatever the capabilities', () => {
  const admin = compiled([...DOCKER_CAPS, 'sys_admin']);
  assert.equal(outcome(call(admin, 'clone', [CLONE_NEWUSER | CLONE_NEWNET])), 'ALLOW');
  assert.equal(outcome(call(admin, 'clone3', [0, 88])), 'ALLOW');
  const everything = compiled([
    ...DOCKER_CAPS,
    ...['SYS_ADMIN', 'SYS_BOOT', 'SYS_MODULE', 'SYS_PTRACE', 'SYS_RAWIO', 'SYS_TIME', 'SYS_NICE', 'BPF'],
  ]);
  for (const name of [
    'kexec_load',
    'keyctl',
    'add_key',
    'userfaultfd',
    'io_uring_setup',
    'pivot_root',
    'swapon',
  ]) {
    assert.equal(outcome(call(everything, name)), 'ERRNO 1', name);
  }
});

test('hot calls take few instructions', (t) => {
  const program = compiled(DOCKER_CAPS);
  const counts = Object.fromEntries(
    [
      'read',
      'write',
      'futex',
      'epoll_wait',
      'epoll_pwait',
      'recvfrom',
      'sendto',
      'openat',
      'close',
      'mmap',
    ].map((name) => [name, call(program, name).executed]),
  );
  t.diagnostic(`default profile: ${program.instructions} instructions; executed: ${JSON.stringify(counts)}`);
  for (const [name, executed] of Object.entries(counts)) assert.ok(executed <= 10, `${name}: ${executed}`);
  assert.ok(program.instructions < 600, `${program.instructions} instructions`);
});
