import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, chmod, mkdir, readFile, symlink, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createSandbox, CGROUP_ROOT } from '../helpers/sandbox.js';
import { makeBundle, runtime } from '../helpers/bundle.js';
import { DEFAULT_CAPABILITIES, capabilityMask } from '../../src/linux/capabilities.js';

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** Run a shell script in a container made from the default spec (changed by `edit`) and return its output. */
async function inContainer(
  t: Parameters<typeof createSandbox>[0],
  script: string,
  edit: (bundle: Awaited<ReturnType<typeof makeBundle>>) => void | Promise<void> = () => undefined,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['sh', '-c', script]);
  await edit(bundle);
  await bundle.write();
  return runtime(sandbox, ['run', '--bundle', bundle.dir, 'iso']);
}

test('default isolation: pid 1, own hostname, read-only root, Docker capabilities, no new privileges, masked and read-only /proc', async (t) => {
  const result = await inContainer(
    t,
    [
      'echo pid=$$',
      'hostname',
      'touch /x 2>/dev/null && echo root=rw || echo root=ro',
      'grep -E "^(CapEff|CapBnd|CapPrm|NoNewPrivs|Seccomp):" /proc/self/status',
      'echo keys=$(wc -c < /proc/keys) timer_list=$(wc -c < /proc/timer_list)',
      'echo 1 > /proc/sys/kernel/ostype 2>/dev/null && echo procsys=rw || echo procsys=ro',
      'ls /dev | sort | tr "\\n" " "; echo',
      'ip link 2>/dev/null | grep -c "^[0-9]" || ls /sys/class/net | wc -l',
      'ulimit -n',
    ].join('; '),
  );
  assert.equal(result.code, 0, result.stderr);
  const out = result.stdout;
  assert.match(out, /^pid=1$/m);
  assert.match(out, /^berth$/m);
  assert.match(out, /^root=ro$/m);
  const expected = capabilityMask(DEFAULT_CAPABILITIES, 'test').toString(16).padStart(16, '0');
  assert.match(out, new RegExp(`^CapEff:\\s+${expected}$`, 'm'));
  assert.match(out, new RegExp(`^CapBnd:\\s+${expected}$`, 'm'));
  assert.match(out, /^NoNewPrivs:\s+1$/m);
  assert.match(out, /^keys=0 timer_list=0$/m, 'masked /proc files read as empty');
  assert.match(out, /^procsys=ro$/m);
  for (const device of [
    'null',
    'zero',
    'full',
    'random',
    'urandom',
    'tty',
    'pts',
    'shm',
    'mqueue',
    'fd',
    'ptmx',
    'stdin',
  ]) {
    assert.match(out, new RegExp(`\\b${device}\\b`), `/dev/${device}`);
  }
  assert.match(out, /^1$/m, 'only the loopback interface in a new network namespace');
  assert.match(out, /^1024$/m, 'the default RLIMIT_NOFILE');
});

test('a mount destination that is a symlink to a host path lands inside the rootfs', async (t) => {
  const sandbox = await createSandbox(t);
  const hostDir = join(sandbox.root, 'host-target');
  await mkdir(hostDir);
  const bundle = await makeBundle(sandbox, ['sh', '-c', 'echo inside > /escape/file && cat /escape/file']);
  await symlink(hostDir, join(bundle.rootfs, 'escape'));
  bundle.spec.mounts!.push({ destination: '/escape', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] });
  bundle.spec.root = { path: 'rootfs', readonly: false };
  await bundle.write();
  const result = await runtime(sandbox, ['run', '--bundle', bundle.dir, 'sym']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'inside\n');
  assert.deepEqual(await readdir(hostDir), [], 'nothing was mounted or written on the host path');
});

test('bind mounts with options, tmpfs with size and mode', async (t) => {
  const sandbox = await createSandbox(t);
  const shared = join(sandbox.root, 'shared');
  await mkdir(shared);
  const bundle = await makeBundle(sandbox, [
    'sh',
    '-c',
    'echo data > /rw/file; touch /ro/file 2>/dev/null && echo ro-writable || echo ro-refused; stat -c "%a" /scratch; grep " /scratch " /proc/mounts',
  ]);
  bundle.spec.mounts!.push(
    { destination: '/rw', type: 'bind', source: shared, options: ['rbind', 'rw'] },
    { destination: '/ro', type: 'bind', source: shared, options: ['bind', 'ro', 'nosuid', 'nodev'] },
    { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'size=1m', 'mode=1770'] },
  );
  await bundle.write();
  const result = await runtime(sandbox, ['run', '--bundle', bundle.dir, 'mnt']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await readFile(join(shared, 'file'), 'utf8'), 'data\n');
  assert.match(result.stdout, /^ro-refused$/m);
  assert.match(result.stdout, /^1770$/m);
  assert.match(result.stdout, /size=1024k/);
});

test('user namespace: container root is an unprivileged host uid', async (t) => {
  const result = await inContainer(
    t,
    'id -u; cat /proc/self/uid_map; cat /proc/self/gid_map',
    async (bundle) => {
      // The container's root (host uid 200000) must be able to reach its rootfs, as with Docker's userns-remap.
      for (let dir = bundle.dir; dir !== '/' && dir !== '/tmp'; dir = dirname(dir)) await chmod(dir, 0o755);
      bundle.spec.linux!.namespaces!.push({ type: 'user' });
      bundle.spec.linux!.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      bundle.spec.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      // sysfs and the cgroup tree cannot be mounted by an unprivileged owner of the network namespace's user namespace here
      bundle.spec.mounts = bundle.spec.mounts!.filter((m) => m.destination !== '/sys/fs/cgroup');
    },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^0\n\s+0\s+200000\s+65536\n\s+0\s+200000\s+65536\n$/);
});

