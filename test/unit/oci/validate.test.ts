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
