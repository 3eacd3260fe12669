// The v2 driver against a fake cgroupfs: a temporary directory holding the files the kernel would
// create. The fake does not enforce the kernel's rules; it shows what the driver writes where.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import { shimDeviceAttacher } from '../../../src/linux/cgroups/device-attach.js';
import { deviceProgram } from '../../../src/linux/cgroups/device-bpf.js';
import { cgroupManager } from '../../../src/linux/cgroups/index.js';
import { cgroupLayout } from '../../../src/linux/cgroups/layout.js';
import { V2Manager } from '../../../src/linux/cgroups/v2.js';
import type { V2Options } from '../../../src/linux/cgroups/v2.js';
import type { DeviceCgroup, Resources } from '../../../src/oci/runtime-spec.js';

const ALL = ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids', 'rdma', 'misc'];

/** The interface files a new cgroup has, per controller, with the kernel's initial values. */
const FILES: Record<string, Record<string, string>> = {
  core: {
    'cgroup.procs': '',
    'cgroup.events': 'populated 0\nfrozen 0\n',
    'cgroup.freeze': '0\n',
    'cgroup.subtree_control': '\n',
  },
  memory: {
    'memory.max': 'max\n',
    'memory.low': '0\n',
    'memory.high': 'max\n',
    'memory.swap.max': 'max\n',
    'memory.current': '0\n',
    'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n',
    'memory.stat': 'anon 0\nfile 0\n',
  },
  cpu: {
    'cpu.weight': '100\n',
    'cpu.max': 'max 100000\n',
    'cpu.max.burst': '0\n',
    'cpu.idle': '0\n',
    'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n',
  },
  cpuset: { 'cpuset.cpus': '\n', 'cpuset.mems': '\n' },
  io: { 'io.weight': 'default 100\n', 'io.max': '', 'io.stat': '' },
  pids: { 'pids.max': 'max\n', 'pids.current': '0\n' },
  hugetlb: { 'hugetlb.2MB.max': 'max\n', 'hugetlb.2MB.rsvd.max': 'max\n', 'hugetlb.1GB.max': 'max\n' },
  rdma: { 'rdma.max': '' },
  misc: {},
};

async function fakeRoot(t: TestContext, controllers = ALL): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'berth-unit-cgroup2-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await writeFile(join(root, 'cgroup.controllers'), `${controllers.join(' ')}\n`);
  await writeFile(join(root, 'cgroup.subtree_control'), '\n');
  return root;
}

/** Makes a cgroup directory the way the kernel would, with these controllers enabled for it. */
async function fakeCgroup(dir: string, controllers = ALL, omit: string[] = []): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'cgroup.controllers'), `${controllers.join(' ')}\n`);
  for (const group of ['core', ...controllers])
    for (const [file, content] of Object.entries(FILES[group] ?? {}))
      if (!omit.includes(file)) await writeFile(join(dir, file), content);
}

const read = (path: string): Promise<string> => readFile(path, 'utf8');

function manager(root: string, path: string, extra: Partial<V2Options> = {}): V2Manager {
  return new V2Manager({
    mount: { mountPoint: root, root: '/' },
    cgroupPath: { relative: false, path },
    ...extra,
  });
}

const invalid = (pattern: RegExp) => (err: unknown) =>
  err instanceof BerthError && err.kind === 'invalid-argument' && pattern.test(err.message);

test('create makes the directories and enables controllers in every ancestor', async (t) => {
  const root = await fakeRoot(t, ['cpu', 'memory', 'pids', 'io']);
  await fakeCgroup(join(root, 'berth'), ['cpu', 'memory', 'pids', 'io']);
  const cg = manager(root, '/berth/c1');
  await cg.create();
  assert.ok((await stat(join(root, 'berth', 'c1'))).isDirectory());
  assert.equal(await read(join(root, 'cgroup.subtree_control')), '+cpu +io +memory +pids');
  assert.equal(await read(join(root, 'berth', 'cgroup.subtree_control')), '+cpu +io +memory +pids');
  assert.deepEqual(cg.directories, [join(root, 'berth', 'c1')]);
  assert.deepEqual(cg.entry, { kind: 'clone-into', directory: join(root, 'berth', 'c1') });
  assert.equal(cg.path, '/berth/c1');
});

