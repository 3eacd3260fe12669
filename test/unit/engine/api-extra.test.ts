/** Registry auth decoding, the system df report and the container metrics, with fake sources. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentialsOf, decodeRegistryAuth, registryDomain } from '../../../src/engine/auth-route.js';
import { diskUsageReport, parseDfTypes, type DfSources } from '../../../src/engine/system-df.js';
import { collectContainerMetrics } from '../../../src/engine/container-metrics.js';
import { renderMetrics } from '../../../src/api/metrics.js';
import { initialState, type ContainerRecord } from '../../../src/engine/container-record.js';
import { encodeTarHeader } from '../../../src/archive/tar-writer.js';
import type { VolumeRecord } from '../../../src/volume/local.js';

const header = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');

test('X-Registry-Auth: base64url JSON, the auth field, identity tokens; garbage is refused', () => {
  assert.deepEqual(decodeRegistryAuth(undefined), {});
  assert.deepEqual(decodeRegistryAuth(header({})), {});
  const decoded = decodeRegistryAuth(
    header({ username: 'alice', password: 'p?>~', serveraddress: 'h:5000' }),
  );
  assert.deepEqual(credentialsOf(decoded), { username: 'alice', password: 'p?>~' });
  assert.deepEqual(
    credentialsOf(decodeRegistryAuth(header({ auth: Buffer.from('bob:a:b').toString('base64') }))),
    {
      username: 'bob',
      password: 'a:b',
    },
  );
  assert.deepEqual(credentialsOf({ identitytoken: 'tok' }), { identityToken: 'tok' });
  assert.equal(credentialsOf({}), undefined);
  assert.throws(() => decodeRegistryAuth('not json'), /invalid X-Registry-Auth header/);
  assert.throws(() => decodeRegistryAuth(header(['a'])), /not a JSON object/);
});

test('login server addresses name registry domains; Docker Hub in all its spellings', () => {
  for (const address of ['', 'https://index.docker.io/v1/', 'docker.io', 'registry-1.docker.io'])
    assert.equal(registryDomain(address), 'docker.io');
  assert.equal(registryDomain('http://127.0.0.1:5000'), '127.0.0.1:5000');
  assert.equal(registryDomain('registry.example:443/v2/'), 'registry.example:443');
});

function record(
  id: string,
  image: string,
  running: boolean,
  extra: Partial<ContainerRecord> = {},
): ContainerRecord {
  return {
    id,
    name: `c-${id}`,
    image,
    imageRef: 'img',
    path: 'sh',
    args: [],
    created: '2024-01-01T00:00:00Z',
    config: {},
    hostConfig: {},
    state: { ...initialState(), Running: running, Status: running ? 'running' : 'exited' },
    restartCount: 2,
    snapshotKey: `rw-${id}`,
    logPath: '/dev/null',
    ...extra,
  } as ContainerRecord;
}

test('system df: shared layers, unique sizes, writable layers and volume usage', async () => {
  const sizes: Record<string, number> = { base: 1000, a: 100, b: 10, 'rw-1': 7 };
  const volume = { Name: 'v', Mountpoint: '/vol/v/_data', Labels: {}, Options: {} } as VolumeRecord;
  const sources: DfSources = {
    containers: () => [record('1', 'sha256:a', true)],
    summary: (r) => ({ Id: r.id }),
    images: async () => [
      { id: 'sha256:a', repoTags: ['a:latest'], repoDigests: [], labels: {}, chainIds: ['base', 'a'] },
      { id: 'sha256:b', repoTags: [], repoDigests: [], labels: {}, chainIds: ['base', 'b'] },
    ],
    snapshotSize: async (key) => {
      const size = sizes[key];
      if (size === undefined) throw new Error(`no snapshot ${key}`);
      return size;
    },
    volumes: () => [volume],
    volumeUsers: (name) => (name === 'v' ? ['1', '2'] : []),
    directorySize: async (path) => (path === '/vol/v/_data' ? 4096 : 0),
  };
  const report = (await diskUsageReport(sources)) as {
    LayersSize: number;
    Images: Array<{ Id: string; Size: number; SharedSize: number; Containers: number }>;
    Containers: Array<{ SizeRw: number; SizeRootFs: number }>;
    Volumes: Array<{ Name: string; UsageData: { Size: number; RefCount: number } }>;
    BuildCache: unknown[];
  };
  assert.equal(report.LayersSize, 1110);
  assert.deepEqual(
    report.Images.map((i) => [i.Id, i.Size, i.SharedSize, i.Containers]),
    [
      ['sha256:a', 1100, 1000, 1],
      ['sha256:b', 1010, 1000, 0],
    ],
  );
  assert.deepEqual(
    report.Containers.map((c) => [c.SizeRw, c.SizeRootFs]),
    [[7, 1107]],
  );
  assert.deepEqual(report.Volumes[0]?.UsageData, { Size: 4096, RefCount: 2 });
  assert.deepEqual(report.BuildCache, []);

  const onlyVolumes = await diskUsageReport(sources, parseDfTypes(['volume']));
  assert.deepEqual(Object.keys(onlyVolumes), ['Volumes']);
  assert.throws(() => parseDfTypes(['images']), /unknown object type 'images'/);
});

test('container metrics: cgroup figures of running containers, restarts of all', async () => {
  const families = await collectContainerMetrics({
    containers: () => [record('1', 'sha256:a', true), record('2', 'sha256:a', false)],
    stats: async (id) => {
      assert.equal(id, '1');
      return {
        cpu: {
          usageTotal: 2_500_000_000,
          usagePerCpu: [],
          usageUser: 0,
          usageSystem: 0,
          throttling: { periods: 0, throttledPeriods: 0, throttledTime: 0 },
        },
        memory: { usage: 4096, limit: 8192, cache: 0, rss: 1024, failcnt: 0, oomKills: 0, stat: {} },
        pids: { current: 3 },
        io: { devices: [{ major: 8, minor: 0, readBytes: 10, writeBytes: 20, readOps: 1, writeOps: 2 }] },
      };
    },
  });
  const text = renderMetrics(families);
  const labels = (id: string): string => `{id="${id}",name="c-${id}",image="img"}`;
  assert.match(text, new RegExp(`^berth_container_cpu_usage_seconds_total${labels('1')} 2\\.5$`, 'm'));
  assert.match(text, new RegExp(`^berth_container_memory_usage_bytes${labels('1')} 4096$`, 'm'));
  assert.match(text, new RegExp(`^berth_container_memory_limit_bytes${labels('1')} 8192$`, 'm'));
  assert.match(text, new RegExp(`^berth_container_pids${labels('1')} 3$`, 'm'));
  assert.match(text, new RegExp(`^berth_container_blkio_write_bytes_total${labels('1')} 20$`, 'm'));
  assert.match(text, new RegExp(`^berth_container_restarts_total${labels('2')} 2$`, 'm'));
  assert.match(text, new RegExp(`^berth_container_running${labels('2')} 0$`, 'm'));
  assert.doesNotMatch(text, new RegExp(`berth_container_pids${labels('2')}`));
  assert.match(text, /^berth_containers\{state="stopped"\} 1$/m);
});

test('tar entries keep a leading slash only when rooted', () => {
  const name = (blocks: Buffer[]): string =>
    blocks[0]?.subarray(0, 100).toString().replace(/\0.*$/s, '') ?? '';
  assert.equal(name(encodeTarHeader({ path: '/bin/sh', type: 'file', mode: 0o755 }, 0)), 'bin/sh');
  assert.equal(
    name(encodeTarHeader({ path: '/bin/sh', type: 'file', mode: 0o755, rooted: true }, 0)),
    '/bin/sh',
  );
  assert.equal(name(encodeTarHeader({ path: '/', type: 'directory', mode: 0o755, rooted: true })), '/');
});
