import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import {
  parseFlatKeyed,
  parseNestedKeyed,
  parseSingle,
  parseV1Limit,
} from '../../../src/linux/cgroups/cgroupfs.js';
import {
  blkioWeightToIoWeight,
  sharesToWeight,
  validateResources,
} from '../../../src/linux/cgroups/resources.js';
import type { Resources } from '../../../src/oci/runtime-spec.js';
import {
  pidsStats,
  v1CpuStats,
  v1IoStats,
  v1MemoryStats,
  v2CpuStats,
  v2IoStats,
  v2MemoryStats,
} from '../../../src/linux/cgroups/stats.js';
import { ioMaxLines, swapMaxValue } from '../../../src/linux/cgroups/v2.js';

test('cpu.shares -> cpu.weight: the fixed points and monotonic in between', () => {
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1024), 100);
  assert.equal(sharesToWeight(262144), 10000);
  assert.equal(sharesToWeight(512), 59);
  assert.equal(sharesToWeight(2048), 174);
  let previous = 0;
  for (let shares = 2; shares <= 262144; shares += 97) {
    const weight = sharesToWeight(shares);
    assert.ok(weight >= previous && weight >= 1 && weight <= 10000, `shares ${shares} -> ${weight}`);
    previous = weight;
  }
});

test('blkio weight -> io.weight, as runc', () => {
  assert.equal(blkioWeightToIoWeight(10), 1);
  assert.equal(blkioWeightToIoWeight(500), 4950);
  assert.equal(blkioWeightToIoWeight(1000), 10000);
});

test('OCI swap (memory + swap) -> memory.swap.max (swap alone)', () => {
  assert.equal(swapMaxValue(100 << 20, 300 << 20, undefined), String(200 << 20));
  assert.equal(swapMaxValue(100 << 20, 100 << 20, undefined), '0');
  assert.equal(swapMaxValue(100 << 20, -1, undefined), 'max');
  assert.equal(swapMaxValue(-1, undefined, undefined), 'max'); // unlimited memory: unlimited swap
  assert.equal(swapMaxValue(100 << 20, undefined, undefined), undefined);
  assert.equal(swapMaxValue(undefined, 300 << 20, 100 << 20), String(200 << 20)); // update: current memory.max
  assert.throws(
    () => swapMaxValue(undefined, 300 << 20, -1),
    /memory\.swap: cannot limit swap while memory is unlimited/,
  );
  assert.throws(
    () => swapMaxValue(undefined, 50 << 20, 100 << 20),
    /memory\.swap: \d+ is below the memory limit/,
  );
});

test('io.max lines: one per device with every limit, 0 meaning no limit', () => {
  assert.deepEqual(
    ioMaxLines({
      throttleReadBpsDevice: [
        { major: 8, minor: 0, rate: 1048576 },
        { major: 254, minor: 0, rate: 0 },
      ],
      throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 100 }],
    }),
    ['8:0 rbps=1048576 wiops=100', '254:0 rbps=max'],
  );
});

test('validation names the OCI field and the kernel limit', () => {
  const rejects = (resources: Resources, message: RegExp): void => {
    assert.throws(
      () => validateResources(resources),
      (err: unknown) =>
        err instanceof BerthError && err.kind === 'invalid-argument' && message.test(err.message),
      message.source,
    );
  };
  rejects(
    { memory: { limit: 1000 } },
    /^linux\.resources\.memory\.limit: 1000 is below the minimum the kernel accepts/,
  );
  rejects({ memory: { limit: -5 } }, /memory\.limit: -5 is neither -1/);
  rejects(
    { memory: { limit: 1 << 30, swap: 1 << 20 } },
    /memory\.swap: 1048576 is below linux\.resources\.memory\.limit/,
  );
  rejects(
    { memory: { swappiness: 101 } },
    /memory\.swappiness: 101 is outside the range the kernel accepts \(0 to 100\)/,
  );
  rejects({ cpu: { shares: 1 } }, /cpu\.shares: 1 is outside the range the kernel accepts \(2 to 262144\)/);
  rejects({ cpu: { quota: 500 } }, /cpu\.quota: 500 is below the minimum the kernel accepts \(1000\)/);
  rejects({ cpu: { period: 2_000_000 } }, /cpu\.period: 2000000 is outside the range/);
  rejects({ cpu: { cpus: '0-1,a' } }, /cpu\.cpus: "0-1,a" is not a list/);
  rejects(
    { blockIO: { weight: 5 } },
    /blockIO\.weight: 5 is outside the range the kernel accepts \(10 to 1000\)/,
  );
  rejects({ hugepageLimits: [{ pageSize: '2M', limit: 1 }] }, /hugepageLimits\[0\]\.pageSize/);
  rejects({ pids: { limit: 1.5 } }, /pids\.limit: 1\.5 is not an integer/);
  // Unset and unlimited values pass; -1 swappiness means "unset".
  validateResources({
    memory: { limit: -1, swap: -1, reservation: 0, swappiness: -1 },
    cpu: { shares: 0, quota: -1, period: 100000, cpus: '0-1,3' },
    pids: { limit: -1 },
  });
});

