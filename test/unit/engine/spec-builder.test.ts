/**
 * buildSpec against what Docker's daemon puts in config.json for the same `docker run` flags
 * (moby daemon/oci_linux.go, oci/defaults.go), one flag at a time, and every result through
 * validateSpec.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rejectsMessage } from './assert-message.js';
import { buildSpec, type BuildSpecInput } from '../../../src/engine/spec-builder.js';
import { validateSpec } from '../../../src/oci/validate.js';
import { defaultSeccompProfile } from '../../../src/oci/default-seccomp.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../../../src/oci/defaults.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from '../../../src/linux/capabilities.js';
import type { Device, Mount, Spec } from '../../../src/oci/runtime-spec.js';

const ID = '4f1c2a3b5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081';
const MiB = 1024 * 1024;
const FUSE: Device = { type: 'c', path: '/dev/fuse', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 };

type Overrides = Partial<Omit<BuildSpecInput, 'config' | 'hostConfig'>> & {
  config?: BuildSpecInput['config'];
  hostConfig?: BuildSpecInput['hostConfig'];
};

async function build(overrides: Overrides = {}): Promise<Spec> {
  const warnings: string[] = [];
  const spec = await buildSpec({
    id: ID,
    name: 'test',
    config: { Cmd: ['sh'] },
    hostConfig: {},
    image: { config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] } },
    rootfs: '/var/lib/berth/rootfs/c1',
    containerDir: '/var/lib/berth/containers/c1',
    mounts: [],
    cgroupVersion: 1,
    user: { uid: 0, gid: 0, additionalGids: [0] },
    cpuCount: 2,
    kernelRelease: '6.18.0',
    hostHostname: 'the-host',
    statDevice: (path) => {
      if (path === '/dev/fuse') return [FUSE];
      throw new Error(`ENOENT: no such file or directory, stat '${path}'`);
    },
    hostDevices: () => [FUSE],
    onWarning: (message) => warnings.push(message),
    ...overrides,
  });
  // Everything buildSpec produces must pass the runtime's own validation.
  validateSpec(JSON.parse(JSON.stringify(spec)));
  return spec;
}

const mount = (spec: Spec, destination: string): Mount | undefined =>
  spec.mounts?.find((m) => m.destination === destination);
const destinations = (spec: Spec): string[] => (spec.mounts ?? []).map((m) => m.destination);

test('docker run IMAGE sh: Docker defaults', async () => {
  const spec = await build();
  assert.deepEqual(spec.process, {
    terminal: false,
    user: { uid: 0, gid: 0, additionalGids: [0] },
    args: ['sh'],
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=4f1c2a3b5d6e'],
    cwd: '/',
    capabilities: {
      bounding: DEFAULT_CAPABILITIES,
      effective: DEFAULT_CAPABILITIES,
      permitted: DEFAULT_CAPABILITIES,
    },
    noNewPrivileges: false,
    oomScoreAdj: 0,
  });
  assert.deepEqual(spec.root, { path: '/var/lib/berth/rootfs/c1', readonly: false });
  assert.equal(spec.hostname, '4f1c2a3b5d6e');
  assert.equal(spec.domainname, undefined);
  assert.equal(spec.annotations, undefined);
  assert.deepEqual(spec.mounts, [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864'],
    },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    {
      destination: '/sys/fs/cgroup',
      type: 'cgroup',
      source: 'cgroup',
      options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
    },
    {
      destination: '/etc/resolv.conf',
      type: 'bind',
      source: '/var/lib/berth/containers/c1/resolv.conf',
      options: ['rbind', 'rprivate'],
    },
    {
      destination: '/etc/hostname',
      type: 'bind',
      source: '/var/lib/berth/containers/c1/hostname',
      options: ['rbind', 'rprivate'],
    },
    {
      destination: '/etc/hosts',
      type: 'bind',
      source: '/var/lib/berth/containers/c1/hosts',
      options: ['rbind', 'rprivate'],
    },
  ]);
  assert.deepEqual(spec.linux, {
    namespaces: [{ type: 'mount' }, { type: 'network' }, { type: 'uts' }, { type: 'pid' }, { type: 'ipc' }],
    devices: [],
    cgroupsPath: `/berth/${ID}`,
    resources: { devices: [{ allow: false, access: 'rwm' }] },
    sysctl: { 'net.ipv4.ping_group_range': '0 2147483647', 'net.ipv4.ip_unprivileged_port_start': '0' },
    maskedPaths: DEFAULT_MASKED_PATHS,
    readonlyPaths: DEFAULT_READONLY_PATHS,
    seccomp: defaultSeccompProfile(DEFAULT_CAPABILITIES),
  });
  assert.equal(spec.hooks, undefined);
});

test('-u resolves against the rootfs unless the user is given', async () => {
  const spec = await build({ user: { uid: 1000, gid: 1000, additionalGids: [1000, 27] } });
  assert.deepEqual(spec.process?.user, { uid: 1000, gid: 1000, additionalGids: [1000, 27] });
  // Docker: a non-root user keeps only the bounding set; execve clears the rest.
  assert.deepEqual(spec.process?.capabilities, { bounding: DEFAULT_CAPABILITIES });
});

test('image Entrypoint/Cmd/Env/WorkingDir/User and the Config overriding them', async () => {
  const image = {
    config: {
      Entrypoint: ['/docker-entrypoint.sh'],
      Cmd: ['nginx', '-g', 'daemon off;'],
      Env: ['PATH=/opt/bin:/bin', 'NGINX_VERSION=1.27'],
      WorkingDir: '/usr/share/nginx',
    },
  };
  const spec = await build({ image, config: {} });
  assert.deepEqual(spec.process?.args, ['/docker-entrypoint.sh', 'nginx', '-g', 'daemon off;']);
  assert.deepEqual(spec.process?.env, ['PATH=/opt/bin:/bin', 'HOSTNAME=4f1c2a3b5d6e', 'NGINX_VERSION=1.27']);
  assert.equal(spec.process?.cwd, '/usr/share/nginx');
  const overridden = await build({
    image,
    config: {
      Entrypoint: ['/bin/sh', '-c'],
      Env: ['NGINX_VERSION=2', 'EXTRA=1'],
      WorkingDir: '/tmp',
      Tty: true,
    },
  });
  assert.deepEqual(overridden.process?.args, ['/bin/sh', '-c']);
  assert.deepEqual(overridden.process?.env, [
    'PATH=/opt/bin:/bin',
    'HOSTNAME=4f1c2a3b5d6e',
    'TERM=xterm',
    'NGINX_VERSION=2',
    'EXTRA=1',
  ]);
  assert.equal(overridden.process?.cwd, '/tmp');
  assert.equal(overridden.process?.terminal, true);
  await rejectsMessage(
    build({ image: {}, config: {} }),
    /^BerthError: No command specified$|No command specified/,
  );
});

interface FlagCase {
  name: string;
  input: Overrides;
  check: (spec: Spec) => void;
}

// One `docker run` flag at a time: what Docker puts in the spec.
const flagCases: FlagCase[] = [
  {
    name: '-h/--domainname',
    input: { config: { Cmd: ['sh'], Hostname: 'web', Domainname: 'example.org' } },
    check: (s) => {
      assert.equal(s.hostname, 'web');
      assert.equal(s.domainname, 'example.org');
      assert.ok(s.process?.env?.includes('HOSTNAME=web'));
    },
  },
  {
    name: '--network host: the host name, no network namespace, no network sysctls',
    input: { hostConfig: { NetworkMode: 'host' } },
    check: (s) => {
      assert.equal(s.hostname, 'the-host');
      assert.ok(!s.linux?.namespaces?.some((n) => n.type === 'network'));
      assert.deepEqual(s.linux?.sysctl, {});
    },
  },
  {
    name: '--uts host: no hostname',
    input: { hostConfig: { UTSMode: 'host' } },
    check: (s) => {
      assert.equal(s.hostname, undefined);
      assert.ok(s.process?.env?.includes('HOSTNAME=4f1c2a3b5d6e'));
    },
  },
  {
    name: '--cap-add/--cap-drop',
    input: { hostConfig: { CapAdd: ['NET_ADMIN', 'cap_sys_ptrace'], CapDrop: ['chown', 'CAP_NET_RAW'] } },
    check: (s) => {
      const expected = [
        ...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN' && c !== 'CAP_NET_RAW'),
        'CAP_NET_ADMIN',
        'CAP_SYS_PTRACE',
      ];
      assert.deepEqual(s.process?.capabilities?.effective, expected);
      // The default seccomp profile follows the capabilities (ptrace allowed with CAP_SYS_PTRACE).
      assert.deepEqual(s.linux?.seccomp, defaultSeccompProfile(expected));
      assert.ok(s.linux?.seccomp?.syscalls?.some((r) => r.names.includes('ptrace')));
    },
  },
  {
    name: '--privileged',
    input: { hostConfig: { Privileged: true, CapDrop: ['ALL'] } },
    check: (s) => {
      assert.deepEqual(s.process?.capabilities?.effective, ALL_CAPABILITIES);
      assert.equal(s.linux?.seccomp, undefined);
      assert.deepEqual(s.linux?.maskedPaths, []);
      assert.deepEqual(s.linux?.readonlyPaths, []);
      assert.deepEqual(mount(s, '/sys')?.options, ['nosuid', 'noexec', 'nodev']);
      assert.deepEqual(mount(s, '/sys/fs/cgroup')?.options, ['nosuid', 'noexec', 'nodev', 'relatime']);
      assert.deepEqual(s.linux?.devices, [FUSE]);
      assert.deepEqual(s.linux?.resources?.devices, [{ allow: true, access: 'rwm' }]);
    },
  },
  {
    name: '--privileged with the capabilities the engine can grant',
    input: { hostConfig: { Privileged: true }, availableCapabilities: ['CAP_CHOWN', 'CAP_SYS_ADMIN'] },
    check: (s) => assert.deepEqual(s.process?.capabilities?.bounding, ['CAP_CHOWN', 'CAP_SYS_ADMIN']),
  },
  {
    name: '--read-only: root, network files and /sys/fs/cgroup read-only; /dev, /proc, shm stay writable',
    input: { hostConfig: { ReadonlyRootfs: true, Tmpfs: { '/run': '' } } },
    check: (s) => {
      assert.equal(s.root?.readonly, true);
      assert.deepEqual(mount(s, '/etc/hosts')?.options, ['rbind', 'ro', 'rprivate']);
      assert.ok(mount(s, '/sys/fs/cgroup')?.options?.includes('ro'));
      for (const d of ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue'])
        assert.ok(!mount(s, d)?.options?.includes('ro'), d);
      // User mounts keep their own mode.
      assert.ok(!mount(s, '/run')?.options?.includes('ro'));
    },
  },
  {
    name: '--read-only --privileged: /sys writable again',
    input: { hostConfig: { ReadonlyRootfs: true, Privileged: true } },
    check: (s) => assert.ok(!mount(s, '/sys')?.options?.includes('ro')),
  },
  {
    name: '--tmpfs',
    input: { hostConfig: { Tmpfs: { '/run': 'rw,noexec,nosuid,size=65536k', '/tmp/': '' } } },
    check: (s) => {
      assert.deepEqual(mount(s, '/run'), {
        destination: '/run',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nodev', 'rprivate', 'rw', 'noexec', 'nosuid', 'size=65536k'],
      });
      assert.deepEqual(mount(s, '/tmp')?.options, ['noexec', 'nosuid', 'nodev', 'rprivate']);
    },
  },
  {
    name: '--shm-size',
    input: { hostConfig: { ShmSize: 128 * MiB } },
    check: (s) =>
      assert.deepEqual(mount(s, '/dev/shm')?.options, [
        'nosuid',
        'noexec',
        'nodev',
        'mode=1777',
        'size=134217728',
      ]),
  },
  {
    name: '--ipc none: no /dev/shm',
    input: { hostConfig: { IpcMode: 'none' } },
    check: (s) => assert.equal(mount(s, '/dev/shm'), undefined),
  },
  {
    name: '--ipc host: the host /dev/shm and no ipc namespace',
    input: { hostConfig: { IpcMode: 'host' } },
    check: (s) => {
      assert.deepEqual(mount(s, '/dev/shm'), {
        destination: '/dev/shm',
        type: 'bind',
        source: '/dev/shm',
        options: ['rbind', 'rprivate'],
      });
      assert.ok(!s.linux?.namespaces?.some((n) => n.type === 'ipc'));
    },
  },
  {
    name: '--ipc shareable with the engine shm',
    input: { hostConfig: { IpcMode: 'shareable' }, shmPath: '/var/lib/berth/containers/c1/mounts/shm' },
    check: (s) => assert.equal(mount(s, '/dev/shm')?.source, '/var/lib/berth/containers/c1/mounts/shm'),
  },
  {
    name: '--ipc container:other',
    input: {
      hostConfig: { IpcMode: 'container:other' },
      shmPath: '/var/lib/berth/containers/other/mounts/shm',
      namespacePath: (kind, ref) => `/proc/4242/ns/${kind}-${ref}`,
    },
    check: (s) => {
      assert.deepEqual(
        s.linux?.namespaces?.find((n) => n.type === 'ipc'),
        { type: 'ipc', path: '/proc/4242/ns/ipc-other' },
      );
      assert.equal(mount(s, '/dev/shm')?.type, 'bind');
    },
  },
  {
    name: '--ulimit over daemon default-ulimits',
    input: {
      hostConfig: { Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }] },
      defaultUlimits: [
        { Name: 'nofile', Soft: 64, Hard: 64 },
        { Name: 'nproc', Soft: 99, Hard: 99 },
      ],
    },
    check: (s) =>
      assert.deepEqual(s.process?.rlimits, [
        { type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 },
        { type: 'RLIMIT_NPROC', soft: 99, hard: 99 },
      ]),
  },
  {
    name: '--security-opt no-new-privileges',
    input: { hostConfig: { SecurityOpt: ['no-new-privileges'] } },
    check: (s) => assert.equal(s.process?.noNewPrivileges, true),
  },
  {
    name: '--security-opt seccomp=unconfined, apparmor and label accepted',
    input: { hostConfig: { SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined', 'label=disable'] } },
    check: (s) => {
      assert.equal(s.linux?.seccomp, undefined);
      assert.equal(s.process?.apparmorProfile, undefined);
    },
  },
  {
    name: '--security-opt seccomp=<json>',
    input: {
      hostConfig: {
        SecurityOpt: [
          `seccomp=${JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] })}`,
        ],
      },
    },
    check: (s) =>
      assert.deepEqual(s.linux?.seccomp, {
        defaultAction: 'SCMP_ACT_ALLOW',
        syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }],
      }),
  },
  {
    name: '--security-opt systempaths=unconfined',
    input: { hostConfig: { SecurityOpt: ['systempaths=unconfined'] } },
    check: (s) => {
      assert.deepEqual(s.linux?.maskedPaths, []);
      assert.deepEqual(s.linux?.readonlyPaths, []);
    },
  },
  {
    name: '--security-opt writable-cgroups=true',
    input: { hostConfig: { SecurityOpt: ['writable-cgroups=true'] } },
    check: (s) => assert.ok(!mount(s, '/sys/fs/cgroup')?.options?.includes('ro')),
  },
  {
    name: 'HostConfig.MaskedPaths/ReadonlyPaths replace the defaults',
    input: { hostConfig: { MaskedPaths: ['/proc/kcore'], ReadonlyPaths: [] } },
    check: (s) => {
      assert.deepEqual(s.linux?.maskedPaths, ['/proc/kcore']);
      assert.deepEqual(s.linux?.readonlyPaths, []);
    },
  },
  {
    name: '--oom-score-adj',
    input: { hostConfig: { OomScoreAdj: 500 } },
    check: (s) => assert.equal(s.process?.oomScoreAdj, 500),
  },
  {
    name: '--sysctl',
    input: { hostConfig: { Sysctls: { 'net.core.somaxconn': '1024', 'kernel.shmmax': '4096' } } },
    check: (s) =>
      assert.deepEqual(s.linux?.sysctl, {
        'net.ipv4.ping_group_range': '0 2147483647',
        'net.ipv4.ip_unprivileged_port_start': '0',
        'net.core.somaxconn': '1024',
        'kernel.shmmax': '4096',
      }),
  },
  {
    name: '-m/--memory-swap/--cpus/--pids-limit',
    input: { hostConfig: { Memory: 64 * MiB, NanoCpus: 5e8, PidsLimit: 50, CpuShares: 256 } },
    check: (s) => {
      const r = s.linux?.resources;
      assert.deepEqual(r?.memory, { limit: 64 * MiB, swap: 128 * MiB });
      assert.deepEqual(r?.cpu, { shares: 256, period: 100000, quota: 50000 });
      assert.deepEqual(r?.pids, { limit: 50 });
    },
  },
  {
    name: '--device and --device-cgroup-rule',
    input: {
      hostConfig: {
        Devices: [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }],
        DeviceCgroupRules: ['c 1:3 r'],
      },
    },
    check: (s) => {
      assert.deepEqual(s.linux?.devices, [FUSE]);
      assert.deepEqual(s.linux?.resources?.devices, [
        { allow: false, access: 'rwm' },
        { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' },
        { allow: true, type: 'c', major: 1, minor: 3, access: 'r' },
      ]);
    },
  },
  {
    name: '--cgroup-parent',
    input: { hostConfig: { CgroupParent: 'tenant/a' } },
    check: (s) => assert.equal(s.linux?.cgroupsPath, `/tenant/a/${ID}`),
  },
  {
    name: '--cgroup-parent cannot climb out',
    input: { hostConfig: { CgroupParent: '/../../escape' } },
    check: (s) => assert.equal(s.linux?.cgroupsPath, `/escape/${ID}`),
  },
  {
    name: '--cgroupns private on cgroup v1',
    input: { hostConfig: { CgroupnsMode: 'private' } },
    check: (s) => assert.ok(s.linux?.namespaces?.some((n) => n.type === 'cgroup')),
  },
  {
    name: 'cgroup v2 default: a cgroup namespace of its own',
    input: { cgroupVersion: 2 },
    check: (s) => assert.ok(s.linux?.namespaces?.some((n) => n.type === 'cgroup')),
  },
  {
    name: '--pid host / --pid container:x',
    input: {
      hostConfig: { PidMode: 'container:db' },
      namespacePath: (kind, ref) => `/proc/77/ns/${kind}#${ref}`,
    },
    check: (s) =>
      assert.deepEqual(
        s.linux?.namespaces?.find((n) => n.type === 'pid'),
        { type: 'pid', path: '/proc/77/ns/pid#db' },
      ),
  },
  {
    name: '--network container:x keeps the network files of the engine',
    input: { hostConfig: { NetworkMode: 'container:web' }, namespacePath: () => '/proc/9/ns/net' },
    check: (s) => {
      assert.deepEqual(
        s.linux?.namespaces?.find((n) => n.type === 'network'),
        { type: 'network', path: '/proc/9/ns/net' },
      );
      assert.deepEqual(s.linux?.sysctl, {});
    },
  },
  {
    name: 'a prepared network namespace',
    input: { networkNamespacePath: '/run/berth/netns/c1' },
    check: (s) =>
      assert.deepEqual(
        s.linux?.namespaces?.find((n) => n.type === 'network'),
        { type: 'network', path: '/run/berth/netns/c1' },
      ),
  },
  {
    name: '--annotation',
    input: { hostConfig: { Annotations: { 'org.example/key': 'v' } } },
    check: (s) => assert.deepEqual(s.annotations, { 'org.example/key': 'v' }),
  },
  {
    name: '-t with a console size',
    input: { config: { Cmd: ['sh'], Tty: true }, hostConfig: { ConsoleSize: [40, 120] } },
    check: (s) => {
      assert.equal(s.process?.terminal, true);
      assert.deepEqual(s.process?.consoleSize, { height: 40, width: 120 });
    },
  },
  {
    name: '--init',
    input: { hostConfig: { Init: true }, initPath: '/usr/libexec/berth/tini' },
    check: (s) => {
      assert.deepEqual(s.process?.args, ['/sbin/docker-init', '--', 'sh']);
      assert.deepEqual(mount(s, '/sbin/docker-init'), {
        destination: '/sbin/docker-init',
        type: 'bind',
        source: '/usr/libexec/berth/tini',
        options: ['bind', 'ro'],
      });
    },
  },
  {
    name: '--init is ignored in the host pid namespace',
    input: { hostConfig: { Init: true, PidMode: 'host' } },
    check: (s) => assert.deepEqual(s.process?.args, ['sh']),
  },
];

for (const { name, input, check } of flagCases) {
  test(`flag: ${name}`, async () => {
    check(await build(input));
  });
}

test('mounts: binds, volumes and tmpfs after the defaults, parents before children, network files replaceable', async () => {
  const spec = await build({
    mounts: [
      {
        type: 'bind',
        source: '/srv/deep',
        destination: '/data/a/b',
        readOnly: true,
        propagation: 'rprivate',
      },
      { type: 'bind', source: '/var/lib/berth/volumes/v/_data', destination: '/data' },
      { type: 'tmpfs', destination: '/cache', data: 'size=1m' },
      {
        type: 'bind',
        source: '/srv/hosts',
        destination: '/etc/hosts',
        readOnly: true,
        propagation: 'rprivate',
      },
      { type: 'bind', source: '/srv/one', destination: '/one', nonRecursive: true, propagation: 'rslave' },
    ],
    hostConfig: { Tmpfs: { '/data/a': '' } },
  });
  assert.deepEqual(destinations(spec).slice(7), [
    '/data',
    '/cache',
    '/one',
    '/etc/resolv.conf',
    '/etc/hostname',
    '/etc/hosts',
    '/data/a',
    '/data/a/b',
  ]);
  assert.deepEqual(mount(spec, '/etc/hosts'), {
    destination: '/etc/hosts',
    type: 'bind',
    source: '/srv/hosts',
    options: ['rbind', 'ro', 'rprivate'],
  });
  assert.deepEqual(mount(spec, '/data')?.options, ['rbind']);
  assert.deepEqual(mount(spec, '/one')?.options, ['bind', 'rslave']);
  assert.deepEqual(mount(spec, '/cache')?.options, ['noexec', 'nosuid', 'nodev', 'rprivate', 'size=1m']);
  assert.equal(spec.linux?.rootfsPropagation, 'rslave');
});

test('mounts: a user mount replaces the default one; a user /dev replaces everything under it', async () => {
  const shm = await build({ mounts: [{ type: 'bind', source: '/host/shm', destination: '/dev/shm' }] });
  assert.deepEqual(mount(shm, '/dev/shm'), {
    destination: '/dev/shm',
    type: 'bind',
    source: '/host/shm',
    options: ['rbind'],
  });
  const dev = await build({ mounts: [{ type: 'bind', source: '/dev', destination: '/dev' }] });
  assert.deepEqual(
    destinations(dev).filter((d) => d.startsWith('/dev')),
    ['/dev'],
  );
});

test('mounts: shared propagation makes the root shared', async () => {
  const spec = await build({
    mounts: [{ type: 'bind', source: '/mnt', destination: '/mnt', propagation: 'rshared' }],
  });
  assert.equal(spec.linux?.rootfsPropagation, 'shared');
});

// Docker's messages for invalid input.
const errorCases: Array<[string, Overrides, RegExp]> = [
  [
    'duplicate mount point',
    { mounts: [{ type: 'bind', source: '/a', destination: '/x' }], hostConfig: { Tmpfs: { '/x/': '' } } },
    /^Duplicate mount point: \/x$/,
  ],
  [
    'tmpfs on /',
    { hostConfig: { Tmpfs: { '/': '' } } },
    /^invalid specification: destination can't be '\/'$/,
  ],
  [
    'relative tmpfs',
    { hostConfig: { Tmpfs: { run: '' } } },
    /^invalid mount path: 'run' mount path must be absolute$/,
  ],
  [
    'bad tmpfs option',
    { hostConfig: { Tmpfs: { '/run': 'size=1m,exec,hugepages=1' } } },
    /^invalid tmpfs option \["hugepages" "1"\]$/,
  ],
  ['bad security opt', { hostConfig: { SecurityOpt: ['foo'] } }, /^invalid --security-opt 1: "foo"$/],
  [
    'bad seccomp JSON',
    { hostConfig: { SecurityOpt: ['seccomp={oops'] } },
    /^Decoding seccomp profile failed: /,
  ],
  ['memory too small', { hostConfig: { Memory: MiB } }, /^Minimum memory limit allowed is 6MB$/],
  [
    'nano cpus and period',
    { hostConfig: { NanoCpus: 1e9, CpuPeriod: 10000 } },
    /^Conflicting options: Nano CPUs and CPU Period cannot both be set$/,
  ],
  [
    'net sysctl with host network',
    { hostConfig: { NetworkMode: 'host', Sysctls: { 'net.ipv4.ip_forward': '1' } } },
    /^sysctl "net.ipv4.ip_forward" is not allowed in the hosts network namespace$/,
  ],
  ['unknown capability', { hostConfig: { CapAdd: ['FLY'] } }, /^unknown capability: "CAP_FLY"$/],
  [
    'oom score',
    { hostConfig: { OomScoreAdj: 1001 } },
    /^Invalid value 1001, range for oom score adj is \[-1000, 1000\]$/,
  ],
  ['negative shm size', { hostConfig: { ShmSize: -1 } }, /^SHM size can not be less than 0$/],
  ['isolation', { hostConfig: { Isolation: 'hyperv' } }, /^invalid isolation 'hyperv' on linux$/],
  ['ipc mode', { hostConfig: { IpcMode: 'shared' } }, /^invalid IPC mode: shared$/],
  [
    'domainname with the host uts namespace',
    { config: { Cmd: ['sh'], Domainname: 'x' }, hostConfig: { UTSMode: 'host' } },
    /domainname and the UTS mode/,
  ],
  ['--init without an init binary', { hostConfig: { Init: true } }, /--init: no init binary is configured/],
  [
    'ipc container without a shm',
    { hostConfig: { IpcMode: 'container:x' }, namespacePath: () => '/proc/1/ns/ipc' },
    /^invalid IPC mode: container:x: non-shareable IPC \(hint: use IpcMode:shareable for the donor container\)$/,
  ],
  [
    'bad ulimit',
    { hostConfig: { Ulimits: [{ Name: 'nofile', Soft: 2, Hard: 1 }] } },
    /ulimit soft limit must be less than or equal to hard limit: 2 > 1/,
  ],
  [
    'bad device rule',
    { hostConfig: { DeviceCgroupRules: ['c 1:3'] } },
    /^invalid device cgroup rule format: 'c 1:3'$/,
  ],
  [
    'relative working dir',
    { config: { Cmd: ['sh'], WorkingDir: 'x' } },
    /the working directory 'x' is invalid/,
  ],
];

for (const [name, input, expected] of errorCases) {
  test(`refused: ${name}`, async () => {
    await rejectsMessage(build(input), (err: unknown) => {
      assert.ok(err instanceof Error && 'kind' in err && err.kind === 'invalid-argument', String(err));
      assert.match(err.message, expected);
      return true;
    });
  });
}

test('the user is read from the rootfs when not given', async () => {
  const { mkdtemp, mkdir, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = await mkdtemp(join(tmpdir(), 'berth-spec-'));
  try {
    await mkdir(join(dir, 'etc'));
    await writeFile(
      join(dir, 'etc', 'passwd'),
      'root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n',
    );
    await writeFile(join(dir, 'etc', 'group'), 'root:x:0:\napp:x:1002:\nextra:x:5000:app\n');
    const image = { config: { User: 'app', Cmd: ['id'] } };
    const spec = await build({
      rootfs: dir,
      image,
      user: undefined,
      config: {},
      hostConfig: { GroupAdd: ['root'] },
    });
    assert.deepEqual(spec.process?.user, { uid: 1001, gid: 1002, additionalGids: [1002, 5000, 0] });
    await rejectsMessage(
      build({ rootfs: dir, user: undefined, config: { Cmd: ['id'], User: 'ghost' } }),
      /unable to find user ghost/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
