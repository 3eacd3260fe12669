import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import { cgroupManager } from '../../../src/linux/cgroups/index.js';
import { cgroupLayout, detectCgroupLayout, parseProcCgroup } from '../../../src/linux/cgroups/layout.js';
import { expandSlice, locate, parseCgroupsPath } from '../../../src/linux/cgroups/paths.js';

// This machine's layout: v1 controllers plus a cgroup2 mount with only hugetlb.
const HYBRID_MOUNTINFO = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset,clone_children
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_CGROUP = `9:name=systemd:/
6:freezer:/
5:devices:/
4:memory:/process_api/abc
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`;

test('a hybrid host: v1 controllers with a cgroup2 mount beside them', () => {
  const layout = cgroupLayout(HYBRID_MOUNTINFO, HYBRID_CGROUP);
  assert.equal(layout.mode, 'hybrid');
  assert.deepEqual(Object.keys(layout.v1).sort(), [
    'cpu',
    'cpuacct',
    'cpuset',
    'devices',
    'freezer',
    'memory',
    'name=systemd',
  ]);
  assert.deepEqual(layout.v1.cpuset, {
    mountPoint: '/sys/fs/cgroup/cpuset',
    root: '/',
    controllers: ['cpuset'],
  });
  assert.deepEqual(layout.unified, { mountPoint: '/sys/fs/cgroup/unified', root: '/' });
  assert.equal(layout.own.memory, '/process_api/abc');
  assert.equal(layout.own[''], '/');
});

test('a pure v2 host, a pure v1 host with co-mounted controllers, and no cgroups at all', () => {
  const unified = cgroupLayout(
    '30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n',
    '0::/user.slice/user-1000.slice/session-2.scope\n',
  );
  assert.equal(unified.mode, 'unified');
  assert.deepEqual(unified.v1, {});
  assert.equal(unified.own[''], '/user.slice/user-1000.slice/session-2.scope');

  const legacy = cgroupLayout(
    '25 24 0:22 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n' +
      '26 24 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n',
    '3:cpu,cpuacct:/a\n2:memory:/b\n',
  );
  assert.equal(legacy.mode, 'v1');
  assert.equal(legacy.v1.cpu, legacy.v1.cpuacct);
  assert.equal(legacy.v1.cpu?.mountPoint, '/sys/fs/cgroup/cpu,cpuacct');
  assert.equal(legacy.own.cpuacct, '/a');

  // Only a named v1 hierarchy (systemd's) next to cgroup2: that is still a unified host.
  const namedOnly = cgroupLayout(
    '30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n40 31 0:37 / /run/x rw - cgroup cgroup rw,name=systemd\n',
    '0::/\n',
  );
  assert.equal(namedOnly.mode, 'unified');

  assert.throws(
    () => cgroupLayout('22 1 254:0 / / rw - ext4 /dev/vda rw\n', ''),
    (err: unknown) => {
      return err instanceof BerthError && err.kind === 'unavailable';
    },
  );
});

test('mount points with escaped spaces and a mount root inside a cgroup namespace', () => {
  const layout = cgroupLayout(
    '41 31 0:38 /ctr /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n',
    '0::/ctr/inner\n',
  );
  assert.deepEqual(layout.unified, { mountPoint: '/sys/fs/my cgroup', root: '/ctr' });
});

test('/proc/self/cgroup lines, including co-mounted controllers', () => {
  assert.deepEqual(parseProcCgroup('5:cpu,cpuacct:/x\n0::/y\n'), { cpu: '/x', cpuacct: '/x', '': '/y' });
});

test('detectCgroupLayout reads the files of an injected /proc/self', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'mountinfo'), HYBRID_MOUNTINFO);
  await writeFile(join(dir, 'cgroup'), HYBRID_CGROUP);
  assert.equal((await detectCgroupLayout(dir)).mode, 'hybrid');
});

test('cgroupsPath: absolute, relative, default', () => {
  assert.deepEqual(parseCgroupsPath('/a/b/', 'c1'), { relative: false, path: '/a/b' });
  assert.deepEqual(parseCgroupsPath('a//b', 'c1'), { relative: true, path: 'a/b' });
  assert.deepEqual(parseCgroupsPath(undefined, 'c1'), { relative: false, path: '/berth/c1' });
  assert.deepEqual(parseCgroupsPath('', 'c1'), { relative: false, path: '/berth/c1' });
  // Colons are plain characters without the systemd option.
  assert.deepEqual(parseCgroupsPath('/x:y:z', 'c1'), { relative: false, path: '/x:y:z' });
});