test('file parsers', () => {
  assert.equal(parseSingle('max\n'), undefined);
  assert.equal(parseSingle('42\n'), 42);
  assert.equal(parseSingle(undefined), undefined);
  assert.equal(parseV1Limit('9223372036854771712\n'), undefined);
  assert.equal(parseV1Limit('104857600\n'), 104857600);
  assert.deepEqual(parseFlatKeyed('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n'), {
    oom_kill_disable: 0,
    under_oom: 0,
    oom_kill: 3,
  });
  assert.deepEqual(parseNestedKeyed('8:0 rbps=max wbps=10\n'), [
    { major: 8, minor: 0, values: { wbps: 10 } },
  ]);
});

test('v1 statistics from real file contents', () => {
  const memory = v1MemoryStats({
    usage: '10485760\n',
    maxUsage: '20971520\n',
    limit: '67108864\n',
    stat: 'cache 4096000\nrss 2048000\nrss_huge 0\nshmem 0\ntotal_cache 5000000\ntotal_rss 3000000\n',
    failcnt: '7\n',
    memswUsage: '12582912\n',
    memswLimit: '134217728\n',
    oomControl: 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
  });
  assert.deepEqual(memory, {
    usage: 10485760,
    maxUsage: 20971520,
    limit: 67108864,
    cache: 5000000,
    rss: 3000000,
    failcnt: 7,
    oomKills: 2,
    swap: { usage: 2097152, limit: 67108864 },
    stat: { cache: 4096000, rss: 2048000, rss_huge: 0, shmem: 0, total_cache: 5000000, total_rss: 3000000 },
  });
  const unlimited = v1MemoryStats({ usage: '0\n', limit: '9223372036854771712\n' });
  assert.equal(unlimited?.limit, undefined);
  assert.equal(unlimited?.swap, undefined);
  assert.equal(v1MemoryStats({}), undefined);

  const cpu = v1CpuStats({
    usage: '614950580727\n',
    usagePerCpu: '286385462294 328565118433 \n',
    stat: 'user 48551\nsystem 12943\n',
    cpuStat: 'nr_periods 10\nnr_throttled 3\nthrottled_time 123456789\nnr_bursts 0\nburst_time 0\n',
  });
  assert.deepEqual(cpu, {
    usageTotal: 614950580727,
    usagePerCpu: [286385462294, 328565118433],
    usageUser: 485510000000,
    usageSystem: 129430000000,
    throttling: { periods: 10, throttledPeriods: 3, throttledTime: 123456789 },
  });
  assert.equal(v1CpuStats({ usage: '5\n', usageUser: '3\n', usageSystem: '2\n' })?.usageUser, 3);

  const io = v1IoStats(
    '254:0 Read 4096\n254:0 Write 8192\n254:0 Sync 0\n254:0 Async 12288\n254:0 Discard 0\n254:0 Total 12288\nTotal 12288\n',
    '254:0 Read 1\n254:0 Write 2\n254:0 Total 3\nTotal 3\n',
  );
  assert.deepEqual(io, {
    devices: [{ major: 254, minor: 0, readBytes: 4096, writeBytes: 8192, readOps: 1, writeOps: 2 }],
  });
  assert.deepEqual(v1IoStats('Total 0\n', 'Total 0\n'), { devices: [] });
});

test('v2 statistics from real file contents', () => {
  const memory = v2MemoryStats({
    current: '7364608\n',
    peak: '9000000\n',
    max: 'max\n',
    stat: 'anon 1294336\nfile 5406720\nkernel 1024000\ninactive_file 4460544\nactive_file 946176\npgfault 2953\n',
    events: 'low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n',
    swapCurrent: '0\n',
    swapMax: '104857600\n',
  });
  assert.deepEqual(memory, {
    usage: 7364608,
    maxUsage: 9000000,
    limit: undefined,
    cache: 5406720,
    rss: 1294336,
    failcnt: 12,
    oomEvents: 3,
    oomKills: 2,
    swap: { usage: 0, limit: 104857600 },
    stat: {
      anon: 1294336,
      file: 5406720,
      kernel: 1024000,
      inactive_file: 4460544,
      active_file: 946176,
      pgfault: 2953,
    },
  });
  assert.deepEqual(
    v2CpuStats(
      'usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\ncore_sched.force_idle_usec 0\n' +
        'nr_periods 10\nnr_throttled 4\nthrottled_usec 5000\nnr_bursts 0\nburst_usec 0\n',
    ),
    {
      usageTotal: 123456000,
      usagePerCpu: [],
      usageUser: 100000000,
      usageSystem: 23456000,
      throttling: { periods: 10, throttledPeriods: 4, throttledTime: 5000000 },
    },
  );
  assert.deepEqual(
    v2IoStats(
      '8:0 rbytes=1459200 wbytes=314773504 rios=192 wios=353 dbytes=0 dios=0\n254:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n',
    ),
    {
      devices: [
        { major: 8, minor: 0, readBytes: 1459200, writeBytes: 314773504, readOps: 192, writeOps: 353 },
        { major: 254, minor: 0, readBytes: 4096, writeBytes: 0, readOps: 1, writeOps: 0 },
      ],
    },
  );
  assert.deepEqual(pidsStats('3\n', 'max\n'), { current: 3, limit: undefined });
  assert.deepEqual(pidsStats('3\n', '10\n'), { current: 3, limit: 10 });
});
