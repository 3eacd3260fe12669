/**
 * Image list/inspect shapes and filters, create-time refusals, lifecycle events and stats
 * figures, pinned to what dockerd answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  deleteItemJson,
  filterImage,
  imageInspectJson,
  imageSummaryJson,
  parseTimestamp,
  referenceMatches,
} from '../../../src/engine/image-json.js';
import { checkBindSources, checkRestartPolicy, checkRuntime } from '../../../src/engine/create-checks.js';
import { exitEvents, startEvents, volumeEvent } from '../../../src/engine/lifecycle-events.js';
import { memoryLimit, networkCounters } from '../../../src/engine/stats.js';
import { Filters } from '../../../src/api/filters.js';
import { initialState, type ContainerRecord } from '../../../src/engine/container-record.js';
import type { ImageDetails, ImageSummary } from '../../../src/image/store/image-store.js';
import type { NetworkRecord } from '../../../src/network/network-record.js';

const summary = (extra: Partial<ImageSummary> = {}): ImageSummary => ({
  id: 'sha256:' + 'a'.repeat(64),
  repoTags: ['busybox:latest', 'foo/bar:1', 'localhost:5000/x/y:2'],
  repoDigests: [],
  created: '2024-01-01T00:00:00Z',
  size: 100,
  unpackedSize: 200,
  labels: {},
  added: '2024-01-02T00:00:00Z',
  ...extra,
});

const filter = (
  image: ImageSummary,
  filters: Record<string, string[]>,
  bounds = {},
): ImageSummary | undefined => filterImage(image, Filters.parse(JSON.stringify(filters)), bounds);

test('reference filter: Go path.Match globs on name:tag and on the repository alone', () => {
  assert.equal(referenceMatches('busybox', 'busybox:latest'), true);
  assert.equal(referenceMatches('busy*', 'busybox:latest'), true);
  assert.equal(referenceMatches('busybox:latest', 'busybox:latest'), true);
  assert.equal(referenceMatches('busybox:1', 'busybox:latest'), false);
  assert.equal(referenceMatches('*', 'foo/bar:1'), false);
  assert.equal(referenceMatches('*/*', 'foo/bar:1'), true);
  assert.equal(referenceMatches('localhost:5000/x/y', 'localhost:5000/x/y:2'), true);
  assert.equal(referenceMatches('b[a-u]sybox', 'busybox:latest'), true);
});

test('image list filters: only the matching names stay; dangling, labels, before/since/until', () => {
  assert.deepEqual(filter(summary(), { reference: ['busybox'] })?.repoTags, ['busybox:latest']);
  assert.equal(filter(summary(), { reference: ['nothing'] }), undefined);
  assert.equal(filter(summary(), { dangling: ['true'] }), undefined);
  assert.ok(filter(summary({ repoTags: [] }), { dangling: ['true'] }));
  assert.ok(filter(summary(), { dangling: ['false'] }));
  assert.equal(filter(summary(), { label: ['a'] }), undefined);
  assert.ok(filter(summary({ labels: { a: 'b' } }), { label: ['a=b'] }));
  const created = Date.parse('2024-01-01T00:00:00Z') / 1000;
  assert.equal(filter(summary(), {}, { before: created }), undefined);
  assert.ok(filter(summary(), {}, { before: created + 1 }));
  assert.equal(filter(summary(), {}, { since: created }), undefined);
  assert.ok(filter(summary(), {}, { until: created }));
  assert.equal(filter(summary(), {}, { until: created - 1 }), undefined);
  const now = Date.parse('2024-01-01T01:00:00Z');
  assert.equal(parseTimestamp('10m', now), now / 1000 - 600);
  assert.equal(parseTimestamp('1700000000.5'), 1700000000.5);
  assert.equal(parseTimestamp('2024-01-01T00:00:00Z'), created);
  assert.throws(() => parseTimestamp('yesterday'), /failed to parse value as time or duration: "yesterday"/);
});

