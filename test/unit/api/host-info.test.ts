import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  backingFilesystem,
  cgroupFeatures,
  cgroupVersion,
  cgroupWarnings,
  goArch,
  hostFacts,
  parseMountinfo,
  parseOsRelease,
  type FileProbe,
} from '../../../src/api/host-info.js';

const HYBRID = `22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw
27 25 0:24 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw shared:12 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/pids rw shared:13 - cgroup cgroup rw,pids
40 22 0:30 / /var/lib/berth rw shared:20 - xfs /dev/vdb rw
41 22 0:31 / /var/lib/berth\\040data rw shared:21 - btrfs /dev/vdc rw
`;

const UNIFIED = `22 1 259:1 / / rw - ext4 /dev/vda rw
25 22 0:22 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw,nsdelegate
`;

const probe = (files: Record<string, string>): FileProbe => ({
  exists: (path) => Object.hasOwn(files, path),
  read: (path) => files[path],
});

test('mountinfo fields and escapes are read', () => {
  const mounts = parseMountinfo(HYBRID);
  assert.equal(mounts.length, 8);
  assert.deepEqual(mounts[3], {
    mountPoint: '/sys/fs/cgroup/memory',
    fsType: 'cgroup',
    superOptions: ['rw', 'memory'],
  });
  assert.equal(mounts[7]?.mountPoint, '/var/lib/berth data');
});

test('cgroup version: 2 only when /sys/fs/cgroup itself is cgroup2', () => {
  assert.equal(cgroupVersion(parseMountinfo(HYBRID)), '1');
  assert.equal(cgroupVersion(parseMountinfo(UNIFIED)), '2');
});

test('v1 features come from the controller files', () => {
  const features = cgroupFeatures(
    parseMountinfo(HYBRID),
    probe({
      '/sys/fs/cgroup/memory/memory.limit_in_bytes': '',
      '/sys/fs/cgroup/memory/memory.oom_control': '',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.shares': '',
    }),
  );
  assert.deepEqual(features, {
    MemoryLimit: true,
    SwapLimit: false,
    KernelMemoryTCP: false,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: false,
    PidsLimit: true,
    OomKillDisable: true,
  });
  assert.deepEqual(cgroupWarnings(features, '1'), [
    'WARNING: No swap limit support',
    'WARNING: No cpuset support',
  ]);
});

test('v2 features come from cgroup.controllers; oom-kill-disable is not a v2 warning', () => {
  const features = cgroupFeatures(
    parseMountinfo(UNIFIED),
    probe({ '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory\n' }),
  );
  assert.equal(features.MemoryLimit, true);
  assert.equal(features.CPUSet, true);
  assert.equal(features.PidsLimit, false);
  assert.equal(features.OomKillDisable, false);
  assert.deepEqual(cgroupWarnings(features, '2'), ['WARNING: No pids limit support']);
});

test('the backing filesystem is the deepest mount above the path', () => {
  const mounts = parseMountinfo(HYBRID);
  assert.equal(backingFilesystem(mounts, '/var/lib/berth'), 'xfs');
  assert.equal(backingFilesystem(mounts, '/var/lib/berth/images'), 'xfs');
  assert.equal(backingFilesystem(mounts, '/var/lib/berth data/x'), 'btrfs');
  assert.equal(backingFilesystem(mounts, '/var/lib/berthx'), 'ext4');
  assert.equal(backingFilesystem([], '/x'), 'unknown');
});

test('os-release values lose their quotes', () => {
  const values = parseOsRelease(
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nID=debian\n# comment\nNAME=\'Quoted \\"x\\"\'\n',
  );
  assert.equal(values.PRETTY_NAME, 'Debian GNU/Linux 12 (bookworm)');
  assert.equal(values.VERSION_ID, '12');
  assert.equal(values.ID, 'debian');
});

test('node architectures are reported as Go names', () => {
  assert.equal(goArch('x64'), 'amd64');
  assert.equal(goArch('arm64'), 'arm64');
  assert.equal(goArch('ia32'), '386');
});

test('host facts of this machine are plausible', async () => {
  const facts = await hostFacts('/');
  assert.ok(facts.ncpu >= 1);
  assert.ok(facts.memTotal > 0);
  assert.match(facts.kernelVersion, /^\d+\.\d+/);
  assert.ok(facts.cgroupVersion === '1' || facts.cgroupVersion === '2');
  assert.notEqual(facts.backingFilesystem, 'unknown');
});
