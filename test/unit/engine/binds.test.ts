import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsMessage } from './assert-message.js';
import {
  mergeTmpfsOptions,
  parseBind,
  parseMount,
  resolveMountRequest,
  tmpfsMountData,
  tmpfsSpecOptions,
  type MountRequest,
} from '../../../src/engine/binds.js';
import type { Mount } from '../../../src/engine/docker-types.js';

/** Every field of `expected` is in `actual` with that value. */
function assertFields(actual: MountRequest, expected: Partial<MountRequest>): void {
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual(actual[key as keyof MountRequest], value, key);
  }
}

// -v strings as Docker's Linux parser reads them (daemon/volume/mounts/linux_parser.go).
const bindCases: Array<[string, Partial<MountRequest> | RegExp]> = [
  ['/data', { type: 'volume', source: '', destination: '/data', readOnly: false }],
  [
    '/host:/ctr',
    { type: 'bind', source: '/host', destination: '/ctr', readOnly: false, propagation: 'rprivate' },
  ],
  ['/host/:/ctr/sub/../x/', { type: 'bind', source: '/host', destination: '/ctr/x' }],
  ['/host:/ctr:ro', { type: 'bind', readOnly: true, propagation: 'rprivate', mode: 'ro' }],
  ['/host:/ctr:rw,rslave', { type: 'bind', readOnly: false, propagation: 'rslave' }],
  ['/host:/ctr:ro,Z', { type: 'bind', readOnly: true }],
  ['/host:/ctr:z,cached', { type: 'bind', readOnly: false }],
  ['vol:/ctr', { type: 'volume', source: 'vol', destination: '/ctr', readOnly: false }],
  ['vol:/ctr:ro,nocopy', { type: 'volume', source: 'vol', readOnly: true, noCopy: true }],
  ['', /^invalid volume specification: ''$/],
  [':/ctr', /^invalid volume specification: ':\/ctr'$/],
  ['/ctr:ro', /^invalid volume specification: '\/ctr:ro'$/],
  ['/a:/b:ro:x', /^invalid volume specification: '\/a:\/b:ro:x'$/],
  ['/host:/ctr:rw,ro', /^invalid mode: rw,ro$/],
  ['/host:/ctr:bogus', /^invalid mode: bogus$/],
  ['/host:/ctr:shared,slave', /^invalid mode: shared,slave$/],
  [
    '/host:/',
    /^invalid volume specification: '\/host:\/': invalid mount config for type "bind": invalid specification: destination can't be '\/'$/,
  ],
  [
    '/host:rel',
    /^invalid volume specification: '\/host:rel': invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute$/,
  ],
  ['/host:/ctr:nocopy', /invalid mount config for type "bind": field VolumeOptions must not be specified/],
  ['vol:/ctr:shared', /invalid mount config for type "volume": field BindOptions must not be specified/],
];

for (const [raw, expected] of bindCases) {
  test(`-v ${JSON.stringify(raw)}`, () => {
    if (expected instanceof RegExp) throwsMessage(() => parseBind(raw), expected);
    else assertFields(parseBind(raw), expected);
  });
}

test('-v with a volume driver names the driver for volumes only', () => {
  assert.equal(parseBind('vol:/ctr', 'nfs').volumeDriver, 'nfs');
  assert.equal(parseBind('/h:/ctr', 'nfs').volumeDriver, undefined);
});