test('image list entry: nil lists and maps as null; VirtualSize before API 1.44 only', () => {
  const json = imageSummaryJson(summary({ repoTags: [] }), '1.41') as Record<string, unknown>;
  assert.equal(json.RepoTags, null);
  assert.equal(json.RepoDigests, null);
  assert.equal(json.Labels, null);
  assert.equal(json.Size, 200);
  assert.equal(json.VirtualSize, 200);
  const current = imageSummaryJson(summary({ labels: { a: 'b' } }), '1.50') as Record<string, unknown>;
  assert.equal('VirtualSize' in current, false);
  assert.deepEqual(current.Labels, { a: 'b' });
});

test('image inspect: the empty Config fields, and the fields older API versions had', () => {
  const details: ImageDetails = {
    ...summary(),
    architecture: 'amd64',
    os: 'linux',
    imageConfig: {
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['sh'] },
    } as ImageDetails['imageConfig'],
    runConfig: {} as ImageDetails['runConfig'],
    diffIds: ['sha256:' + 'b'.repeat(64)],
    chainIds: [],
    target: {} as ImageDetails['target'],
  };
  const old = imageInspectJson(details, '1.41') as Record<string, Record<string, unknown>>;
  assert.deepEqual(old.Config?.Cmd, ['sh']);
  for (const [key, value] of Object.entries({
    Hostname: '',
    AttachStdin: false,
    Entrypoint: null,
    Labels: null,
    Volumes: null,
    WorkingDir: '',
    OnBuild: null,
    User: '',
  }))
    assert.deepEqual(old.Config?.[key], value, key);
  assert.equal(old.Container, '');
  assert.ok(old.ContainerConfig);
  assert.equal(old.VirtualSize, 200);
  const current = imageInspectJson(details, '1.50') as Record<string, unknown>;
  assert.equal('Container' in current, false);
  assert.equal('ContainerConfig' in current, false);
  assert.equal('VirtualSize' in current, false);
});

test('image delete entries have Docker capitalised keys', () => {
  assert.deepEqual(deleteItemJson({ untagged: 'x:1' }), { Untagged: 'x:1' });
  assert.deepEqual(deleteItemJson({ deleted: 'sha256:1' }), { Deleted: 'sha256:1' });
});

test("the runtime at create: berth by default, dockerd's 400 for an unknown one, a configured other one refused", () => {
  const plain = { defaultRuntime: 'berth', configured: [] };
  assert.equal(checkRuntime(undefined, plain), 'berth');
  assert.equal(checkRuntime('', plain), 'berth');
  assert.equal(checkRuntime('berth', plain), 'berth');
  assert.throws(() => checkRuntime('nosuch', plain), /^BerthError: Unknown runtime specified nosuch$/);
  const withRunc = { defaultRuntime: 'runc', configured: ['runc'] };
  assert.equal(checkRuntime('berth', withRunc), 'berth');
  for (const requested of [undefined, 'runc'])
    assert.throws(
      () => checkRuntime(requested, withRunc),
      /runtime "runc" is configured \(daemon.json runtimes\), but berthd runs containers only with its built-in runtime "berth"/,
    );
});

test('restart policies are checked at create with Docker 25 messages', () => {
  for (const name of ['', 'no', 'always', 'unless-stopped', 'on-failure'])
    checkRestartPolicy({ Name: name as 'no', MaximumRetryCount: 0 });
  checkRestartPolicy({ Name: 'on-failure', MaximumRetryCount: 3 });
  checkRestartPolicy(null);
  assert.throws(
    () => checkRestartPolicy({ Name: 'bogus' as 'no' }),
    /invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'$/,
  );
  assert.throws(
    () => checkRestartPolicy({ Name: 'always', MaximumRetryCount: 3 }),
    /invalid restart policy: maximum retry count can only be used with 'on-failure'$/,
  );
  assert.throws(
    () => checkRestartPolicy({ Name: 'no', MaximumRetryCount: -1 }),
    /can only be used with 'on-failure' and cannot be negative$/,
  );
  assert.throws(
    () => checkRestartPolicy({ Name: 'on-failure', MaximumRetryCount: -1 }),
    /invalid restart policy: maximum retry count cannot be negative$/,
  );
});