test('create leaves enabled controllers alone and enables only the ones asked for', async (t) => {
  const root = await fakeRoot(t, ['cpu', 'memory', 'hugetlb']);
  await writeFile(join(root, 'cgroup.subtree_control'), 'cpu memory\n');
  await manager(root, '/a/b/c').create();
  assert.equal(await read(join(root, 'cgroup.subtree_control')), '+hugetlb');
  await writeFile(join(root, 'cgroup.subtree_control'), 'cpu\n');
  await manager(root, '/a2', { controllers: [] }).create();
  assert.equal(await read(join(root, 'cgroup.subtree_control')), 'cpu\n');
});

test('apply writes every resource to its v2 file', async (t) => {
  const root = await fakeRoot(t);
  const dir = join(root, 'c1');
  await fakeCgroup(dir);
  const cg = manager(root, '/c1');
  await cg.create();
  const resources: Resources = {
    memory: { limit: 256 << 20, reservation: 128 << 20, swap: 512 << 20 },
    cpu: { shares: 1024, quota: 50000, period: 100000, burst: 1000, idle: 0, cpus: '0-1', mems: '0' },
    pids: { limit: 10 },
    blockIO: {
      weight: 500,
      throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
      throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 100 }],
    },
    hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }],
    rdma: { mlx4_0: { hcaHandles: 2, hcaObjects: 2000 } },
    unified: { 'memory.high': '200000000' },
  };
  await cg.apply(resources);
  const expected: Record<string, string> = {
    'memory.max': String(256 << 20),
    'memory.low': String(128 << 20),
    'memory.swap.max': String(256 << 20),
    'memory.high': '200000000',
    'cpu.weight': '100',
    'cpu.max': '50000 100000',
    'cpu.max.burst': '1000',
    'cpu.idle': '0',
    'cpuset.cpus': '0-1',
    'cpuset.mems': '0',
    'pids.max': '10',
    'io.weight': '4950',
    'io.max': '8:0 rbps=1048576 wiops=100',
    'hugetlb.2MB.max': String(4 << 20),
    'hugetlb.2MB.rsvd.max': String(4 << 20),
    'hugetlb.1GB.max': 'max\n',
    'rdma.max': 'mlx4_0 hca_handle=2 hca_object=2000',
  };
  for (const [file, value] of Object.entries(expected))
    assert.equal(await read(join(dir, file)), value, file);
});

test('unlimited values and the BFQ weight file', async (t) => {
  const root = await fakeRoot(t);
  const dir = join(root, 'c1');
  await fakeCgroup(dir);
  await writeFile(join(dir, 'io.bfq.weight'), 'default 100\n');
  const cg = manager(root, '/c1');
  await cg.apply({
    memory: { limit: -1 },
    cpu: { quota: -1 },
    pids: { limit: 0 },
    blockIO: { weight: 300, weightDevice: [{ major: 8, minor: 16, weight: 200 }] },
  });
  assert.equal(await read(join(dir, 'memory.max')), 'max');
  assert.equal(await read(join(dir, 'memory.swap.max')), 'max');
  assert.equal(await read(join(dir, 'cpu.max')), 'max');
  assert.equal(await read(join(dir, 'pids.max')), 'max');
  assert.equal(await read(join(dir, 'io.bfq.weight')), '8:16 200'); // BFQ takes blkio's range as it is
  assert.equal(await read(join(dir, 'io.weight')), 'default 100\n');
});

test('update keeps what it is not given: the other half of cpu.max, the memory limit under swap', async (t) => {
  const root = await fakeRoot(t);
  const dir = join(root, 'c1');
  await fakeCgroup(dir);
  const cg = manager(root, '/c1');
  await cg.apply({ cpu: { quota: 20000, period: 100000 }, memory: { limit: 256 << 20 } });
  await cg.update({ cpu: { period: 50000 } });
  assert.equal(await read(join(dir, 'cpu.max')), '20000 50000');
  await cg.update({ memory: { swap: 1 << 30 } });
  assert.equal(await read(join(dir, 'memory.swap.max')), String((1 << 30) - (256 << 20)));
  assert.equal(await read(join(dir, 'memory.max')), String(256 << 20));
  // checkBeforeUpdate refuses a limit below the current usage; apply() does not check.
  await writeFile(join(dir, 'memory.current'), '300000000\n');
  await assert.rejects(
    cg.update({ memory: { limit: 256 << 20, checkBeforeUpdate: true } }),
    invalid(/memory\.limit: 268435456 is below the current memory usage \(300000000\)/),
  );
  await cg.update({ memory: { limit: 512 << 20, checkBeforeUpdate: true } });
  assert.equal(await read(join(dir, 'memory.max')), String(512 << 20));
});

