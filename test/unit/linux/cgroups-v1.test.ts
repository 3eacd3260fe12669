// The v1 driver against fake hierarchies in a temporary directory (the integration test runs it
// on the real ones). The fake shows which file each value goes to; it does not enforce the kernel.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import type { CgroupLayout } from '../../../src/linux/cgroups/layout.js';
import { V1Manager } from '../../../src/linux/cgroups/v1.js';

const UNLIMITED = '9223372036854771712\n';

const FILES: Record<string, Record<string, string>> = {
  memory: {
    'memory.limit_in_bytes': UNLIMITED,
    'memory.memsw.limit_in_bytes': UNLIMITED,
    'memory.soft_limit_in_bytes': UNLIMITED,
    'memory.kmem.tcp.limit_in_bytes': UNLIMITED,
    'memory.usage_in_bytes': '0\n',
    'memory.swappiness': '60\n',
    'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
    'memory.use_hierarchy': '1\n',
  },
  cpu: {
    'cpu.shares': '1024\n',
    'cpu.cfs_period_us': '100000\n',
    'cpu.cfs_quota_us': '-1\n',
    'cpu.cfs_burst_us': '0\n',
    'cpu.rt_period_us': '1000000\n',
    'cpu.rt_runtime_us': '0\n',
    'cpu.idle': '0\n',
  },
  cpuset: { 'cpuset.cpus': '\n', 'cpuset.mems': '\n' },
  pids: { 'pids.max': 'max\n', 'pids.current': '0\n' },
  blkio: {
    'blkio.throttle.read_bps_device': '',
    'blkio.throttle.write_bps_device': '',
    'blkio.throttle.read_iops_device': '',
    'blkio.throttle.write_iops_device': '',
  },
  devices: { 'devices.allow': '', 'devices.deny': '' },
  freezer: { 'freezer.state': 'THAWED\n' },
};

interface Fake {
  root: string;
  layout: CgroupLayout;
  dir(controller: string): string;
}

