import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ARCHES, OTHER_FAMILY_SYSCALLS, X32_SYSCALL_BIT } from '../../../src/linux/seccomp/arches.js';

test('the x86 syscall tables hold the kernel numbers', () => {
  const expected: [keyof typeof ARCHES, string, number][] = [
    ['x86_64', 'read', 0],
    ['x86_64', 'write', 1],
    ['x86_64', 'socket', 41],
    ['x86_64', 'clone', 56],
    ['x86_64', 'futex', 202],
    ['x86_64', 'epoll_wait', 232],
    ['x86_64', 'openat', 257],
    ['x86_64', 'rseq', 334],
    ['x86_64', 'uretprobe', 335],
    ['x86_64', 'uprobe', 336],
    ['x86_64', 'pidfd_send_signal', 424],
    ['x86_64', 'clone3', 435],
    ['x86_64', 'quotactl_fd', 443],
    ['x86_64', 'set_mempolicy_home_node', 450],
    ['x86_64', 'cachestat', 451],
    ['x86_64', 'futex_requeue', 456],
    ['x86_64', 'mseal', 462],
    ['x86_64', 'removexattrat', 466],
    ['x86_64', 'open_tree_attr', 467],
    ['x86_64', 'file_setattr', 469],
    ['x86_64', 'listns', 470],
    ['x86', 'restart_syscall', 0],
    ['x86', 'read', 3],
    ['x86', 'socketcall', 102],
    ['x86', 'clone', 120],
    ['x86', 'chown32', 212],
    ['x86', 'socket', 359],
    ['x86', 'clock_gettime64', 403],
    ['x86', 'futex_time64', 422],
    ['x86', 'clone3', 435],
    ['x86', 'mseal', 462],
    ['x86', 'listns', 470],
    ['x32', 'read', X32_SYSCALL_BIT | 0],
    ['x32', 'rt_sigaction', X32_SYSCALL_BIT | 512],
    ['x32', 'pwritev2', X32_SYSCALL_BIT | 547],
    ['x32', 'clone3', X32_SYSCALL_BIT | 435],
    ['x32', 'listns', X32_SYSCALL_BIT | 470],
  ];
  for (const [arch, name, nr] of expected)
    assert.equal(ARCHES[arch].syscalls.get(name), nr, `${arch} ${name}`);
});

test('each ABI has the calls it should, and only those', () => {
  assert.equal(ARCHES.x86_64.syscalls.has('socketcall'), false);
  assert.equal(ARCHES.x86_64.syscalls.has('chown32'), false);
  assert.equal(ARCHES.x86.syscalls.has('epoll_ctl_old'), false);
  assert.equal(ARCHES.x86.syscalls.has('newfstatat'), false);
  assert.equal(ARCHES.x86.syscalls.has('uretprobe'), false);
  assert.equal(ARCHES.x32.syscalls.has('uselib'), false, '64-bit-only entries are not x32 calls');
  assert.equal(ARCHES.x86_64.syscalls.has('toString'), false, 'no inherited names');
  for (const name of OTHER_FAMILY_SYSCALLS) {
    for (const arch of Object.values(ARCHES))
      assert.equal(arch.syscalls.has(name), false, `${name} on ${arch.name}`);
  }
});

test('numbers are unique within an ABI and inside its range', () => {
  for (const arch of Object.values(ARCHES)) {
    const numbers = [...arch.syscalls.values()];
    assert.equal(new Set(numbers).size, numbers.length, `${arch.name}: duplicate numbers`);
    for (const nr of numbers)
      assert.ok(nr >= arch.firstNumber && nr <= arch.lastNumber, `${arch.name} ${nr}`);
    assert.ok(arch.syscalls.size > 350, `${arch.name} has ${arch.syscalls.size} calls`);
  }
});
