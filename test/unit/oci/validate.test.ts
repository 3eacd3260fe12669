import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateSpec } from '../../../src/oci/validate.js';
import { defaultSpec } from '../../../src/oci/defaults.js';
import { parseLimits } from '../../../src/linux/rlimits.js';

type Mutable = Record<string, unknown> & { process: Record<string, unknown>; linux: Record<string, unknown> };
const spec = (): Mutable => JSON.parse(JSON.stringify(defaultSpec())) as Mutable;

test('the default spec is valid', () => {
  validateSpec(defaultSpec());
});

const cases: Array<[string, (s: Mutable) => void, RegExp]> = [
  ['missing root', (s) => delete s.root, /root: is missing/],
  ['root path of the wrong type', (s) => (s.root = { path: 5 }), /root\.path: must be a non-empty string/],
  ['args not an array', (s) => (s.process.args = 'sh'), /process\.args: must be an array of strings/],
  ['relative cwd', (s) => (s.process.cwd = 'tmp'), /process\.cwd: must be an absolute path/],
  [
    'unknown capability',
    (s) => ((s.process.capabilities as Record<string, string[]>).effective = ['CAP_CHOWN', 'CAP_FLY']),
    /process\.capabilities\.effective\[1\]: unknown capability "CAP_FLY"/,
  ],
  [
    'uid as a string',
    (s) => (s.process.user = { uid: '0', gid: 0 }),
    /process\.user\.uid: must be a non-negative integer/,
  ],
  [
    'unknown rlimit',
    (s) => (s.process.rlimits = [{ type: 'RLIMIT_FLY', soft: 1, hard: 1 }]),
    /process\.rlimits\[0\]\.type: unknown rlimit "RLIMIT_FLY"/,
  ],
  [
    'soft above hard',
    (s) => (s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 5 }]),
    /process\.rlimits\[0\]: soft limit is above the hard limit/,
  ],
  [
    'non-namespaced sysctl',
    (s) => (s.linux.sysctl = { 'kernel.panic': '1' }),
    /linux\.sysctl\["kernel\.panic"\]: is not a namespaced sysctl/,
  ],
  [
    'net sysctl without a network namespace',
    (s) => {
      s.linux.namespaces = [{ type: 'mount' }];
      s.hostname = '';
      s.linux.sysctl = { 'net.ipv4.ip_forward': '1' };
    },
    /needs the container's own network namespace/,
  ],
  [
    'unknown namespace',
    (s) => (s.linux.namespaces = [{ type: 'magic' }]),
    /linux\.namespaces\[0\]\.type: unknown namespace "magic"/,
  ],
  [
    'user namespace without mappings',
    (s) => (s.linux.namespaces = [{ type: 'user' }, { type: 'uts' }]),
    /linux\.uidMappings: a new user namespace needs uid mappings/,
  ],
  [
    'relative mount destination',
    (s) => (s.mounts = [{ destination: 'proc', type: 'proc' }]),
    /mounts\[0\]\.destination: must be an absolute path/,
  ],
  [
    'hostname without uts',
    (s) => (s.linux.namespaces = [{ type: 'mount' }]),
    /hostname: setting a hostname needs a uts namespace/,
  ],
  ['hooks not an object', (s) => (s.hooks = []), /hooks: must be an object/],
  [
    'relative hook path',
    (s) => (s.hooks = { createContainer: [{ path: 'bin/hook' }] }),
    /hooks\.createContainer\[0\]\.path: must be an absolute path/,
  ],
  [
    'hook args of the wrong type',
    (s) => (s.hooks = { startContainer: [{ path: '/bin/hook', args: 'hook' }] }),
    /hooks\.startContainer\[0\]\.args: must be an array of strings/,
  ],
  [
    'a NUL byte in a hook env entry',
    (s) => (s.hooks = { poststop: [{ path: '/bin/hook', env: ['A=1', 'B=\0'] }] }),
    /hooks\.poststop\[0\]\.env\[1\]: must not contain a NUL byte/,
  ],
  [
    'a hook timeout of zero',
    (s) => (s.hooks = { prestart: [{ path: '/bin/hook', timeout: 0 }] }),
    /hooks\.prestart\[0\]\.timeout: must be a whole number of seconds from 1 to 2147483/,
  ],
  [
    'SCMP_ACT_NOTIFY without a listener',
    (s) =>
      ((s.linux.seccomp as Record<string, unknown>).syscalls = [
        { names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' },
      ]),
    /linux\.seccomp\.syscalls\[0\]\.action: SCMP_ACT_NOTIFY needs linux\.seccomp\.listenerPath/,
  ],
  [
    'SCMP_ACT_NOTIFY for sendmsg',
    (s) =>
      Object.assign(s.linux.seccomp as Record<string, unknown>, {
        listenerPath: '/run/agent.sock',
        syscalls: [{ names: ['mkdir', 'sendmsg'], action: 'SCMP_ACT_NOTIFY' }],
      }),
    /linux\.seccomp\.syscalls\[0\]\.names\[1\]: SCMP_ACT_NOTIFY cannot be used for sendmsg/,
  ],
  [
    'a relative listener path',
    (s) => ((s.linux.seccomp as Record<string, unknown>).listenerPath = 'agent.sock'),
    /linux\.seccomp\.listenerPath: must be an absolute path of at most 107 bytes/,
  ],
  [
    'a listener path too long for a unix socket',
    (s) => ((s.linux.seccomp as Record<string, unknown>).listenerPath = `/${'x'.repeat(107)}`),
    /linux\.seccomp\.listenerPath: must be an absolute path of at most 107 bytes/,
  ],
  [
    'listener metadata without a listener',
    (s) => ((s.linux.seccomp as Record<string, unknown>).listenerMetadata = 'x'),
    /linux\.seccomp\.listenerMetadata: may only be set with linux\.seccomp\.listenerPath/,
  ],
];

for (const [name, mutate, message] of cases) {
  test(`rejects ${name} naming the field`, () => {
    const s = spec();
    mutate(s);
    assert.throws(
      () => validateSpec(s),
      (err: Error) => message.test(err.message) && err.message.startsWith('config.json: '),
    );
  });
}

test('an rlimit above the caller hard limit is refused unless the caller has CAP_SYS_RESOURCE', () => {
  const limits = parseLimits(
    'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 20000                files\n',
  );
  const s = spec();
  s.process.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 1048576 }];
  assert.throws(
    () => validateSpec(s, { callerLimits: limits }),
    /RLIMIT_NOFILE hard limit 1048576 is above this process's hard limit 20000/,
  );
  validateSpec(s, { callerLimits: limits, callerHasSysResource: true });
});

test('hooks and a seccomp listener that follow the spec are accepted', () => {
  const s = spec();
  s.hooks = {
    createContainer: [{ path: '/usr/bin/hook', args: ['hook', 'create'], env: ['A=1'], timeout: 5 }],
    startContainer: [{ path: '/hook' }],
  };
  Object.assign(s.linux.seccomp as Record<string, unknown>, {
    listenerPath: '/run/agent.sock',
    listenerMetadata: 'opaque',
    syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }],
  });
  validateSpec(s);
  // Without a NOTIFY rule a listener is simply not used (runtime-spec: "ignored").
  (s.linux.seccomp as Record<string, unknown>).syscalls = [];
  validateSpec(s);
});
