/**
 * The cgroup drivers on the real kernel. The v1 driver runs on the host's v1 hierarchies; the v2
 * driver runs on the cgroup2 mount of a hybrid host (no controllers there, but device programs
 * and the freezer are part of cgroup2 itself). Every cgroup lives under sandbox.cgroupParent.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BerthError } from '../../src/common/errors.js';
import { shimDeviceAttacher } from '../../src/linux/cgroups/device-attach.js';
import { cgroupManager, detectCgroupLayout } from '../../src/linux/cgroups/index.js';
import type { CgroupManager } from '../../src/linux/cgroups/index.js';
import { V2Manager } from '../../src/linux/cgroups/v2.js';
import type { DeviceCgroup } from '../../src/oci/runtime-spec.js';
import { execProgram } from '../helpers/exec.js';
import { createSandbox, isRoot } from '../helpers/sandbox.js';
import type { Sandbox } from '../helpers/sandbox.js';

const SHIM =
  process.env.BERTH_SHIM ?? fileURLToPath(new URL('../../../native/build/berth-shim', import.meta.url));
const layout = isRoot() ? await detectCgroupLayout() : undefined;
const skipV1 = !isRoot()
  ? 'needs root'
  : layout?.mode === 'unified'
    ? 'this host has no cgroup v1 hierarchies'
    : false;

/** Why the shim cannot attach device programs, or false when it can. */
async function shimProblem(): Promise<string | false> {
  if (!existsSync(SHIM)) return `${SHIM} is not built (make -C native)`;
  const usage = await execProgram(SHIM, ['cgroup-device-attach']);
  if (!usage.stderr.includes('usage: berth-shim cgroup-device-attach'))
    return `${SHIM} has no cgroup-device-attach subcommand (${usage.stderr.trim()})`;
  return false;
}
const skipV2 = !isRoot()
  ? 'needs root'
  : layout?.unified === undefined
    ? 'no cgroup2 mount'
    : layout.mode === 'unified'
      ? 'a pure v2 host: the unified cgroup is the container cgroup, not tested here'
      : await shimProblem();

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * A process that waits for a line on stdin before doing its work, so that the test can move it
 * into a cgroup first. It runs in the sandbox directory, so the sandbox kills it on failure.
 */