// --mount entries (Docker's validateMountConfig).
const mountCases: Array<[string, Mount, Partial<MountRequest> | RegExp]> = [
  [
    'bind',
    { Type: 'bind', Source: '/h', Target: '/c', ReadOnly: true, BindOptions: { NonRecursive: true } },
    {
      type: 'bind',
      source: '/h',
      destination: '/c',
      readOnly: true,
      nonRecursive: true,
      propagation: 'rprivate',
    },
  ],
  [
    'bind propagation',
    { Type: 'bind', Source: '/h', Target: '/c', BindOptions: { Propagation: 'rshared' } },
    { propagation: 'rshared' },
  ],
  [
    'volume with subpath',
    { Type: 'volume', Source: 'v', Target: '/c', VolumeOptions: { Subpath: 'a/b', NoCopy: true } },
    { type: 'volume', subpath: 'a/b', noCopy: true },
  ],
  [
    'tmpfs',
    { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 64 * 1024 * 1024, Mode: 0o1777 } },
    { type: 'tmpfs', tmpfsData: 'mode=1777,size=64m' },
  ],
  [
    'no target',
    { Type: 'bind', Source: '/h' },
    /^invalid mount config for type "bind": field Target must not be empty$/,
  ],
  ['bind without source', { Type: 'bind', Target: '/c' }, /field Source must not be empty/],
  [
    'relative bind source',
    { Type: 'bind', Source: 'h', Target: '/c' },
    /invalid mount path: 'h' mount path must be absolute/,
  ],
  [
    'bad propagation',
    { Type: 'bind', Source: '/h', Target: '/c', BindOptions: { Propagation: 'sideways' as 'shared' } },
    /invalid propagation mode: sideways/,
  ],
  [
    'forced recursive read-only',
    {
      Type: 'bind',
      Source: '/h',
      Target: '/c',
      ReadOnly: true,
      BindOptions: { ReadOnlyForceRecursive: true },
    },
    /does not support recursively read-only mounts/,
  ],
  [
    'bind with volume options',
    { Type: 'bind', Source: '/h', Target: '/c', VolumeOptions: {} },
    /field VolumeOptions must not be specified/,
  ],
  [
    'read-only anonymous volume',
    { Type: 'volume', Target: '/c', ReadOnly: true },
    /must not set ReadOnly mode when using anonymous volumes/,
  ],
  [
    'anonymous volume with subpath',
    { Type: 'volume', Target: '/c', VolumeOptions: { Subpath: 'x' } },
    /must not set Subpath when using anonymous volumes/,
  ],
  [
    'subpath leaving the volume',
    { Type: 'volume', Source: 'v', Target: '/c', VolumeOptions: { Subpath: '../x' } },
    /subpath must be a relative path within the volume/,
  ],
  ['tmpfs with a source', { Type: 'tmpfs', Source: 'x', Target: '/t' }, /field Source must not be specified/],
  [
    'unknown type',
    { Type: 'npipe', Target: '/t' },
    /^invalid mount config for type "npipe": mount type unknown$/,
  ],
];

for (const [name, mount, expected] of mountCases) {
  test(`--mount ${name}`, () => {
    if (expected instanceof RegExp) throwsMessage(() => parseMount(mount), expected);
    else assertFields(parseMount(mount), expected);
  });
}

test('tmpfs data of --mount type=tmpfs: largest exact unit, flags and key/value options', () => {
  assert.equal(tmpfsMountData({ SizeBytes: 2 ** 30 }, false), 'size=1g');
  assert.equal(tmpfsMountData({ SizeBytes: 1536 }, true), 'ro,size=1536');
  assert.equal(tmpfsMountData({ SizeBytes: 1000 }, false), 'size=1000');
  assert.equal(tmpfsMountData({ Options: [['exec'], ['nr_inodes', '100']] }, false), 'exec,nr_inodes=100');
});

test('Docker tmpfs options: defaults noexec,nosuid,nodev,rprivate overridden by the user, later wins', () => {
  assert.deepEqual(tmpfsSpecOptions('rw,noexec,nosuid,size=65536k'), [
    'nodev',
    'rprivate',
    'rw',
    'noexec',
    'nosuid',
    'size=65536k',
  ]);
  assert.deepEqual(tmpfsSpecOptions('exec,size=1m,size=2m,shared'), [
    'nosuid',
    'nodev',
    'exec',
    'size=2m',
    'shared',
  ]);
  assert.deepEqual(tmpfsSpecOptions(''), ['noexec', 'nosuid', 'nodev', 'rprivate']);
  assert.deepEqual(mergeTmpfsOptions(['defaults', 'ro', 'rw']), ['rw']);
  throwsMessage(() => tmpfsSpecOptions('bogus'), /^invalid tmpfs option \["bogus"\]$/);
  throwsMessage(() => tmpfsSpecOptions('foo=1'), /^invalid tmpfs option \["foo" "1"\]$/);
});

test('requests resolve to what buildSpec takes', () => {
  assert.deepEqual(resolveMountRequest(parseBind('/h:/c:ro')), {
    type: 'bind',
    source: '/h',
    destination: '/c',
    readOnly: true,
    propagation: 'rprivate',
  });
  assert.deepEqual(
    resolveMountRequest(
      parseMount({ Type: 'volume', Source: 'v', Target: '/c', VolumeOptions: { Subpath: 'a' } }),
      '/var/lib/berth/volumes/v/_data',
    ),
    {
      type: 'bind',
      source: '/var/lib/berth/volumes/v/_data/a',
      destination: '/c',
      readOnly: false,
    },
  );
  assert.deepEqual(resolveMountRequest(parseMount({ Type: 'tmpfs', Target: '/t', ReadOnly: true })), {
    type: 'tmpfs',
    destination: '/t',
    data: 'ro',
  });
  throwsMessage(() => resolveMountRequest(parseBind('vol:/c')), /has no host path/);
});