test('cgroupsPath: refused forms name the field', () => {
  for (const bad of ['/', '/a/../b', '..', '.', '///']) {
    assert.throws(
      () => parseCgroupsPath(bad, 'c1'),
      (err: unknown) =>
        err instanceof BerthError &&
        err.kind === 'invalid-argument' &&
        /linux\.cgroupsPath/.test(err.message),
      bad,
    );
  }
  assert.throws(() => parseCgroupsPath(undefined, 'a/b'), /container id/);
});

test('systemd slice:prefix:name maps to a scope under the expanded slice', () => {
  const systemd = { systemd: true };
  assert.deepEqual(parseCgroupsPath('system.slice:docker:abc', 'abc', systemd), {
    relative: false,
    path: '/system.slice/docker-abc.scope',
  });
  assert.deepEqual(parseCgroupsPath('user-1000.slice:berth:c1', 'c1', systemd), {
    relative: false,
    path: '/user.slice/user-1000.slice/berth-c1.scope',
  });
  assert.equal(parseCgroupsPath(':berth:c1', 'c1', systemd).path, '/system.slice/berth-c1.scope');
  assert.equal(parseCgroupsPath('-.slice::c1', 'c1', systemd).path, '/c1.scope');
  assert.equal(parseCgroupsPath('machine.slice:x:pod.slice', 'c1', systemd).path, '/machine.slice/pod.slice');
  assert.equal(parseCgroupsPath(undefined, 'c1', systemd).path, '/system.slice/berth-c1.scope');
  assert.equal(expandSlice('a-b-c.slice'), '/a.slice/a-b.slice/a-b-c.slice');
  for (const bad of ['/a/b', 'a:b', 'system:berth:c1', 'a--b.slice:p:n', 'system.slice:p:']) {
    assert.throws(() => parseCgroupsPath(bad, 'c1', systemd), /linux\.cgroupsPath/, bad);
  }
});

test('locate: absolute from the mount root, relative from the own cgroup', () => {
  const mount = { mountPoint: '/sys/fs/cgroup/memory', root: '/' };
  assert.deepEqual(locate({ relative: false, path: '/berth/c1' }, mount, '/process_api/abc'), {
    path: '/berth/c1',
    directory: '/sys/fs/cgroup/memory/berth/c1',
  });
  assert.deepEqual(locate({ relative: true, path: 'c1' }, mount, '/process_api/abc'), {
    path: '/process_api/abc/c1',
    directory: '/sys/fs/cgroup/memory/process_api/abc/c1',
  });
  // Inside a cgroup namespace, the mount's root is where the hierarchy starts for this process.
  const nsMount = { mountPoint: '/sys/fs/cgroup', root: '/ctr' };
  assert.deepEqual(locate({ relative: true, path: 'x' }, nsMount, '/ctr/inner'), {
    path: '/ctr/inner/x',
    directory: '/sys/fs/cgroup/inner/x',
  });
  assert.throws(() => locate({ relative: true, path: 'x' }, nsMount, '/elsewhere'), /outside the hierarchy/);
  assert.throws(() => locate({ relative: true, path: 'x' }, mount, undefined), /cgroup is unknown/);
});

test('the factory picks v1 on a hybrid host and v2 on a unified one', async () => {
  const hybrid = await cgroupManager('/t/c1', 'c1', {
    layout: cgroupLayout(HYBRID_MOUNTINFO, HYBRID_CGROUP),
  });
  assert.equal(hybrid.version, 'v1');
  assert.equal(hybrid.path, '/t/c1');
  assert.ok(hybrid.directories.includes('/sys/fs/cgroup/memory/t/c1'));
  assert.ok(hybrid.directories.includes('/sys/fs/cgroup/systemd/t/c1'));
  assert.ok(!hybrid.directories.some((d) => d.startsWith('/sys/fs/cgroup/unified')));
  const relative = await cgroupManager('c1', 'c1', { layout: cgroupLayout(HYBRID_MOUNTINFO, HYBRID_CGROUP) });
  assert.ok(relative.directories.includes('/sys/fs/cgroup/memory/process_api/abc/c1'));
  assert.ok(relative.directories.includes('/sys/fs/cgroup/cpu/c1'));

  const unified = await cgroupManager(undefined, 'c1', {
    layout: cgroupLayout('30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n', '0::/user.slice\n'),
  });
  assert.equal(unified.version, 'v2');
  assert.deepEqual(unified.directories, ['/sys/fs/cgroup/berth/c1']);
});