async function fakeHierarchies(
  t: TestContext,
  path: string,
  controllers = Object.keys(FILES),
): Promise<Fake> {
  const root = await mkdtemp(join(tmpdir(), 'berth-unit-cgroup1-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const layout: CgroupLayout = { mode: 'v1', v1: {}, own: {} };
  for (const controller of controllers) {
    const mountPoint = join(root, controller);
    await mkdir(mountPoint);
    layout.v1[controller] = { mountPoint, root: '/', controllers: [controller] };
    layout.own[controller] = '/';
    const leaf = join(mountPoint, path);
    await mkdir(leaf, { recursive: true });
    for (const [file, content] of Object.entries(FILES[controller] ?? {}))
      await writeFile(join(leaf, file), content);
  }
  return { root, layout, dir: (controller) => join(root, controller, path) };
}

const read = (path: string): Promise<string> => readFile(path, 'utf8');
const invalid = (pattern: RegExp) => (err: unknown) =>
  err instanceof BerthError && err.kind === 'invalid-argument' && pattern.test(err.message);

test('create fills empty cpuset.cpus and cpuset.mems from the parent at every level', async (t) => {
  const fake = await fakeHierarchies(t, 'a/c1', ['cpuset', 'pids']);
  const mount = join(fake.root, 'cpuset');
  await writeFile(join(mount, 'cpuset.cpus'), '0-1\n');
  await writeFile(join(mount, 'cpuset.mems'), '0\n');
  await writeFile(join(mount, 'a', 'cpuset.cpus'), '\n');
  await writeFile(join(mount, 'a', 'cpuset.mems'), '0\n');
  const cg = new V1Manager(fake.layout, { relative: false, path: '/a/c1' });
  await cg.create();
  assert.equal(await read(join(mount, 'a', 'cpuset.cpus')), '0-1');
  assert.equal(await read(join(mount, 'a', 'cpuset.mems')), '0\n'); // already set: left alone
  assert.equal(await read(join(mount, 'a', 'c1', 'cpuset.cpus')), '0-1');
  assert.equal(await read(join(mount, 'a', 'c1', 'cpuset.mems')), '0');
  assert.deepEqual(cg.directories, [fake.dir('cpuset'), fake.dir('pids')]);
  // A new process enters by writing "0" to each hierarchy's tasks file itself.
  assert.deepEqual(cg.entry, {
    kind: 'self-write',
    files: [join(fake.dir('cpuset'), 'tasks'), join(fake.dir('pids'), 'tasks')],
  });
});

test('apply writes every resource to its v1 file', async (t) => {
  const fake = await fakeHierarchies(t, 'c1');
  const cg = new V1Manager(fake.layout, { relative: false, path: '/c1' });
  await cg.apply({
    memory: {
      limit: 256 << 20,
      swap: 512 << 20,
      reservation: 128 << 20,
      kernelTCP: 16 << 20,
      swappiness: 10,
      disableOOMKiller: true,
    },
    cpu: {
      shares: 512,
      quota: 50000,
      period: 100000,
      burst: 1000,
      realtimePeriod: 1000000,
      realtimeRuntime: 5000,
      cpus: '1',
      mems: '0',
    },
    pids: { limit: 10 },
    blockIO: { throttleReadBpsDevice: [{ major: 254, minor: 0, rate: 1048576 }] },
    devices: [{ allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }],
  });
  const expected: Array<[string, string, string]> = [
    ['memory', 'memory.limit_in_bytes', String(256 << 20)],
    ['memory', 'memory.memsw.limit_in_bytes', String(512 << 20)],
    ['memory', 'memory.soft_limit_in_bytes', String(128 << 20)],
    ['memory', 'memory.kmem.tcp.limit_in_bytes', String(16 << 20)],
    ['memory', 'memory.swappiness', '10'],
    ['memory', 'memory.oom_control', '1'],
    ['cpu', 'cpu.shares', '512'],
    ['cpu', 'cpu.cfs_quota_us', '50000'],
    ['cpu', 'cpu.cfs_period_us', '100000'],
    ['cpu', 'cpu.cfs_burst_us', '1000'],
    ['cpu', 'cpu.rt_period_us', '1000000'],
    ['cpu', 'cpu.rt_runtime_us', '5000'],
    ['cpuset', 'cpuset.cpus', '1'],
    ['cpuset', 'cpuset.mems', '0'],
    ['pids', 'pids.max', '10'],
    ['blkio', 'blkio.throttle.read_bps_device', '254:0 1048576'],
    ['devices', 'devices.deny', 'a'],
    ['devices', 'devices.allow', 'c 1:3 rw'],
  ];
  for (const [controller, file, value] of expected)
    assert.equal(await read(join(fake.dir(controller), file)), value, file);
});

test('memory and swap: the current limits decide what is possible', async (t) => {
  const fake = await fakeHierarchies(t, 'c1', ['memory']);
  const dir = fake.dir('memory');
  const cg = new V1Manager(fake.layout, { relative: false, path: '/c1' });
  await cg.apply({ memory: { limit: 256 << 20, swap: 512 << 20 } });
  // Swap alone below the current memory limit, memory alone above the current memory+swap.
  await assert.rejects(
    cg.update({ memory: { swap: 128 << 20 } }),
    invalid(/memory\.swap: 134217728 is below the current memory limit/),
  );
  await assert.rejects(
    cg.update({ memory: { limit: 1 << 30 } }),
    invalid(
      /memory\.limit: 1073741824 is above the current memory\+swap limit \(536870912\); set memory\.swap too/,
    ),
  );
  // Unlimited memory takes swap along.
  await cg.update({ memory: { limit: -1 } });
  assert.equal(await read(join(dir, 'memory.limit_in_bytes')), '-1');
  assert.equal(await read(join(dir, 'memory.memsw.limit_in_bytes')), '-1');
  await writeFile(join(dir, 'memory.usage_in_bytes'), '300000000\n');
  await assert.rejects(
    cg.update({ memory: { limit: 256 << 20, swap: 256 << 20, checkBeforeUpdate: true } }),
    invalid(/memory\.limit: 268435456 is below the current memory usage/),
  );
});

test('missing controllers and files are errors naming the field, unset values are not', async (t) => {
  const fake = await fakeHierarchies(t, 'c1', ['memory', 'blkio', 'devices']);
  const cg = new V1Manager(fake.layout, { relative: false, path: '/c1' });
  await assert.rejects(
    cg.apply({ pids: { limit: 3 } }),
    invalid(/^linux\.resources\.pids: the pids cgroup controller is not available/),
  );
  await assert.rejects(
    cg.apply({ hugepageLimits: [{ pageSize: '2MB', limit: 1 << 21 }] }),
    invalid(/hugepageLimits\[0\]: the hugetlb cgroup controller is not available/),
  );
  await assert.rejects(
    cg.apply({ blockIO: { weight: 500 } }),
    invalid(/blockIO\.weight: no proportional I\/O scheduler here/),
  );
  await assert.rejects(
    cg.apply({ unified: { 'memory.high': '1' } }),
    invalid(/linux\.resources\.unified: cgroup v2 settings/),
  );
  await assert.rejects(
    cg.apply({ cpu: { shares: 512 } }),
    invalid(/linux\.resources\.cpu: the cpu cgroup controller/),
  );
  // A device rule the v1 file format cannot carry is refused before anything is written.
  await assert.rejects(
    cg.apply({ devices: [{ allow: true, type: 'a', major: 1, access: 'rwm' }] }),
    invalid(/devices\[0\]/),
  );
  assert.equal(await read(join(fake.dir('devices'), 'devices.deny')), '');
  // With BFQ, the weight goes to blkio.bfq.weight.
  await writeFile(join(fake.dir('blkio'), 'blkio.bfq.weight'), '100\n');
  await writeFile(join(fake.dir('blkio'), 'blkio.bfq.weight_device'), '');
  await cg.apply({ blockIO: { weight: 500, weightDevice: [{ major: 8, minor: 0, weight: 300 }] } });
  assert.equal(await read(join(fake.dir('blkio'), 'blkio.bfq.weight')), '500');
  assert.equal(await read(join(fake.dir('blkio'), 'blkio.bfq.weight_device')), '8:0 300');
  await cg.apply({ memory: {}, cpu: { shares: 0 }, hugepageLimits: [], unified: {} });
});

test('freezer, stats and the OOM kill count', async (t) => {
  const fake = await fakeHierarchies(t, 'c1', ['memory', 'freezer', 'pids']);
  const cg = new V1Manager(fake.layout, { relative: false, path: '/c1' });
  assert.equal(await cg.state(), 'thawed');
  await cg.freeze(); // the fake file reads back what was written: FROZEN at once
  assert.equal(await read(join(fake.dir('freezer'), 'freezer.state')), 'FROZEN');
  assert.equal(await cg.state(), 'frozen');
  await cg.thaw();
  assert.equal(await cg.state(), 'thawed');
  await writeFile(
    join(fake.dir('memory'), 'memory.oom_control'),
    'oom_kill_disable 0\nunder_oom 0\noom_kill 4\n',
  );
  assert.equal(await cg.oomKillCount(), 4);
  await writeFile(join(fake.dir('pids'), 'pids.current'), '2\n');
  await writeFile(join(fake.dir('pids'), 'cgroup.procs'), '12\n11\n');
  const stats = await cg.stats();
  assert.deepEqual(stats.pids, { current: 2, limit: undefined });
  assert.equal(stats.memory?.oomKills, 4);
  assert.equal(stats.cpu, undefined); // no cpuacct hierarchy
  assert.deepEqual(await cg.pids(), [11, 12]);
});

test('no freezer hierarchy: freezing is unavailable, the state is thawed', async (t) => {
  const fake = await fakeHierarchies(t, 'c1', ['memory']);
  const cg = new V1Manager(fake.layout, { relative: false, path: '/c1' });
  await assert.rejects(
    cg.freeze(),
    (err: unknown) => err instanceof BerthError && err.kind === 'unavailable',
  );
  assert.equal(await cg.state(), 'thawed');
});
