import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsMessage } from './assert-message.js';
import {
  containerResources,
  containerRlimits,
  RLIMIT_UNLIMITED,
  type HostResources,
} from '../../../src/engine/resources.js';
import type { Resources } from '../../../src/engine/docker-types.js';
import type { Device, Resources as OciResources } from '../../../src/oci/runtime-spec.js';

const MiB = 1024 * 1024;

const DEVICES: Record<string, Device> = {
  '/dev/sda': { type: 'b', path: '/dev/sda', major: 8, minor: 0 },
  '/dev/nvme0n1': { type: 'b', path: '/dev/nvme0n1', major: 259, minor: 0 },
};

function host(overrides: Partial<HostResources> = {}): HostResources & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    cgroupVersion: 1,
    cpuCount: 4,
    swapAccounting: true,
    statDevice: (path) => {
      const device = DEVICES[path];
      if (device === undefined) throw new Error(`ENOENT: no such file or directory, stat '${path}'`);
      return [device];
    },
    warn: (message) => warnings.push(message),
    warnings,
    ...overrides,
  };
}

// [name, HostConfig resources, expected linux.resources] as Docker produces them
// (adaptContainerSettings + WithResources).
const cases: Array<[string, Resources, OciResources]> = [
  ['nothing', {}, {}],
  [
    '--memory: swap defaults to twice the memory',
    { Memory: 64 * MiB },
    { memory: { limit: 64 * MiB, swap: 128 * MiB } },
  ],
  ['--memory-swap -1: unlimited swap', { Memory: 64 * MiB, MemorySwap: -1 }, { memory: { limit: 64 * MiB } }],
  [
    '--memory-swap',
    { Memory: 64 * MiB, MemorySwap: 100 * MiB },
    { memory: { limit: 64 * MiB, swap: 100 * MiB } },
  ],
  [
    '--memory-reservation, --memory-swappiness, --oom-kill-disable, --kernel-memory-tcp',
    { MemoryReservation: 32 * MiB, MemorySwappiness: 10, OomKillDisable: true, KernelMemoryTCP: 8 * MiB },
    { memory: { reservation: 32 * MiB, swappiness: 10, disableOOMKiller: true, kernelTCP: 8 * MiB } },
  ],
  ['swappiness -1 means unset', { MemorySwappiness: -1 }, {}],
  ['--cpus 1.5', { NanoCpus: 1.5e9 }, { cpu: { period: 100000, quota: 150000 } }],
  ['--cpus 0.001', { NanoCpus: 1e6 }, { cpu: { period: 100000, quota: 100 } }],
  [
    '--cpu-period/--cpu-quota',
    { CpuPeriod: 50000, CpuQuota: 25000 },
    { cpu: { period: 50000, quota: 25000 } },
  ],
  ['--cpu-quota -1', { CpuQuota: -1 }, { cpu: { quota: -1 } }],
  [
    '--cpu-shares, --cpuset-cpus, --cpuset-mems, realtime',
    {
      CpuShares: 512,
      CpusetCpus: '0-1,3',
      CpusetMems: '0',
      CpuRealtimePeriod: 1000000,
      CpuRealtimeRuntime: 950000,
    },
    { cpu: { shares: 512, cpus: '0-1,3', mems: '0', realtimePeriod: 1000000, realtimeRuntime: 950000 } },
  ],
  ['--pids-limit', { PidsLimit: 100 }, { pids: { limit: 100 } }],
  ['--pids-limit 0 is unlimited', { PidsLimit: 0 }, { pids: { limit: -1 } }],
  ['--pids-limit -1 is unlimited', { PidsLimit: -1 }, { pids: { limit: -1 } }],
  [
    '--blkio-weight and device limits',
    {
      BlkioWeight: 300,
      BlkioWeightDevice: [{ Path: '/dev/sda', Weight: 200 }],
      BlkioDeviceReadBps: [{ Path: '/dev/sda', Rate: 1048576 }],
      BlkioDeviceWriteBps: [{ Path: '/dev/nvme0n1', Rate: 2048 }],
      BlkioDeviceReadIOps: [{ Path: '/dev/sda', Rate: 100 }],
      BlkioDeviceWriteIOps: [{ Path: '/dev/sda', Rate: 50 }],
    },
    {
      blockIO: {
        weight: 300,
        weightDevice: [{ major: 8, minor: 0, weight: 200 }],
        throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }],
        throttleWriteBpsDevice: [{ major: 259, minor: 0, rate: 2048 }],
        throttleReadIOPSDevice: [{ major: 8, minor: 0, rate: 100 }],
        throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 50 }],
      },
    },
  ],
];

for (const [name, resources, expected] of cases) {
  test(`resources: ${name}`, () => {
    assert.deepEqual(containerResources(resources, host()), expected);
  });
}

