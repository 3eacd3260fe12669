/** Mount options as mount(8) reads them, and berth-mount's request encoding. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mountCalls } from '../../../src/snapshot/mount-options.js';
import {
  MountError,
  escapeField,
  mountRequest,
  parseAnswer,
  umountRequest,
} from '../../../src/snapshot/mount-helper.js';

test('flags are split from filesystem data, in order, the last of a pair winning', () => {
  assert.deepEqual(
    mountCalls(['index=off', 'ro', 'nosuid', 'lowerdir=/a:/b', 'rw', 'defaults', 'suid', 'nodev']),
    { flags: ['nodev'], data: ['index=off', 'lowerdir=/a:/b'], remount: [], propagation: [] },
  );
  assert.deepEqual(mountCalls(['size=64m', 'mode=1777', 'noexec']).data, ['size=64m', 'mode=1777']);
});

test('a bind mount with per-mount flags needs a remount; propagation is a call of its own', () => {
  assert.deepEqual(mountCalls(['rbind', 'ro']), {
    flags: ['bind', 'rec', 'ro'],
    data: [],
    remount: ['remount', 'bind', 'rec', 'ro'],
    propagation: [],
  });
  assert.deepEqual(mountCalls(['rbind', 'rw']), {
    flags: ['bind', 'rec'],
    data: [],
    remount: [],
    propagation: [],
  });
  assert.deepEqual(mountCalls(['bind', 'nosuid', 'rprivate', 'slave']), {
    flags: ['bind', 'nosuid'],
    data: [],
    remount: ['remount', 'bind', 'nosuid'],
    propagation: [['private', 'rec'], ['slave']],
  });
  // A remount asked for explicitly is not doubled.
  assert.deepEqual(mountCalls(['remount', 'bind', 'ro']).remount, []);
});

test('request fields escape what would split or end a line; empty is "-"', () => {
  assert.equal(escapeField(''), '-');
  assert.equal(escapeField('-'), '\\055');
  assert.equal(escapeField('/a b\\c\td\ne\x7f'), '/a\\040b\\134c\\011d\\012e\\177');
  assert.equal(escapeField('/ünï/-x'), '/ünï/-x');
  assert.throws(() => escapeField('/a\0b'), { kind: 'invalid-argument', message: /NUL byte/ });
  assert.equal(
    mountRequest({
      source: 'overlay',
      target: '/x y/rootfs',
      fstype: 'overlay',
      flags: [],
      data: 'lowerdir=a:b,upperdir=/u',
      cwd: '/l',
    }),
    'mount overlay /x\\040y/rootfs overlay - lowerdir=a:b,upperdir=/u /l',
  );
  assert.equal(
    mountRequest({ source: '/src', target: '/t', fstype: '', flags: ['bind', 'rec'], data: '', cwd: '' }),
    'mount /src /t - bind,rec - -',
  );
  assert.equal(umountRequest('/t', ['detach']), 'umount /t detach');
  assert.equal(umountRequest('/t', []), 'umount /t -');
});

test('answers: ok, an error with its errno name, anything else is a protocol fault', () => {
  assert.equal(parseAnswer('ok'), undefined);
  const error = parseAnswer('error ENOENT No such file or directory');
  assert.ok(error instanceof MountError);
  assert.equal(error.errno, 'ENOENT');
  assert.equal(error.message, 'No such file or directory');
  assert.throws(() => parseAnswer('okay'), { kind: 'internal', message: /unexpected/ });
});