function gated(
  sandbox: Sandbox,
  file: string,
  args: string[],
): { pid: number; release(): void; done: Promise<Finished> } {
  const child = spawn(file, args, { cwd: sandbox.root, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${file} did not start`);
  sandbox.trackProcess(pid);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const done = new Promise<Finished>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { pid, release: () => child.stdin.end('go\n'), done };
}

const readTrim = async (path: string): Promise<string> => (await readFile(path, 'utf8')).trim();
const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );
const procState = async (pid: number): Promise<string> =>
  /^State:\s+(\S)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';

/** A v1 hierarchy's directory of the manager's cgroup. */
function dirOf(cg: CgroupManager, controller: string): string {
  const mount = layout?.v1[controller]?.mountPoint;
  const dir = cg.directories.find((d) => mount !== undefined && d.startsWith(`${mount}/`));
  if (dir === undefined) throw new Error(`no ${controller} directory`);
  return dir;
}

async function v1Cgroup(t: TestContext, name: string): Promise<{ sandbox: Sandbox; cg: CgroupManager }> {
  const sandbox = await createSandbox(t);
  const cg = await cgroupManager(`/${sandbox.cgroupParent}/${name}`, name);
  assert.equal(cg.version, 'v1');
  await cg.create();
  return { sandbox, cg };
}

/** The whole disk behind the root filesystem's device, for throttling rules. */
async function blockDevice(): Promise<{ major: number; minor: number } | undefined> {
  for (const name of await readdir('/sys/block')) {
    if (/^(loop|ram|zram|nbd)/.test(name)) continue;
    const [major, minor] = (await readTrim(`/sys/block/${name}/dev`)).split(':').map(Number);
    if (major !== undefined && minor !== undefined) return { major, minor };
  }
  return undefined;
}

// Docker's list, shortened: deny all, then /dev/null and /dev/zero.
const NULL_AND_ZERO: DeviceCgroup[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'r' },
];
const ZERO_ONLY: DeviceCgroup[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
];
// Opens /dev/zero then /dev/null for reading, printing which opens worked.
const OPEN_DEVICES = 'read x; if : < /dev/zero; then echo zero; fi; if : < /dev/null; then echo null; fi';

test('v1: create, add a process, apply limits and read them from the files', { skip: skipV1 }, async (t) => {
  const { sandbox, cg } = await v1Cgroup(t, 'limits');
  for (const dir of cg.directories) assert.ok(await exists(dir), dir);
  const sleeper = gated(sandbox, 'sleep', ['600']);
  await cg.addProcess(sleeper.pid);
  const own = await readFile(`/proc/${sleeper.pid}/cgroup`, 'utf8');
  assert.match(own, new RegExp(`:memory:/${sandbox.cgroupParent}/limits$`, 'm'));
  assert.match(own, new RegExp(`:pids:/${sandbox.cgroupParent}/limits$`, 'm'));
  assert.deepEqual(await cg.pids(), [sleeper.pid]);

  const disk = await blockDevice();
  await cg.apply({
    memory: { limit: 64 << 20, swap: 128 << 20, reservation: 32 << 20, swappiness: 10 },
    cpu: { shares: 512, quota: 50000, period: 100000, cpus: '0', mems: '0' },
    pids: { limit: 20 },
    ...(disk === undefined
      ? {}
      : {
          blockIO: {
            throttleReadBpsDevice: [{ ...disk, rate: 1 << 20 }],
            throttleWriteIOPSDevice: [{ ...disk, rate: 100 }],
          },
        }),
    devices: NULL_AND_ZERO,
  });
  const memory = dirOf(cg, 'memory');
  assert.equal(await readTrim(join(memory, 'memory.limit_in_bytes')), String(64 << 20));
  assert.equal(await readTrim(join(memory, 'memory.memsw.limit_in_bytes')), String(128 << 20));
  assert.equal(await readTrim(join(memory, 'memory.soft_limit_in_bytes')), String(32 << 20));
  assert.equal(await readTrim(join(memory, 'memory.swappiness')), '10');
  const cpu = dirOf(cg, 'cpu');
  assert.equal(await readTrim(join(cpu, 'cpu.shares')), '512');
  assert.equal(await readTrim(join(cpu, 'cpu.cfs_quota_us')), '50000');
  assert.equal(await readTrim(join(cpu, 'cpu.cfs_period_us')), '100000');
  assert.equal(await readTrim(join(dirOf(cg, 'cpuset'), 'cpuset.cpus')), '0');
  assert.equal(await readTrim(join(dirOf(cg, 'pids'), 'pids.max')), '20');
  if (disk !== undefined) {
    const blkio = dirOf(cg, 'blkio');
    assert.equal(
      await readTrim(join(blkio, 'blkio.throttle.read_bps_device')),
      `${disk.major}:${disk.minor} ${1 << 20}`,
    );
    assert.equal(
      await readTrim(join(blkio, 'blkio.throttle.write_iops_device')),
      `${disk.major}:${disk.minor} 100`,
    );
  }
  assert.equal(await readTrim(join(dirOf(cg, 'devices'), 'devices.list')), 'c 1:3 rwm\nc 1:5 r');

  // Raising both memory limits needs memsw written first, lowering them memory first: both work.
  await cg.update({ memory: { limit: 256 << 20, swap: 512 << 20 } });
  assert.equal(await readTrim(join(memory, 'memory.limit_in_bytes')), String(256 << 20));
  assert.equal(await readTrim(join(memory, 'memory.memsw.limit_in_bytes')), String(512 << 20));
  await cg.update({ memory: { limit: 32 << 20, swap: 32 << 20 } });
  assert.equal(await readTrim(join(memory, 'memory.limit_in_bytes')), String(32 << 20));
  assert.equal(await readTrim(join(memory, 'memory.memsw.limit_in_bytes')), String(32 << 20));
  // A shorter period with a quota that no longer fits is written after the quota.
  await cg.update({ cpu: { quota: 10000, period: 20000 } });
  assert.equal(await readTrim(join(cpu, 'cpu.cfs_period_us')), '20000');
  await cg.update({ pids: { limit: -1 } });
  assert.equal(await readTrim(join(dirOf(cg, 'pids'), 'pids.max')), 'max');
});

test('v1: values the kernel or the host refuse name the OCI field', { skip: skipV1 }, async (t) => {
  const { cg } = await v1Cgroup(t, 'refused');
  const refused = async (
    resources: Parameters<CgroupManager['apply']>[0],
    pattern: RegExp,
  ): Promise<void> => {
    await assert.rejects(
      cg.apply(resources),
      (err: unknown) => {
        return err instanceof BerthError && err.kind === 'invalid-argument' && pattern.test(err.message);
      },
      pattern.source,
    );
  };
  await refused({ cpu: { cpus: '0-4095' } }, /^linux\.resources\.cpu\.cpus: the kernel rejects "0-4095"/);
  await refused(
    { memory: { limit: 1000 } },
    /^linux\.resources\.memory\.limit: 1000 is below the minimum the kernel accepts/,
  );
  await refused({ unified: { 'memory.high': '1' } }, /^linux\.resources\.unified/);
  if (layout?.v1.hugetlb === undefined)
    await refused(
      { hugepageLimits: [{ pageSize: '2MB', limit: 2 << 20 }] },
      /hugepageLimits\[0\]: the hugetlb cgroup controller is not available/,
    );
  if (
    !(await exists(join(dirOf(cg, 'blkio'), 'blkio.weight'))) &&
    !(await exists(join(dirOf(cg, 'blkio'), 'blkio.bfq.weight')))
  )
    await refused({ blockIO: { weight: 500 } }, /blockIO\.weight: no proportional I\/O scheduler here/);
});

test(
  'v1: device rules decide which devices a process in the cgroup can open',
  { skip: skipV1 },
  async (t) => {
    const { sandbox, cg } = await v1Cgroup(t, 'devices');
    await cg.apply({ devices: ZERO_ONLY });
    const shell = gated(sandbox, 'sh', ['-c', OPEN_DEVICES]);
    await cg.addProcess(shell.pid);
    shell.release();
    const result = await shell.done;
    assert.equal(result.stdout, 'zero\n');
    assert.match(result.stderr, /null: Operation not permitted/);
  },
);

test('v1: freeze and thaw a process', { skip: skipV1 }, async (t) => {
  const { sandbox, cg } = await v1Cgroup(t, 'freezer');
  const sleeper = gated(sandbox, 'sleep', ['600']);
  await cg.addProcess(sleeper.pid);
  assert.equal(await procState(sleeper.pid), 'S');
  await cg.freeze();
  assert.equal(await cg.state(), 'frozen');
  assert.equal(await readTrim(join(dirOf(cg, 'freezer'), 'freezer.state')), 'FROZEN');
  assert.equal(await procState(sleeper.pid), 'D'); // the freezer holds it in an uninterruptible sleep
  await cg.thaw();
  assert.equal(await cg.state(), 'thawed');
  assert.equal(await procState(sleeper.pid), 'S');
});

test('v1: a pids limit stops a fork bomb', { skip: skipV1 }, async (t) => {
  const { sandbox, cg } = await v1Cgroup(t, 'forks');
  await cg.apply({ pids: { limit: 10 } });
  // At most 50 children that each live a second: bounded even if the limit did not hold.
  const bomb = gated(sandbox, 'sh', ['-c', 'read x; for i in $(seq 50); do sleep 1 & done; wait']);
  await cg.addProcess(bomb.pid);
  bomb.release();
  const result = await bomb.done;
  assert.match(result.stderr, /fork/i);
  const events = await readTrim(join(dirOf(cg, 'pids'), 'pids.events'));
  assert.ok(Number(/^max (\d+)/m.exec(events)?.[1]) > 0, events);
  assert.equal((await cg.stats()).pids?.limit, 10);
});

test('v1: a process above the memory limit is OOM-killed and counted', { skip: skipV1 }, async (t) => {
  const { sandbox, cg } = await v1Cgroup(t, 'oom');
  await cg.apply({ memory: { limit: 64 << 20, swap: 64 << 20 } });
  assert.equal(await cg.oomKillCount(), 0);
  // Allocates and touches up to 1 GiB, 1 MiB at a time, once it is inside the cgroup.
  const hog = gated(sandbox, process.execPath, [
    '-e',
    "process.stdin.once('data', () => { const a = []; for (let i = 0; i < 1024; i++) a.push(Buffer.alloc(1 << 20, 1)); process.exit(0); });",
  ]);
  await cg.addProcess(hog.pid);
  hog.release();
  const result = await hog.done;
  assert.equal(result.signal, 'SIGKILL');
  assert.ok((await cg.oomKillCount()) >= 1);
  const stats = await cg.stats();
  assert.equal(stats.memory?.oomKills, await cg.oomKillCount());
  assert.equal(stats.memory?.limit, 64 << 20);
  assert.ok((stats.memory?.maxUsage ?? 0) > 32 << 20, 'the hog got close to the limit first');
});

test('v1: statistics are plausible', { skip: skipV1 }, async (t) => {
  const { sandbox, cg } = await v1Cgroup(t, 'stats');
  const busy = gated(sandbox, 'sh', [
    '-c',
    'read x; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo $i > counted',
  ]);
  await cg.addProcess(busy.pid);
  busy.release();
  assert.equal((await busy.done).code, 0);
  const stats = await cg.stats();
  assert.ok(stats.cpu !== undefined && stats.cpu.usageTotal > 0);
  // Nothing runs any more, so the per-CPU counters add up to the total.
  assert.equal(
    stats.cpu.usagePerCpu.reduce((a, b) => a + b, 0),
    stats.cpu.usageTotal,
  );
  assert.ok(stats.cpu.usageUser + stats.cpu.usageSystem > 0);
  assert.ok(stats.memory !== undefined && (stats.memory.maxUsage ?? 0) > 0);
  assert.equal(stats.memory.limit, undefined);
  assert.deepEqual(stats.pids, { current: 0, limit: undefined });
  // Whether the shell's small write reached a disk yet is up to the page cache: only presence is checked.
  assert.ok(Array.isArray(stats.io?.devices));
});

test(
  'v1: destroy removes the directories in every hierarchy, and again is fine',
  { skip: skipV1 },
  async (t) => {
    const { sandbox, cg } = await v1Cgroup(t, 'destroy');
    await (await cgroupManager(`/${sandbox.cgroupParent}/destroy/child`, 'child')).create();
    await cg.destroy();
    for (const dir of cg.directories) assert.equal(await exists(dir), false, dir);
    await cg.destroy();
  },
);

test('v2 on the cgroup2 mount: the device program and the freezer, for real', { skip: skipV2 }, async (t) => {
  const sandbox = await createSandbox(t);
  const unified = layout?.unified;
  if (unified === undefined) throw new Error('no cgroup2 mount');
  const cg = new V2Manager({
    mount: unified,
    cgroupPath: { relative: false, path: `/${sandbox.cgroupParent}/devices` },
    attachDevices: shimDeviceAttacher(SHIM),
    controllers: [], // leave the host's subtree_control alone
  });
  await cg.create();
  await cg.apply({ devices: ZERO_ONLY });
  const denied = gated(sandbox, 'sh', ['-c', OPEN_DEVICES]);
  await cg.addProcess(denied.pid);
  denied.release();
  const first = await denied.done;
  assert.equal(first.stdout, 'zero\n');
  assert.match(first.stderr, /null: Operation not permitted/);

  // An update replaces the program instead of adding a second one that would still deny.
  await cg.update({ devices: NULL_AND_ZERO });
  const allowed = gated(sandbox, 'sh', ['-c', OPEN_DEVICES]);
  await cg.addProcess(allowed.pid);
  allowed.release();
  assert.equal((await allowed.done).stdout, 'zero\nnull\n');

  const sleeper = gated(sandbox, 'sleep', ['600']);
  await cg.addProcess(sleeper.pid);
  assert.deepEqual(await cg.pids(), [sleeper.pid]);
  await cg.freeze();
  assert.equal(await cg.state(), 'frozen');
  // The v2 freezer parks tasks in a signal trap (State stays S): the kernel's word is cgroup.events.
  const events = join(cg.directories[0] ?? '', 'cgroup.events');
  assert.match(await readFile(events, 'utf8'), /^populated 1\nfrozen 1$/m);
  await cg.thaw();
  assert.equal(await cg.state(), 'thawed');
  assert.match(await readFile(events, 'utf8'), /^frozen 0$/m);

  process.kill(sleeper.pid, 'SIGKILL');
  await sleeper.done;
  await cg.destroy();
  assert.equal(await exists(cg.directories[0] ?? ''), false);
});