test('a controller that is not enabled is an error only when a value is set', async (t) => {
  const root = await fakeRoot(t);
  const dir = join(root, 'c1');
  await fakeCgroup(dir, ['cpu']);
  const cg = manager(root, '/c1');
  await assert.rejects(
    cg.apply({ pids: { limit: 5 } }),
    invalid(/^linux\.resources\.pids: the pids controller is not enabled/),
  );
  await assert.rejects(
    cg.apply({ memory: { limit: 1 << 30 } }),
    invalid(/linux\.resources\.memory: the memory controller/),
  );
  await assert.rejects(
    cg.apply({ unified: { 'memory.high': '1' } }),
    invalid(/unified\.memory\.high: the memory controller is not enabled/),
  );
  await cg.apply({
    memory: { swappiness: -1, limit: 0 },
    blockIO: {},
    cpu: { shares: 0, cpus: '' },
    hugepageLimits: [],
  });
});

test('settings cgroup v2 does not have are refused, naming the field', async (t) => {
  const root = await fakeRoot(t);
  const dir = join(root, 'c1');
  await fakeCgroup(dir);
  const cg = manager(root, '/c1');
  const cases: Array<[Resources, RegExp]> = [
    [{ memory: { swappiness: 60 } }, /memory\.swappiness: cgroup v2 has no per-cgroup swappiness/],
    [{ memory: { kernelTCP: 1 << 20 } }, /memory\.kernelTCP/],
    [{ memory: { disableOOMKiller: true } }, /memory\.disableOOMKiller/],
    [{ cpu: { realtimeRuntime: 1000 } }, /cpu\.realtimeRuntime: cgroup v2 has no real-time/],
    [{ network: { classID: 1 } }, /linux\.resources\.network/],
    [{ blockIO: { leafWeight: 100 } }, /blockIO\.leafWeight/],
    [
      { hugepageLimits: [{ pageSize: '64KB', limit: 1 }] },
      /hugepageLimits\[0\]\.pageSize: this kernel has no 64KB huge pages/,
    ],
    [{ unified: { '../x': '1' } }, /unified\.\.\.\/x: not a cgroup interface file name/],
    [{ memory: { limit: 1000 } }, /memory\.limit: 1000 is below the minimum the kernel accepts/],
  ];
  for (const [resources, pattern] of cases)
    await assert.rejects(cg.apply(resources), invalid(pattern), pattern.source);
  // Values disabling what v2 lacks anyway are fine.
  await cg.apply({ memory: { disableOOMKiller: false, useHierarchy: true } });
});

test('without swap accounting, swap can only equal the memory limit', async (t) => {
  const root = await fakeRoot(t);
  const dir = join(root, 'c1');
  await fakeCgroup(dir, ALL, ['memory.swap.max']);
  const cg = manager(root, '/c1');
  await cg.apply({ memory: { limit: 64 << 20, swap: 64 << 20 } });
  assert.equal(await read(join(dir, 'memory.max')), String(64 << 20));
  await assert.rejects(
    cg.apply({ memory: { limit: 64 << 20, swap: 128 << 20 } }),
    invalid(/memory\.swap: this kernel does not account swap/),
  );
});

test('devices: the compiled program goes to the attacher, with the cgroup directory', async (t) => {
  const root = await fakeRoot(t);
  const dir = join(root, 'c1');
  await fakeCgroup(dir);
  const rules: DeviceCgroup[] = [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  ];
  const attached: Array<[string, Buffer]> = [];
  const cg = manager(root, '/c1', {
    attachDevices: async (directory, program) => {
      attached.push([directory, program]);
    },
  });
  await cg.apply({ devices: rules });
  assert.deepEqual(attached, [[dir, deviceProgram(rules)]]);
  await assert.rejects(manager(root, '/c1').apply({ devices: rules }), (err: unknown) => {
    return (
      err instanceof BerthError && err.kind === 'unavailable' && /linux\.resources\.devices/.test(err.message)
    );
  });
});

