/**
 * Specs built by the engine's spec builder for `docker run`-like configurations, run by
 * berth-runtime on the busybox root filesystem: what the container sees must be what Docker
 * gives it for the same flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox, isRoot } from '../helpers/sandbox.js';
import { makeBundle, runtime } from '../helpers/bundle.js';
import { BUSYBOX_PATH_ENV } from '../../fixtures/busybox.js';
import { buildSpec, containerHostname } from '../../src/engine/spec-builder.js';
import { boundingCapabilities, devicesAt, listHostDevices } from '../../src/engine/host.js';
import type { ContainerConfig, HostConfig } from '../../src/engine/docker-types.js';
import { capabilityMask, DEFAULT_CAPABILITIES } from '../../src/linux/capabilities.js';
import type { Spec } from '../../src/oci/runtime-spec.js';

const MiB = 1024 * 1024;
const CGROUP_VERSION: 1 | 2 = existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes') ? 1 : 2;
const skip = isRoot() ? false : 'needs root';

const mask = (caps: string[]): string => capabilityMask(caps, 'test').toString(16).padStart(16, '0');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  spec: Spec;
}

/** `docker run` with this Config and HostConfig, the script as the command, on busybox. */
async function dockerRun(
  t: Parameters<typeof createSandbox>[0],
  name: string,
  script: string,
  config: ContainerConfig = {},
  hostConfig: HostConfig = {},
): Promise<Run> {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['true'], name);
  const id = randomBytes(32).toString('hex');
  const fullConfig: ContainerConfig = { ...config, Cmd: ['sh', '-c', script] };
  const fullHostConfig: HostConfig = { CgroupParent: sandbox.cgroupParent, ...hostConfig };
  // The files the engine writes for every container.
  const containerDir = join(sandbox.root, 'containers', name);
  await mkdir(containerDir, { recursive: true });
  const hostname = containerHostname({ id, config: fullConfig, hostConfig: fullHostConfig });
  await writeFile(join(containerDir, 'hostname'), `${hostname}\n`);
  await writeFile(join(containerDir, 'hosts'), `127.0.0.1\tlocalhost\n::1\tlocalhost\n`);
  await writeFile(join(containerDir, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  const spec = await buildSpec({
    id,
    name,
    config: fullConfig,
    hostConfig: fullHostConfig,
    image: { config: { Env: [BUSYBOX_PATH_ENV] } },
    rootfs: bundle.rootfs,
    containerDir,
    mounts: [],
    cgroupVersion: CGROUP_VERSION,
    hostDevices: () => listHostDevices(),
    statDevice: devicesAt,
    availableCapabilities: boundingCapabilities(),
  });
  bundle.spec = spec;
  await bundle.write();
  const result = await runtime(sandbox, ['run', '--bundle', bundle.dir, name]);
  return { ...result, spec };
}

const STATUS = 'grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status';

/**
 * berth-shim loads the seccomp filter after dropping capabilities, which the kernel allows only
 * with no_new_privs; Docker's default (no no-new-privileges, default profile) fails until the
 * runtime loads the filter before dropping capabilities when noNewPrivileges is false, as runc
 * does. The scenarios below that are not about that combination set no-new-privileges.
 */
const NNP = ['no-new-privileges'];

test('-u user --group-add, -e, -w, -h: user, groups, env, workdir, hostname', { skip }, async (t) => {
  const run = await dockerRun(
    t,
    'user',
    [
      'id',
      'pwd',
      'hostname',
      'cat /etc/hostname',
      'echo "FOO=$FOO HOSTNAME=$HOSTNAME PATH=$PATH"',
      STATUS,
      'touch /tmp/mine && stat -c "%u:%g" /tmp/mine',
    ].join('; '),
    { User: 'user', Env: ['FOO=bar'], WorkingDir: '/tmp', Hostname: 'web1' },
    { GroupAdd: ['nobody', '4242'], SecurityOpt: NNP },
  );
  assert.equal(run.code, 0, run.stderr);
  const out = run.stdout;
  // The kernel keeps supplementary groups sorted.
  assert.match(out, /^uid=1000\(user\) gid=1000\(user\) groups=1000\(user\),4242,65534\(nobody\)$/m);
  assert.match(out, /^\/tmp$/m);
  assert.match(out, /^web1\nweb1$/m);
  assert.match(out, new RegExp(`^FOO=bar HOSTNAME=web1 ${BUSYBOX_PATH_ENV}$`, 'm'));
  // Not root: no effective capabilities (Docker sets only the bounding set), default seccomp.
  assert.match(out, /^CapEff:\s+0000000000000000$/m);
  assert.match(out, /^Seccomp:\s+2$/m);
  assert.match(out, /^1000:1000$/m);
});

test('-u 1000:1000 and the default hostname', { skip }, async (t) => {
  const run = await dockerRun(
    t,
    'numeric',
    'id; hostname; echo "HOSTNAME=$HOSTNAME"',
    { User: '1000:1000' },
    { SecurityOpt: NNP },
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^uid=1000\(user\) gid=1000\(user\) groups=1000\(user\)$/m);
  assert.equal(run.spec.hostname?.length, 12);
  assert.match(run.stdout, new RegExp(`^${run.spec.hostname}\nHOSTNAME=${run.spec.hostname}$`, 'm'));
});

test(
  '--cap-drop/--cap-add, --sysctl, --device: CapEff, what the container may do, sysctls, devices',
  { skip },
  async (t) => {
    const run = await dockerRun(
      t,
      'caps',
      [
        STATUS,
        'touch /tmp/f; chown 1000 /tmp/f 2>/dev/null && echo chown=ok || echo chown=denied',
        'ip link set lo up 2>/dev/null && echo netadmin=ok || echo netadmin=denied',
        'echo ports=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)',
        'echo ping=$(cat /proc/sys/net/ipv4/ping_group_range)',
        'echo interrupts=$(wc -c < /proc/interrupts)',
        'echo msgmax=$(cat /proc/sys/kernel/msgmax)',
        'echo device=$(head -c 3 /dev/myzero | wc -c)',
      ].join('; '),
      {},
      {
        CapDrop: ['chown'],
        CapAdd: ['CAP_NET_ADMIN'],
        SecurityOpt: NNP,
        Sysctls: { 'kernel.msgmax': '4096' },
        Devices: [{ PathOnHost: '/dev/zero', PathInContainer: '/dev/myzero', CgroupPermissions: 'rwm' }],
      },
    );
    assert.equal(run.code, 0, run.stderr);
    const caps = [...DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN'), 'CAP_NET_ADMIN'];
    assert.match(run.stdout, new RegExp(`^CapEff:\\s+${mask(caps)}$`, 'm'));
    assert.match(run.stdout, /^Seccomp:\s+2$/m);
    assert.match(run.stdout, /^chown=denied$/m);
    assert.match(run.stdout, /^netadmin=ok$/m);
    assert.match(run.stdout, /^ports=0$/m);
    assert.match(run.stdout, /^ping=0\s+2147483647$/m);
    assert.match(run.stdout, /^interrupts=0$/m, 'masked by default');
    assert.match(run.stdout, /^msgmax=4096$/m);
    assert.match(run.stdout, /^device=3$/m);
  },
);

test(
  '--privileged: every capability, no seccomp, writable /sys, host devices, no masked paths',
  { skip },
  async (t) => {
    const run = await dockerRun(
      t,
      'priv',
      [
        STATUS,
        'grep " /sys sysfs " /proc/mounts',
        'mount -t tmpfs none /tmp && echo mount=ok',
        'echo interrupts=$(wc -c < /proc/interrupts)',
        'ls /dev/kvm /dev/loop-control 2>&1',
      ].join('; '),
      {},
      { Privileged: true },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^CapEff:\\s+${mask(boundingCapabilities())}$`, 'm'));
    assert.match(run.stdout, /^Seccomp:\s+0$/m);
    assert.match(run.stdout, /^sysfs \/sys sysfs rw,/m);
    assert.match(run.stdout, /^mount=ok$/m);
    assert.match(run.stdout, /^interrupts=[1-9]\d*$/m, '/proc/interrupts is not masked');
    for (const device of ['/dev/kvm', '/dev/loop-control'].filter((d) => existsSync(d)))
      assert.match(run.stdout, new RegExp(`^${device}$`, 'm'));
  },
);

test(
  '--read-only --tmpfs --shm-size: root and network files read-only, tmpfs and shm as asked',
  { skip },
  async (t) => {
    const run = await dockerRun(
      t,
      'readonly',
      [
        'touch /x 2>/dev/null && echo root=rw || echo root=ro',
        'echo >> /etc/hosts 2>/dev/null && echo hosts=rw || echo hosts=ro',
        'touch /run/x && echo run=rw',
        'cp /bin/busybox /run/bb && /run/bb true 2>/dev/null && echo run=exec || echo run=noexec',
        'grep " /run " /proc/mounts',
        'grep " /dev/shm " /proc/mounts',
        'head -c 1 /etc/resolv.conf && echo',
      ].join('; '),
      {},
      {
        ReadonlyRootfs: true,
        Tmpfs: { '/run': 'rw,noexec,nosuid,size=65536k' },
        ShmSize: 128 * MiB,
        SecurityOpt: NNP,
      },
    );
    assert.equal(run.code, 0, run.stderr);
    const out = run.stdout;
    assert.match(out, /^root=ro$/m);
    assert.match(out, /^hosts=ro$/m);
    assert.match(out, /^run=rw$/m);
    assert.match(out, /^run=noexec$/m);
    assert.match(out, /^tmpfs \/run tmpfs rw,nosuid,nodev,noexec,\S*size=65536k/m);
    assert.match(out, /^shm \/dev\/shm tmpfs rw,nosuid,nodev,noexec,\S*size=131072k/m);
    assert.match(out, /^n$/m);
  },
);

test('--ulimit, -m, --pids-limit, --security-opt no-new-privileges', { skip }, async (t) => {
  const limits =
    CGROUP_VERSION === 1
      ? 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/pids/pids.max'
      : 'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max /sys/fs/cgroup/pids.max';
  const run = await dockerRun(
    t,
    'limits',
    ['echo nofile=$(ulimit -n):$(ulimit -Hn)', limits, STATUS].join('; '),
    {},
    {
      Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 2048 }],
      Memory: 64 * MiB,
      PidsLimit: 50,
      SecurityOpt: ['no-new-privileges'],
    },
  );
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^nofile=1024:2048$/m);
  // Docker's default swap: twice the memory (memory + swap on v1, swap alone on v2).
  const expected = CGROUP_VERSION === 1 ? [64 * MiB, 128 * MiB, 50] : [64 * MiB, 64 * MiB, 50];
  assert.match(run.stdout, new RegExp(`^${expected.join('\n')}$`, 'm'));
  assert.match(run.stdout, /^NoNewPrivs:\s+1$/m);
  assert.match(run.stdout, new RegExp(`^CapEff:\\s+${mask(DEFAULT_CAPABILITIES)}$`, 'm'));
});

test(
  'Docker defaults: no no-new-privileges, the default seccomp profile, masked /proc files',
  { skip },
  async (t) => {
    const run = await dockerRun(
      t,
      'defaults',
      [STATUS, 'echo interrupts=$(wc -c < /proc/interrupts)'].join('; '),
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`^CapEff:\\s+${mask(DEFAULT_CAPABILITIES)}$`, 'm'));
    assert.match(run.stdout, /^NoNewPrivs:\s+0$/m);
    assert.match(run.stdout, /^Seccomp:\s+2$/m);
    assert.match(run.stdout, /^interrupts=0$/m);
  },
);
