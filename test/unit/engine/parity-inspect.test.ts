/**
 * Container inspect and list shapes pinned to what dockerd answers (observed side by side with
 * dockerd 20.10 and the Docker 25+ API reference where they differ): defaults dockerd stores at
 * create, nulls where Go has nil, the Mounts list, docker ps's Command and filters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configJson, hostConfigJson, inspectJson, mountPoints } from '../../../src/engine/inspect.js';
import {
  commandOf,
  listContext,
  matchesListFilters,
  type ListContext,
} from '../../../src/engine/container-list.js';
import { Filters } from '../../../src/api/filters.js';
import { initialState, type ContainerRecord } from '../../../src/engine/container-record.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../../../src/oci/defaults.js';

const ID = '0123456789ab' + 'c'.repeat(52);

function record(extra: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    id: ID,
    name: 'web',
    created: '2024-01-01T00:00:10Z',
    path: 'sh',
    args: ['-c', 'exit 1'],
    image: 'sha256:' + 'a'.repeat(64),
    imageRef: 'busybox',
    config: {},
    hostConfig: {},
    state: initialState(),
    restartCount: 0,
    snapshotKey: 'rw',
    logPath: '/dev/null',
    ...extra,
  };
}

const context = { cgroupVersion: 1 as const, apiVersion: '1.50' };

test('HostConfig: the defaults dockerd stores at create, unset values as null', () => {
  const json = hostConfigJson({ MemorySwappiness: -1, PidsLimit: 0, Memory: 64 * 1024 * 1024 }, context);
  assert.equal(json.MemorySwappiness, null);
  assert.equal(json.PidsLimit, null);
  // A memory limit without a swap limit: as much swap again.
  assert.equal(json.MemorySwap, 128 * 1024 * 1024);
  assert.equal(json.IpcMode, 'private');
  assert.equal(json.CgroupnsMode, 'host');
  assert.equal(hostConfigJson({}, { ...context, cgroupVersion: 2 }).CgroupnsMode, 'private');
  assert.equal(json.Runtime, 'berth');
  assert.deepEqual(json.MaskedPaths, DEFAULT_MASKED_PATHS);
  assert.deepEqual(json.ReadonlyPaths, DEFAULT_READONLY_PATHS);
  assert.equal('KernelMemory' in json, false);

  assert.equal(hostConfigJson({ PidsLimit: -1 }, context).PidsLimit, null);
  assert.equal(hostConfigJson({ PidsLimit: 50, MemorySwappiness: 10 }, context).PidsLimit, 50);
  assert.equal(hostConfigJson({ Memory: 10, MemorySwap: -1 }, context).MemorySwap, -1);
  const privileged = hostConfigJson({ Privileged: true }, context);
  assert.equal(privileged.MaskedPaths, null);
  assert.equal(privileged.ReadonlyPaths, null);
  assert.deepEqual(hostConfigJson({ MaskedPaths: [] }, context).MaskedPaths, []);
  assert.equal(hostConfigJson({ IpcMode: 'host' }, context).IpcMode, 'host');
  // API 1.41 clients still find the kernel-memory fields.
  const old = hostConfigJson({}, { ...context, apiVersion: '1.41' });
  assert.equal(old.KernelMemory, 0);
  assert.equal(old.KernelMemoryTCP, 0);
});

test('Config: the hostname the container got, null Volumes, no null Healthcheck', () => {
  const json = configJson(record({ config: { Volumes: {}, Healthcheck: null, Image: 'x' } }), 'host-name');
  assert.equal(json.Hostname, ID.slice(0, 12));
  assert.equal(json.Volumes, null);
  assert.equal('Healthcheck' in json, false);
  assert.equal(json.Image, 'busybox');
  const host = configJson(record({ hostConfig: { NetworkMode: 'host' } }), 'host-name');
  assert.equal(host.Hostname, 'host-name');
  const named = configJson(
    record({ config: { Hostname: 'hh', Volumes: { '/d': {} }, Healthcheck: { Test: ['NONE'] } } }),
    'h',
  );
  assert.equal(named.Hostname, 'hh');
  assert.deepEqual(named.Volumes, { '/d': {} });
  assert.deepEqual(named.Healthcheck, { Test: ['NONE'] });
});

test('Mounts: binds, --mount entries and volumes with dockerd modes; --tmpfs left out', () => {
  const r = record({
    hostConfig: {
      Binds: ['named:/v1:ro', '/host:/b1', '/host:/b2:ro,rshared', '/anon', 'named2:/v4:nocopy'],
      Mounts: [
        { Type: 'volume', Source: 'named', Target: '/v2' },
        { Type: 'bind', Source: '/host', Target: '/b4', ReadOnly: true },
        { Type: 'tmpfs', Target: '/t1' },
      ],
      Tmpfs: { '/t2': 'size=1m' },
    },
    volumes: {
      '/v1': { name: 'named', anonymous: false, readOnly: true, noCopy: false },
      '/anon': { name: 'abc', anonymous: true, readOnly: false, noCopy: false },
      '/v4': { name: 'named2', anonymous: false, readOnly: false, noCopy: true },
      '/v2': { name: 'named', anonymous: false, readOnly: false, noCopy: false },
      '/image-vol': { name: 'def', anonymous: true, readOnly: false, noCopy: false },
    },
  });
  const byDestination = Object.fromEntries(mountPoints(r, '/vols').map((m) => [m.Destination, m]));
  assert.deepEqual(Object.keys(byDestination).sort(), [
    '/anon',
    '/b1',
    '/b2',
    '/b4',
    '/image-vol',
    '/t1',
    '/v1',
    '/v2',
    '/v4',
  ]);
  assert.deepEqual(byDestination['/v1'], {
    Type: 'volume',
    Name: 'named',
    Source: '/vols/named/_data',
    Destination: '/v1',
    Driver: 'local',
    Mode: 'ro',
    RW: false,
    Propagation: '',
  });
  assert.deepEqual(byDestination['/b1'], {
    Type: 'bind',
    Source: '/host',
    Destination: '/b1',
    Mode: '',
    RW: true,
    Propagation: 'rprivate',
  });
  assert.deepEqual(
    [byDestination['/b2']?.Mode, byDestination['/b2']?.RW, byDestination['/b2']?.Propagation],
    ['ro,rshared', false, 'rshared'],
  );
  assert.deepEqual(
    [byDestination['/b4']?.Mode, byDestination['/b4']?.RW, byDestination['/b4']?.Propagation],
    ['', false, 'rprivate'],
  );
  assert.deepEqual(byDestination['/t1'], {
    Type: 'tmpfs',
    Source: '',
    Destination: '/t1',
    Mode: '',
    RW: true,
    Propagation: '',
  });
  // A named -v volume and every --mount volume show dockerd's default label mode.
  assert.equal(byDestination['/v2']?.Mode, 'z');
  assert.equal(byDestination['/v4']?.Mode, 'nocopy');
  assert.equal(byDestination['/anon']?.Mode, '');
  assert.equal(byDestination['/image-vol']?.Mode, '');
  assert.equal(mountPoints(record(), '/vols').length, 0);
});

test('inspect: every dockerd key, with the normalised parts', () => {
  const json = inspectJson(record(), {
    dir: '/c',
    volumesRoot: '/v',
    hostHostname: 'h',
    networkSettings: {},
    ...context,
  }) as Record<string, unknown>;
  for (const key of [
    'Id',
    'Created',
    'Path',
    'Args',
    'State',
    'Image',
    'ResolvConfPath',
    'HostnamePath',
    'HostsPath',
    'LogPath',
    'Name',
    'RestartCount',
    'Driver',
    'Platform',
    'MountLabel',
    'ProcessLabel',
    'AppArmorProfile',
    'ExecIDs',
    'HostConfig',
    'GraphDriver',
    'Mounts',
    'Config',
    'NetworkSettings',
  ])
    assert.ok(key in json, key);
  assert.deepEqual(json.Mounts, []);
  assert.equal((json.HostConfig as Record<string, unknown>).PidsLimit, null);
});

test('docker ps Command: arguments with a space in single quotes', () => {
  assert.equal(commandOf({ path: 'sh', args: ['-c', 'exit 1'] }), "sh -c 'exit 1'");
  assert.equal(commandOf({ path: 'sleep', args: ['1000'] }), 'sleep 1000');
  assert.equal(commandOf({ path: 'true', args: [] }), 'true');
});

function matches(
  r: ContainerRecord,
  filters: Record<string, string[]>,
  others: ContainerRecord[] = [],
): boolean {
  const all = [r, ...others];
  const context: ListContext = listContext(Filters.parse(JSON.stringify(filters)), (ref) =>
    all.find((c) => c.name === ref || c.id.startsWith(ref)),
  );
  return matchesListFilters(r, context);
}

test('docker ps filters: name as a regexp with or without the slash, id by prefix', () => {
  const r = record();
  assert.equal(matches(r, { name: ['^/we'] }), true);
  assert.equal(matches(r, { name: ['^we'] }), true);
  assert.equal(matches(r, { name: ['b$'] }), true);
  assert.equal(matches(r, { name: ['^eb'] }), false);
  assert.equal(matches(r, { id: ['0123'] }), true);
  // Not a substring, not a regexp.
  assert.equal(matches(r, { id: ['2345'] }), false);
  assert.equal(matches(r, { id: ['^0'] }), false);
});

test('docker ps filters: values are checked, with dockerd messages', () => {
  const r = record();
  assert.throws(() => matches(r, { status: ['bogus'] }), /invalid filter 'status=bogus'$/);
  assert.throws(() => matches(r, { health: ['ok'] }), /invalid filter 'health=ok'/);
  assert.throws(() => matches(r, { exited: ['x'] }), /invalid filter 'exited=x'/);
  assert.throws(() => matches(r, { publish: ['80-70'] }), /invalid filter 'publish=80-70'/);
  assert.throws(() => matches(r, { before: ['nosuch'] }), /No such container: nosuch/);
});

test('docker ps filters: before/since by creation, exited only after a run, ports, volumes', () => {
  const older = record({ id: 'f'.repeat(64), name: 'older', created: '2024-01-01T00:00:00Z' });
  const r = record();
  assert.equal(matches(r, { since: ['older'] }, [older]), true);
  assert.equal(matches(r, { before: ['older'] }, [older]), false);
  assert.equal(matches(older, { before: ['web'] }, [r]), true);
  assert.equal(matches(r, { since: ['web'] }), false);

  const neverRan = record({ state: { ...initialState(), ExitCode: 0 } });
  assert.equal(matches(neverRan, { exited: ['0'] }), false);
  const ran = record({ everStarted: true, state: { ...initialState(), Status: 'exited', ExitCode: 3 } });
  assert.equal(matches(ran, { exited: ['3'] }), true);
  assert.equal(matches(ran, { exited: ['0'] }), false);

  const published = record({
    config: { ExposedPorts: { '90/tcp': {} } },
    ports: [
      { proto: 'udp', hostIp: '', hostPort: 8080, containerPort: 80, containerIp: '10.0.0.2', bridge: 'br0' },
    ],
  });
  assert.equal(matches(published, { publish: ['8080/udp'] }), true);
  assert.equal(matches(published, { publish: ['8080'] }), false);
  assert.equal(matches(published, { publish: ['8000-8100/udp'] }), true);
  assert.equal(matches(published, { expose: ['80/udp'] }), true);
  assert.equal(matches(published, { expose: ['90'] }), true);
  assert.equal(matches(published, { expose: ['91'] }), false);

  const withVolume = record({
    hostConfig: { Binds: ['data:/data', '/srv:/srv'] },
    volumes: { '/data': { name: 'data', anonymous: false, readOnly: false, noCopy: false } },
  });
  assert.equal(matches(withVolume, { volume: ['data'] }), true);
  assert.equal(matches(withVolume, { volume: ['/data'] }), true);
  assert.equal(matches(withVolume, { volume: ['/srv'] }), true);
  assert.equal(matches(withVolume, { volume: ['other'] }), false);
  assert.equal(matches(r, { 'is-task': ['false'] }), true);
  assert.equal(matches(r, { 'is-task': ['true'] }), false);
  assert.equal(matches(r, { isolation: ['default'] }), true);
});