test('the shim attacher: arguments, program on stdin, failures quoted', async (t) => {
  const root = await fakeRoot(t);
  const dir = join(root, 'c1');
  await mkdir(dir);
  const shim = join(root, 'fake-shim');
  await writeFile(shim, '#!/bin/sh\n[ "$1" = cgroup-device-attach ] || exit 3\ncat > "$2/program.bin"\n');
  await chmod(shim, 0o755);
  const program = deviceProgram([{ allow: true, type: 'c', major: 1, minor: 3, access: 'r' }]);
  await shimDeviceAttacher(shim)(dir, program);
  assert.deepEqual(await readFile(join(dir, 'program.bin')), program);

  const failing = join(root, 'failing-shim');
  await writeFile(failing, '#!/bin/sh\necho "BPF_PROG_ATTACH: Operation not permitted" >&2\nexit 1\n');
  await chmod(failing, 0o755);
  await assert.rejects(
    shimDeviceAttacher(failing)(dir, program),
    /exit 1\): BPF_PROG_ATTACH: Operation not permitted/,
  );
  await assert.rejects(shimDeviceAttacher(join(root, 'missing'))(dir, program), (err: unknown) => {
    return err instanceof BerthError && err.kind === 'unavailable';
  });
});

test('freeze, thaw and state follow cgroup.freeze and cgroup.events', async (t) => {
  const root = await fakeRoot(t);
  const dir = join(root, 'c1');
  await fakeCgroup(dir);
  const cg = manager(root, '/c1');
  assert.equal(await cg.state(), 'thawed');
  // The fake kernel has already finished: the driver must still ask for the freeze.
  await writeFile(join(dir, 'cgroup.events'), 'populated 1\nfrozen 1\n');
  await cg.freeze();
  assert.equal(await read(join(dir, 'cgroup.freeze')), '1');
  assert.equal(await cg.state(), 'frozen');
  await writeFile(join(dir, 'cgroup.events'), 'populated 1\nfrozen 0\n');
  await cg.thaw();
  assert.equal(await read(join(dir, 'cgroup.freeze')), '0');
  assert.equal(await cg.state(), 'thawed');
});

test('stats, pids and the OOM kill count from the cgroup files', async (t) => {
  const root = await fakeRoot(t);
  const dir = join(root, 'c1');
  await fakeCgroup(dir);
  await writeFile(join(dir, 'memory.current'), '7364608\n');
  await writeFile(join(dir, 'memory.max'), '67108864\n');
  await writeFile(join(dir, 'memory.stat'), 'anon 1294336\nfile 5406720\n');
  await writeFile(join(dir, 'memory.events'), 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n');
  await writeFile(join(dir, 'pids.current'), '3\n');
  await writeFile(join(dir, 'pids.max'), '10\n');
  await writeFile(join(dir, 'io.stat'), '8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n');
  await writeFile(join(dir, 'cgroup.procs'), '42\n7\n');
  await fakeCgroup(join(dir, 'child'));
  await writeFile(join(dir, 'child', 'cgroup.procs'), '100\n');
  const cg = manager(root, '/c1');
  const stats = await cg.stats();
  assert.equal(stats.memory?.usage, 7364608);
  assert.equal(stats.memory?.limit, 67108864);
  assert.equal(stats.memory?.cache, 5406720);
  assert.equal(stats.memory?.failcnt, 4);
  assert.equal(stats.memory?.swap?.usage, undefined); // the fake has no memory.swap.current
  assert.deepEqual(stats.pids, { current: 3, limit: 10 });
  assert.deepEqual(stats.io?.devices, [
    { major: 8, minor: 0, readBytes: 4096, writeBytes: 8192, readOps: 1, writeOps: 2 },
  ]);
  assert.equal(stats.cpu?.usageTotal, 0);
  assert.equal(await cg.oomKillCount(), 1);
  assert.deepEqual(await cg.pids(), [7, 42, 100]);
});

test('destroy removes the cgroup and its children, and a missing cgroup is fine', async (t) => {
  const root = await fakeRoot(t);
  // Empty directories: a real cgroup directory can be removed while it lists its interface files.
  await mkdir(join(root, 'c1', 'child', 'grandchild'), { recursive: true });
  const cg = manager(root, '/c1');
  await cg.destroy();
  await assert.rejects(stat(join(root, 'c1')), { code: 'ENOENT' });
  await cg.destroy();
});

test('the factory on a unified host: relative paths start at the own cgroup', async (t) => {
  const root = await fakeRoot(t);
  const layout = cgroupLayout(
    `30 23 0:26 / ${root} rw - cgroup2 cgroup2 rw\n`,
    '0::/user.slice/session.scope\n',
  );
  const cg = await cgroupManager('sub/c1', 'c1', { layout, controllers: [] });
  assert.equal(cg.version, 'v2');
  assert.equal(cg.path, '/user.slice/session.scope/sub/c1');
  await cg.create();
  assert.ok((await stat(join(root, 'user.slice', 'session.scope', 'sub', 'c1'))).isDirectory());
});