// Docker's messages (verifyPlatformContainerResources, getCPUResources).
const errors: Array<[Resources, RegExp]> = [
  [{ Memory: 4 * MiB }, /^Minimum memory limit allowed is 6MB$/],
  [
    { Memory: 64 * MiB, MemorySwap: 32 * MiB },
    /^Minimum memoryswap limit should be larger than memory limit, see usage$/,
  ],
  [
    { MemorySwap: 64 * MiB },
    /^You should always set the Memory limit when using Memoryswap limit, see usage$/,
  ],
  [{ MemorySwappiness: 101 }, /^Invalid value: 101, valid memory swappiness range is 0-100$/],
  [{ MemoryReservation: MiB }, /^Minimum memory reservation allowed is 6MB$/],
  [
    { Memory: 8 * MiB, MemoryReservation: 16 * MiB },
    /^Minimum memory limit can not be less than memory reservation limit, see usage$/,
  ],
  [
    { NanoCpus: 1e9, CpuPeriod: 100000 },
    /^Conflicting options: Nano CPUs and CPU Period cannot both be set$/,
  ],
  [{ NanoCpus: 1e9, CpuQuota: 50000 }, /^Conflicting options: Nano CPUs and CPU Quota cannot both be set$/],
  [{ NanoCpus: 5e9 }, /^Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available$/],
  [{ CpuShares: -1 }, /^shares: invalid argument$/],
  [
    { CpuPeriod: 999 },
    /^CPU cfs period can not be less than 1ms \(i\.e\. 1000\) or larger than 1s \(i\.e\. 1000000\)$/,
  ],
  [{ CpuQuota: 999 }, /^CPU cfs quota can not be less than 1ms \(i\.e\. 1000\)$/],
  [
    { CpuRealtimePeriod: 1000, CpuRealtimeRuntime: 2000 },
    /^cpu-rt-runtime cannot be higher than cpu-rt-period$/,
  ],
  [{ CpusetCpus: '0-a' }, /^Invalid value 0-a for cpuset cpus: invalid format: 0-a$/],
  [{ CpusetCpus: '2-7' }, /^Requested CPUs are not available - requested 2-7, available: 0-3$/],
  [{ CpusetMems: '1,,2' }, /^Invalid value 1,,2 for cpuset mems: invalid format: 1,,2$/],
  // Found by the fuzzer: an id beyond any safe integer looped forever, many wide ranges exhausted the heap.
  [{ CpusetCpus: '18446744073709551615' }, /^Invalid value 18446744073709551615 for cpuset cpus/],
  [
    { CpusetCpus: Array.from({ length: 20_000 }, () => '0-65535').join(',') },
    /^Requested CPUs are not available/,
  ],
  [{ CpusetMems: '0-65536' }, /^Invalid value 0-65536 for cpuset mems/],
  [{ BlkioWeight: 5 }, /^Range of blkio weight is from 10 to 1000$/],
  [
    { BlkioWeightDevice: [{ Path: '/dev/sda', Weight: 2000 }] },
    /^invalid weight for device: \/dev\/sda:2000$/,
  ],
  [
    { BlkioDeviceReadBps: [{ Path: '/dev/nope', Rate: 1 }] },
    /^BlkioDeviceReadBps\[0\]: ENOENT: no such file/,
  ],
  [
    { IOMaximumBandwidth: 10 },
    /^Invalid QoS settings: linux does not support Maximum IO Bandwidth or Maximum IO IOps$/,
  ],
];

for (const [resources, expected] of errors) {
  test(`resources refused: ${JSON.stringify(resources)}`, () => {
    throwsMessage(() => containerResources(resources, host()), expected);
  });
}

test('without swap accounting the swap limit is dropped with a warning, like Docker', () => {
  const h = host({ swapAccounting: false });
  assert.deepEqual(containerResources({ Memory: 64 * MiB }, h), { memory: { limit: 64 * MiB } });
  assert.match(h.warnings[0] ?? '', /does not support swap limit capabilities/);
});

test('cgroup v2 drops what it has no file for, with Docker warnings, and refuses realtime', () => {
  const h = host({ cgroupVersion: 2 });
  assert.deepEqual(
    containerResources(
      { Memory: 64 * MiB, MemorySwappiness: 0, OomKillDisable: true, KernelMemoryTCP: MiB },
      h,
    ),
    { memory: { limit: 64 * MiB, swap: 128 * MiB } },
  );
  assert.equal(h.warnings.length, 3);
  throwsMessage(
    () => containerResources({ CpuRealtimeRuntime: 1000 }, h),
    /Your kernel does not support CPU real-time scheduler/,
  );
});

test('a warning when the OOM killer is off without a memory limit', () => {
  const h = host();
  containerResources({ OomKillDisable: true }, h);
  assert.match(h.warnings[0] ?? '', /OOM killer is disabled for the container, but no memory limit is set/);
});

test('ulimits: RLIMIT_ names, -1 is unlimited, the container wins over daemon defaults', () => {
  assert.deepEqual(
    containerRlimits(
      [
        { Name: 'nofile', Soft: 1024, Hard: 2048 },
        { Name: 'memlock', Soft: -1, Hard: -1 },
      ],
      [
        { Name: 'nofile', Soft: 1, Hard: 1 },
        { Name: 'nproc', Soft: 512, Hard: 512 },
      ],
    ),
    [
      { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 },
      { type: 'RLIMIT_MEMLOCK', soft: RLIMIT_UNLIMITED, hard: RLIMIT_UNLIMITED },
      { type: 'RLIMIT_NPROC', soft: 512, hard: 512 },
    ],
  );
  assert.deepEqual(containerRlimits(null), []);
  throwsMessage(() => containerRlimits([{ Name: 'as', Soft: 1, Hard: 1 }]), /^invalid ulimit type: as$/);
  throwsMessage(
    () => containerRlimits([{ Name: 'nofile', Soft: 10, Hard: 5 }]),
    /^ulimit soft limit must be less than or equal to hard limit: 10 > 5$/,
  );
  throwsMessage(
    () => containerRlimits([{ Name: 'core', Soft: -1, Hard: 5 }]),
    /soft limit must be less than or equal/,
  );
});
