import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsMessage } from './assert-message.js';
import { containerDevices, parseDeviceCgroupRule, type DeviceLookups } from '../../../src/engine/devices.js';
import { boundingCapabilities, devicesAt } from '../../../src/engine/host.js';
import type { Device } from '../../../src/oci/runtime-spec.js';
import type { DeviceMapping } from '../../../src/engine/docker-types.js';

const FUSE: Device = { type: 'c', path: '/dev/fuse', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 };
const SND = [
  { type: 'c', path: '/dev/snd/controlC0', major: 116, minor: 0, fileMode: 0o660, uid: 0, gid: 29 },
  { type: 'c', path: '/dev/snd/by-id/pcm', major: 116, minor: 16, fileMode: 0o660, uid: 0, gid: 29 },
] satisfies Device[];

const lookups: DeviceLookups = {
  statDevice: (path) => {
    if (path === '/dev/fuse' || path === '/dev/fuse-link') return [{ ...FUSE, path }];
    if (path === '/dev/snd') return SND;
    if (path === '/dev/null-dir') return [];
    throw new Error(`ENOENT: no such file or directory, stat '${path}'`);
  },
  hostDevices: () => [FUSE, ...SND],
};

const run = (privileged: boolean, devices: DeviceMapping[], cgroupRules: string[] = []) =>
  containerDevices({ privileged, devices, cgroupRules, requests: [] }, lookups);

test('--device maps the host node under its container path with a cgroup rule of its permissions', () => {
  assert.deepEqual(
    run(false, [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/myfuse', CgroupPermissions: 'rw' }]),
    {
      devices: [{ ...FUSE, path: '/dev/myfuse' }],
      cgroupRules: [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' },
      ],
    },
  );
});

test('--device defaults: same path, rwm; a symlink keeps the asked name', () => {
  const result = run(false, [{ PathOnHost: '/dev/fuse-link' }]);
  assert.deepEqual(result.devices, [{ ...FUSE, path: '/dev/fuse-link' }]);
  assert.equal(result.cgroupRules[1]?.access, 'rwm');
});

test('--device of a directory maps every node below it', () => {
  const result = run(false, [
    { PathOnHost: '/dev/snd', PathInContainer: '/dev/sound', CgroupPermissions: 'r' },
  ]);
  assert.deepEqual(
    result.devices.map((d) => d.path),
    ['/dev/sound/controlC0', '/dev/sound/by-id/pcm'],
  );
  assert.deepEqual(
    result.cgroupRules.slice(1).map((r) => [r.major, r.minor, r.access]),
    [
      [116, 0, 'r'],
      [116, 16, 'r'],
    ],
  );
});

test('--device errors: missing path, not a device, bad mode, relative container path', () => {
  throwsMessage(
    () => run(false, [{ PathOnHost: '/dev/nope' }]),
    /^error gathering device information while adding custom device "\/dev\/nope": ENOENT/,
  );
  throwsMessage(
    () => run(false, [{ PathOnHost: '/dev/null-dir' }]),
    /^error gathering device information while adding custom device "\/dev\/null-dir": not a device node$/,
  );
  throwsMessage(
    () => run(false, [{ PathOnHost: '/dev/fuse', CgroupPermissions: 'rwx' }]),
    /invalid device mode "rwx"/,
  );
  throwsMessage(
    () => run(false, [{ PathOnHost: '/dev/fuse', PathInContainer: 'fuse' }]),
    /fuse is not an absolute path/,
  );
});

test('--device-cgroup-rule: Docker syntax, * is any number', () => {
  assert.deepEqual(parseDeviceCgroupRule('c 1:3 rwm'), {
    allow: true,
    type: 'c',
    major: 1,
    minor: 3,
    access: 'rwm',
  });
  assert.deepEqual(parseDeviceCgroupRule('b *:* m'), {
    allow: true,
    type: 'b',
    major: null,
    minor: null,
    access: 'm',
  });
  assert.deepEqual(parseDeviceCgroupRule('a 7:* r'), {
    allow: true,
    type: 'a',
    major: 7,
    minor: null,
    access: 'r',
  });
  for (const bad of ['c 1:3', 'x 1:3 rwm', 'c 1:3 rwx', 'c a:3 r', ' c 1:3 r']) {
    throwsMessage(
      () => parseDeviceCgroupRule(bad),
      (err: unknown) => err instanceof Error && err.message === `invalid device cgroup rule format: '${bad}'`,
    );
  }
  assert.deepEqual(run(false, [], ['c 42:* rwm']).cgroupRules, [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 42, minor: null, access: 'rwm' },
  ]);
});

test('--privileged: every host device and an allow-all rule; extra mappings only under new names', () => {
  const result = run(
    true,
    [
      { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'r' },
      { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse2', CgroupPermissions: 'r' },
    ],
    ['c 1:1 r'],
  );
  assert.deepEqual(result.cgroupRules, [{ allow: true, access: 'rwm' }]);
  assert.deepEqual(
    result.devices.map((d) => d.path),
    ['/dev/fuse', '/dev/snd/controlC0', '/dev/snd/by-id/pcm', '/dev/fuse2'],
  );
});

test('--gpus has no driver here: Docker error', () => {
  throwsMessage(
    () =>
      containerDevices(
        {
          privileged: false,
          devices: [],
          cgroupRules: [],
          requests: [{ Driver: '', Count: -1, Capabilities: [['gpu']] }],
        },
        lookups,
      ),
    /^could not select device driver "" with capabilities: \[\[gpu\]\]$/,
  );
});

test('host lookups: /dev/null by path, and the capability names of a CapBnd mask', () => {
  assert.deepEqual(
    devicesAt('/dev/null').map((d) => [d.type, d.path, d.major, d.minor]),
    [['c', '/dev/null', 1, 3]],
  );
  assert.ok(devicesAt('/dev').some((d) => d.path === '/dev/zero' && d.major === 1 && d.minor === 5));
  assert.deepEqual(devicesAt('/proc/self/status'), []);
  throwsMessage(() => devicesAt('/dev/does-not-exist'), /ENOENT/);
  assert.deepEqual(boundingCapabilities('Name:\tx\nCapBnd:\t0000000000000021\n'), ['CAP_CHOWN', 'CAP_KILL']);
});