test('a --mount bind needs its source at create; a -v bind and CreateMountpoint do not', () => {
  const exists = (path: string): boolean => path === '/there';
  checkBindSources({ Mounts: [{ Type: 'bind', Source: '/there', Target: '/x' }] }, exists);
  checkBindSources({ Binds: ['/missing:/x'] }, exists);
  checkBindSources(
    { Mounts: [{ Type: 'bind', Source: '/missing', Target: '/x', BindOptions: { CreateMountpoint: true } }] },
    exists,
  );
  assert.throws(
    () => checkBindSources({ Mounts: [{ Type: 'bind', Source: '/missing', Target: '/x' }] }, exists),
    /invalid mount config for type "bind": bind source path does not exist: \/missing$/,
  );
});

test('network connect and volume mount before start; disconnect and unmount after die', () => {
  const network = { id: 'n'.repeat(64), name: 'front', driver: 'bridge' } as NetworkRecord;
  const r = {
    id: 'c'.repeat(64),
    networks: { front: {}, gone: {} },
    volumes: { '/data': { name: 'data', anonymous: false, readOnly: true, noCopy: false } },
    state: initialState(),
  } as unknown as ContainerRecord;
  const find = (name: string): NetworkRecord | undefined => (name === 'front' ? network : undefined);
  assert.deepEqual(startEvents(r, find), [
    {
      Type: 'network',
      Action: 'connect',
      Actor: { ID: network.id, Attributes: { container: r.id, name: 'front', type: 'bridge' } },
    },
    {
      Type: 'volume',
      Action: 'mount',
      Actor: {
        ID: 'data',
        Attributes: {
          container: r.id,
          destination: '/data',
          driver: 'local',
          propagation: '',
          'read/write': 'false',
        },
      },
    },
  ]);
  assert.deepEqual(
    exitEvents(r, find).map((e) => [e.Type, e.Action, e.Actor.Attributes]),
    [
      ['network', 'disconnect', { container: r.id, name: 'front', type: 'bridge' }],
      ['volume', 'unmount', { container: r.id, driver: 'local' }],
    ],
  );
  assert.deepEqual(volumeEvent('destroy', 'v'), {
    Type: 'volume',
    Action: 'destroy',
    Actor: { ID: 'v', Attributes: { driver: 'local' } },
  });
});

test('stats: interface counters from the host ends of the veths; no memory limit is the machine', async (t) => {
  const sysfs = await mkdtemp(join(tmpdir(), 'parity-sysfs-'));
  t.after(() => rm(sysfs, { recursive: true, force: true }));
  const values: Record<string, number> = {
    rx_bytes: 10,
    rx_packets: 1,
    rx_errors: 2,
    rx_dropped: 3,
    tx_bytes: 20,
    tx_packets: 4,
    tx_errors: 5,
    tx_dropped: 6,
  };
  await mkdir(join(sysfs, 'veth1', 'statistics'), { recursive: true });
  for (const [name, value] of Object.entries(values))
    await writeFile(join(sysfs, 'veth1', 'statistics', name), `${value}\n`);
  const counters = await networkCounters(
    [
      { ifName: 'eth0', hostIf: 'veth1' },
      { ifName: 'eth1', hostIf: '' },
      { ifName: 'eth2', hostIf: 'missing' },
    ],
    sysfs,
  );
  assert.deepEqual(counters, {
    eth0: {
      rx_bytes: 20,
      rx_packets: 4,
      rx_errors: 5,
      rx_dropped: 6,
      tx_bytes: 10,
      tx_packets: 1,
      tx_errors: 2,
      tx_dropped: 3,
    },
  });
  assert.equal(await networkCounters([], sysfs), undefined);
  assert.equal(memoryLimit(undefined, 1000), 1000);
  assert.equal(memoryLimit(2 ** 62, 1000), 1000);
  assert.equal(memoryLimit(500, 1000), 500);
});