test('capabilities, user, groups, umask, cwd, env and rlimits from the spec', async (t) => {
  const result = await inContainer(
    t,
    'id; umask; pwd; echo $FOO; ulimit -n; grep CapEff /proc/self/status',
    (bundle) => {
      const p = bundle.spec.process!;
      p.user = { uid: 1000, gid: 1000, additionalGids: [65534], umask: 0o027 };
      p.cwd = '/home/user';
      p.env!.push('FOO=bar');
      p.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 512, hard: 512 }];
      p.capabilities = {
        bounding: ['CAP_KILL'],
        effective: ['CAP_KILL'],
        permitted: ['CAP_KILL'],
        ambient: ['CAP_KILL'],
        inheritable: ['CAP_KILL'],
      };
    },
  );
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^uid=1000\(user\) gid=1000\(user\) groups=65534\(nobody\)/m);
  assert.match(result.stdout, /^0027$/m);
  assert.match(result.stdout, /^\/home\/user$/m);
  assert.match(result.stdout, /^bar$/m);
  assert.match(result.stdout, /^512$/m);
  assert.match(result.stdout, /^CapEff:\s+0000000000000020$/m);
});

test('namespaced sysctls are applied; memory and pids limits are set in the cgroup', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, [
    'sh',
    '-c',
    'cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/shmmni',
  ]);
  bundle.spec.linux!.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.shmmni': '1234' };
  bundle.spec.linux!.resources = {
    ...bundle.spec.linux!.resources,
    memory: { limit: 64 * 1024 * 1024 },
    pids: { limit: 32 },
  };
  await bundle.write();
  const create = await runtime(sandbox, ['create', '--bundle', bundle.dir, 'lim']);
  assert.equal(create.code, 0, create.stderr);
  const path = bundle.spec.linux!.cgroupsPath!;
  assert.equal(
    (await readFile(join(CGROUP_ROOT, 'memory', path, 'memory.limit_in_bytes'), 'utf8')).trim(),
    String(64 * 1024 * 1024),
  );
  assert.equal((await readFile(join(CGROUP_ROOT, 'pids', path, 'pids.max'), 'utf8')).trim(), '32');
  assert.equal((await runtime(sandbox, ['start', 'lim'])).code, 0);
  for (let i = 0; i < 100; i++) {
    const state = JSON.parse((await runtime(sandbox, ['state', 'lim'])).stdout) as { status: string };
    if (state.status === 'stopped') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const output = await readFile(create.stdoutPath, 'utf8');
  assert.match(output, /^1\n1234\n$/);
  assert.equal((await runtime(sandbox, ['delete', 'lim'])).code, 0);
  assert.equal(await exists(join(CGROUP_ROOT, 'memory', path)), false);
});

test('bad configurations fail before anything exists, naming the field', async (t) => {
  const sandbox = await createSandbox(t);
  const cases: Array<[string, (b: Awaited<ReturnType<typeof makeBundle>>) => void, RegExp]> = [
    [
      'cap',
      (b) => (b.spec.process!.capabilities!.bounding = ['CAP_NOPE']),
      /process\.capabilities\.bounding\[0\]: unknown capability "CAP_NOPE"/,
    ],
    [
      'rlimit',
      (b) => (b.spec.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 10_000_000 }]),
      /RLIMIT_NOFILE hard limit 10000000 is above/,
    ],
    [
      'sysctl',
      (b) => (b.spec.linux!.sysctl = { 'vm.swappiness': '1' }),
      /linux\.sysctl\["vm\.swappiness"\]: is not a namespaced sysctl/,
    ],
    [
      'root',
      (b) => (b.spec.root = { path: 'missing-rootfs' }),
      /root\.path: .*missing-rootfs is not a directory/,
    ],
    [
      'types',
      (b) => ((b.spec.process as unknown as Record<string, unknown>).args = 'sh'),
      /process\.args: must be an array of strings/,
    ],
  ];
  for (const [name, edit, message] of cases) {
    const bundle = await makeBundle(sandbox, ['true'], `bad-${name}`);
    edit(bundle);
    await bundle.write();
    const result = await runtime(sandbox, ['create', '--bundle', bundle.dir, `bad-${name}`]);
    assert.equal(result.code, 1, name);
    assert.match(result.stderr, message, name);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(result.stderr.trim().split('\n').length, 1, 'one line');
    assert.match((await runtime(sandbox, ['state', `bad-${name}`])).stderr, /does not exist/);
    assert.equal(await exists(join(CGROUP_ROOT, 'memory', bundle.spec.linux!.cgroupsPath!)), false, name);
  }
  const unknown = await runtime(sandbox, ['delete', 'nobody-here']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /container nobody-here does not exist/);
});

test('a failure in the middle of set-up leaves no process, mount, cgroup or state', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['true']);
  bundle.spec.mounts!.push({
    destination: '/data',
    type: 'bind',
    source: join(sandbox.root, 'does-not-exist'),
    options: ['bind'],
  });
  await bundle.write();
  const result = await runtime(sandbox, ['create', '--bundle', bundle.dir, 'broken']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /MOUNT_IN_ROOT/);
  assert.match(result.stderr, /does-not-exist/);
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  assert.ok(!mounts.includes(bundle.rootfs), 'no mount of the rootfs is left on the host');
  assert.equal(await exists(join(CGROUP_ROOT, 'memory', bundle.spec.linux!.cgroupsPath!)), false);
  assert.match((await runtime(sandbox, ['state', 'broken'])).stderr, /does not exist/);
});
