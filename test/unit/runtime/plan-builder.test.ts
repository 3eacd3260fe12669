import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCreatePlan, buildExecPlan, CLONE_FLAG } from '../../../src/runtime/plan-builder.js';
import { OP, OP_NAMES, type PlanOp } from '../../../src/runtime/plan.js';
import { defaultSpec } from '../../../src/oci/defaults.js';
import { MS } from '../../../src/linux/mount-options.js';
import type { Spec } from '../../../src/oci/runtime-spec.js';
import type { CgroupHierarchy } from '../../../src/runtime/cgroup-mounts.js';
import type { CgroupEntry } from '../../../src/linux/cgroups/types.js';

const V1: CgroupHierarchy[] = [
  { version: 1, name: 'memory', mountPoint: '/sys/fs/cgroup/memory', superOptions: 'memory' },
  { version: 1, name: 'cpu,cpuacct', mountPoint: '/sys/fs/cgroup/cpu,cpuacct', superOptions: 'cpu,cpuacct' },
];

const V1_ENTRY: CgroupEntry = {
  kind: 'self-write',
  files: ['/sys/fs/cgroup/memory/berth/c1/tasks', '/sys/fs/cgroup/cpu,cpuacct/berth/c1/tasks'],
};
const V2_ENTRY: CgroupEntry = { kind: 'clone-into', directory: '/sys/fs/cgroup/berth/c1' };

async function bundle(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-plan-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'rootfs'));
  await mkdir(join(dir, 'volume'));
  return dir;
}

const names = (plan: PlanOp[]): string[] => plan.map((op) => OP_NAMES[op.op] ?? '?');
const strings = (op: PlanOp): string[] => op.fields.flatMap((f) => ('s' in f ? [f.s] : []));
const number = (op: PlanOp, index: number): bigint => {
  const field = op.fields[index];
  assert.ok(field && 'n' in field);
  return BigInt(field.n);
};

function build(
  spec: Spec,
  dir: string,
  extra: Partial<Parameters<typeof buildCreatePlan>[1]> = {},
): PlanOp[] {
  return buildCreatePlan(spec, {
    id: 'c1',
    bundle: dir,
    stateDir: join(dir, 'state'),
    detach: true,
    cgroupHierarchies: V1,
    cgroupPath: '/berth/c1',
    cgroupEntry: V1_ENTRY,
    seccomp: { program: new Uint8Array(8), flags: 0 },
    ...extra,
  });
}

test('the default spec: namespaces cloned, cgroup namespace unshared by init, ordered set-up', async (t) => {
  const dir = await bundle(t);
  const plan = build(defaultSpec({ terminal: false }), dir);
  const order = names(plan);
  const clone = plan.find((op) => op.op === OP.CLONE_FLAGS);
  assert.ok(clone);
  const flags = Number(number(clone, 0));
  for (const type of ['pid', 'network', 'ipc', 'uts', 'mount'] as const)
    assert.ok(flags & CLONE_FLAG[type], type);
  assert.equal(flags & CLONE_FLAG.cgroup, 0, 'the cgroup namespace is created after init joins its cgroup');
  const firstContainerOp = plan.findIndex((op) => op.op >= 100);
  assert.equal(order[firstContainerOp], 'UNSHARE');
  const at = (name: string): number => order.indexOf(name);
  assert.ok(at('OPEN_START_FIFO') < at('PIVOT_ROOT'), 'the fifo is opened while its path is reachable');
  assert.ok(at('PIVOT_ROOT') < at('READONLY_PATH'));
  assert.ok(at('SETUID') < at('CAPS'));
  assert.ok(at('WAIT_START') < at('SECCOMP'));
  assert.equal(order.at(-2), 'SECCOMP', 'seccomp is the last step before exec');
  assert.equal(order.at(-1), 'EXEC');
  assert.equal(order.filter((n) => n === 'MKNOD_IN_ROOT').length, 6, 'the default devices');
  const mounts = plan.filter((op) => op.op === OP.MOUNT_IN_ROOT).map((op) => strings(op)[1]);
  assert.deepEqual(mounts.slice(0, 6), ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys']);
  assert.ok(mounts.includes('/sys/fs/cgroup/memory') && mounts.includes('/sys/fs/cgroup/cpu,cpuacct'));
  const symlinks = plan
    .filter((op) => op.op === OP.SYMLINK_IN_ROOT)
    .map((op) => strings(op).slice(1).join(' -> '));
  assert.ok(symlinks.includes('/sys/fs/cgroup/cpu -> cpu,cpuacct'));
  assert.ok(symlinks.includes('/dev/ptmx -> pts/ptmx'));
  assert.ok(
    plan.some((op) => op.op === OP.REMOUNT && strings(op)[1] === '/'),
    'read-only root',
  );
  assert.ok(plan.some((op) => op.op === OP.DETACH));
});

test('a read-only bind mount is a bind then a remount; propagation is a separate step', async (t) => {
  const dir = await bundle(t);
  const spec = defaultSpec({ terminal: false });
  spec.mounts = [
    {
      destination: '/data',
      type: 'bind',
      source: join(dir, 'volume'),
      options: ['rbind', 'ro', 'nosuid', 'rslave'],
    },
  ];
  const plan = build(spec, dir);
  const index = plan.findIndex((op) => op.op === OP.MOUNT_IN_ROOT && strings(op)[1] === '/data');
  const bind = plan[index];
  const remount = plan[index + 1];
  const propagation = plan[index + 2];
  assert.ok(bind && remount && propagation);
  assert.equal(number(bind, 4), MS.BIND | MS.REC);
  assert.equal(number(bind, 6), 1n, 'a directory source makes a directory target');
  assert.equal(remount.op, OP.REMOUNT);
  assert.equal(number(remount, 2), MS.RDONLY | MS.NOSUID);
  assert.equal(number(propagation, 4), MS.SLAVE | MS.REC);
});

test('a user namespace: maps written, devices bind-mounted instead of mknod', async (t) => {
  const dir = await bundle(t);
  const spec = defaultSpec({ terminal: false });
  spec.linux!.namespaces!.push({ type: 'user' });
  spec.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  spec.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const plan = build(spec, dir);
  assert.deepEqual(strings(plan.find((op) => op.op === OP.UID_MAP)!), ['0 100000 65536\n']);
  assert.equal(plan.filter((op) => op.op === OP.MKNOD_IN_ROOT).length, 0);
  assert.ok(
    plan.some(
      (op) => op.op === OP.MOUNT_IN_ROOT && strings(op)[1] === '/dev/null' && strings(op)[2] === '/dev/null',
    ),
  );
});

test('joined namespaces come first, the user namespace after those the host owns', async (t) => {
  const dir = await bundle(t);
  const spec = defaultSpec({ terminal: false });
  spec.linux!.namespaces = [
    { type: 'network', path: '/run/netns/x' },
    { type: 'user', path: '/proc/1/ns/user' },
    { type: 'mount' },
    { type: 'uts' },
  ];
  const plan = build(spec, dir);
  const joins = plan.filter((op) => op.op === OP.JOIN_NS).map((op) => strings(op)[0]);
  assert.deepEqual(joins, ['/run/netns/x', '/proc/1/ns/user']);
});

test('sysctls are written before /proc/sys becomes read-only; a terminal is set up before credentials change', async (t) => {
  const dir = await bundle(t);
  const spec = defaultSpec({ terminal: true });
  spec.linux!.sysctl = { 'net.ipv4.ip_forward': '1' };
  const plan = build(spec, dir, { consoleSocket: '/run/console.sock' });
  const order = names(plan);
  const write = plan.findIndex(
    (op) => op.op === OP.WRITE_FILE && strings(op)[0] === '/proc/sys/net/ipv4/ip_forward',
  );
  const readonly = plan.findIndex((op) => op.op === OP.READONLY_PATH && strings(op)[0] === '/proc/sys');
  assert.ok(write >= 0 && write < readonly);
  assert.ok(order.indexOf('SETUP_TERMINAL') < order.indexOf('SETUID'));
  assert.ok(order.includes('CONSOLE_SOCKET'));
});

test('exec joins the container namespaces (user just before mount) and repeats identity and seccomp', () => {
  const process = defaultSpec({ terminal: false }).process!;
  const plan = buildExecPlan(
    { ...process, args: ['ls'] },
    { pid: 42, namespaces: ['mount', 'user', 'pid'], detach: false, cgroupEntry: V1_ENTRY },
  );
  const joins = plan.filter((op) => op.op === OP.JOIN_NS).map((op) => strings(op)[0]);
  assert.deepEqual(joins, ['/proc/42/ns/pid', '/proc/42/ns/user', '/proc/42/ns/mnt']);
  assert.equal(names(plan).at(-1), 'EXEC');
  assert.ok(names(plan).includes('CAPS'));
});

test('init starts in its cgroup: v1 writes each tasks file itself, v2 is cloned into the directory', async (t) => {
  const dir = await bundle(t);
  const spec = defaultSpec({ terminal: false });
  const v1 = build(spec, dir);
  assert.deepEqual(
    v1.filter((op) => op.op === OP.CGROUP_JOIN).map((op) => strings(op)[0]),
    V1_ENTRY.kind === 'self-write' ? V1_ENTRY.files : [],
  );
  assert.equal(v1.filter((op) => op.op === OP.CLONE_INTO_CGROUP).length, 0);
  const v2 = build(spec, dir, { cgroupEntry: V2_ENTRY });
  assert.deepEqual(
    v2.filter((op) => op.op === OP.CLONE_INTO_CGROUP).map((op) => strings(op)[0]),
    ['/sys/fs/cgroup/berth/c1'],
  );
  assert.equal(v2.filter((op) => op.op === OP.CGROUP_JOIN).length, 0);
  // Both are shim set-up, before any container operation.
  const firstContainerOp = v2.findIndex((op) => op.op >= 100);
  assert.ok(v2.findIndex((op) => op.op === OP.CLONE_INTO_CGROUP) < firstContainerOp);
});

test('exec into a cgroup namespace on v2: the process moves itself, as clone3 would check from inside that namespace', () => {
  const process = { ...defaultSpec({ terminal: false }).process!, args: ['ls'] };
  const joined = buildExecPlan(process, {
    pid: 42,
    namespaces: ['cgroup', 'pid'],
    detach: false,
    cgroupEntry: V2_ENTRY,
  });
  assert.deepEqual(
    joined.filter((op) => op.op === OP.CGROUP_JOIN).map((op) => strings(op)[0]),
    ['/sys/fs/cgroup/berth/c1/cgroup.procs'],
  );
  assert.equal(joined.filter((op) => op.op === OP.CLONE_INTO_CGROUP).length, 0);
  const plain = buildExecPlan(process, {
    pid: 42,
    namespaces: ['pid'],
    detach: false,
    cgroupEntry: V2_ENTRY,
  });
  assert.equal(plain.filter((op) => op.op === OP.CLONE_INTO_CGROUP).length, 1);
});

test('a bind mount without a source and a missing rootfs are refused before anything runs', async (t) => {
  const dir = await bundle(t);
  const spec = defaultSpec({ terminal: false });
  spec.mounts = [{ destination: '/x', type: 'bind', options: ['bind'] }];
  assert.throws(() => build(spec, dir), /mounts\[0\]\.source: a bind mount needs a source/);
  const missing = defaultSpec({ terminal: false });
  missing.root = { path: 'nope' };
  assert.throws(() => build(missing, dir), /root\.path: .*nope is not a directory/);
});

const hookOf = (
  op: PlanOp,
): { name: string; path: string; timeout: bigint; args: string[]; env: string[]; state: string[] } => {
  const texts = strings(op);
  const argc = Number(number(op, 3));
  const envc = Number(number(op, 4));
  return {
    name: texts[0] ?? '',
    path: texts[1] ?? '',
    timeout: number(op, 2),
    args: texts.slice(2, 2 + argc),
    env: texts.slice(2 + argc, 2 + argc + envc),
    state: texts.slice(2 + argc + envc),
  };
};

test('a plain container gets no HOOK or SECCOMP_LISTENER op, and its seccomp stays last before exec', async (t) => {
  const dir = await bundle(t);
  const order = names(build(defaultSpec({ terminal: false }), dir));
  assert.ok(!order.includes('HOOK') && !order.includes('SECCOMP_LISTENER'));
  assert.deepEqual(order.slice(-4), ['WAIT_START', 'PRESERVE_FDS', 'SECCOMP', 'EXEC']);
});

test('createContainer hooks run in init just before pivot_root, startContainer hooks right after WAIT_START', async (t) => {
  const dir = await bundle(t);
  const spec = defaultSpec({ terminal: false });
  spec.annotations = { 'org.example': 'x"y' };
  spec.hooks = {
    prestart: [{ path: '/bin/prestart' }],
    createContainer: [
      { path: '/bin/create', args: ['create', '-v'], env: ['A=1'], timeout: 7 },
      { path: '/bin/create2' },
    ],
    startContainer: [{ path: '/bin/start' }],
    poststart: [{ path: '/bin/poststart' }],
  };
  const plan = build(spec, dir);
  const order = names(plan);
  const hooks = plan.filter((op) => op.op === OP.HOOK).map(hookOf);
  assert.deepEqual(
    hooks.map((h) => [h.name, h.path]),
    [
      ['createContainer', '/bin/create'],
      ['createContainer', '/bin/create2'],
      ['startContainer', '/bin/start'],
    ],
    'only the hooks that belong in the container are plan ops',
  );
  const pivot = order.indexOf('PIVOT_ROOT');
  assert.deepEqual(order.slice(pivot - 2, pivot), ['HOOK', 'HOOK']);
  assert.ok(order.lastIndexOf('MOUNT_IN_ROOT') < pivot - 2, 'after every mount');
  assert.equal(order[order.indexOf('WAIT_START') + 1], 'HOOK');
  const [first, second, start] = hooks;
  assert.ok(first && second && start);
  assert.deepEqual([first.args, first.env, first.timeout], [['create', '-v'], ['A=1'], 7n]);
  assert.deepEqual(
    [second.args, second.env, second.timeout],
    [['/bin/create2'], [], 0n],
    'argv[0] defaults to the path',
  );
  assert.deepEqual(JSON.parse(first.state.join('4242')), {
    ociVersion: '1.2.0',
    id: 'c1',
    status: 'creating',
    pid: 4242,
    bundle: dir,
    annotations: { 'org.example': 'x"y' },
  });
  assert.equal(JSON.parse(start.state.join('7')).status, 'created');
});

test('prestart and createRuntime hooks pause init once its mounts and devices are made, before createContainer hooks', async (t) => {
  const dir = await bundle(t);
  const plain = defaultSpec({ terminal: false });
  plain.hooks = { createContainer: [{ path: '/bin/create' }], poststart: [{ path: '/bin/poststart' }] };
  assert.ok(!names(build(plain, dir)).includes('RUNTIME_HOOKS'), 'only when there is a hook to run there');
  for (const hooks of [{ prestart: [{ path: '/bin/p' }] }, { createRuntime: [{ path: '/bin/c' }] }]) {
    const spec = defaultSpec({ terminal: false });
    spec.hooks = { ...hooks, createContainer: [{ path: '/bin/create' }] };
    const order = names(build(spec, dir));
    const at = order.indexOf('RUNTIME_HOOKS');
    assert.equal(order.lastIndexOf('RUNTIME_HOOKS'), at, 'once');
    assert.ok(at > order.lastIndexOf('MOUNT_IN_ROOT'), 'after every mount');
    assert.ok(
      at > order.lastIndexOf('MKNOD_IN_ROOT') && at > order.lastIndexOf('SYMLINK_IN_ROOT'),
      'after the devices',
    );
    assert.deepEqual(
      order.slice(at, at + 3),
      ['RUNTIME_HOOKS', 'HOOK', 'PIVOT_ROOT'],
      'then createContainer, pivot_root',
    );
  }
});

test('a SCMP_ACT_NOTIFY filter: its listener op carries the container process state, and it loads before WAIT_START', async (t) => {
  const dir = await bundle(t);
  const spec = defaultSpec({ terminal: false });
  spec.linux!.seccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    listenerPath: '/run/agent.sock',
    listenerMetadata: 'meta',
    syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_NOTIFY' }],
  };
  const compiled = { program: new Uint8Array(8), flags: 8 };
  const plan = build(spec, dir, { seccomp: compiled });
  const order = names(plan);
  const listener = plan.find((op) => op.op === OP.SECCOMP_LISTENER);
  assert.ok(listener && listener.op < 100 && order.indexOf('SECCOMP_LISTENER') < order.indexOf('MOUNT'));
  const [path, ...state] = strings(listener);
  assert.equal(path, '/run/agent.sock');
  assert.deepEqual(JSON.parse(state.join('99')), {
    ociVersion: '1.2.0',
    fds: ['seccompFd'],
    pid: 99,
    metadata: 'meta',
    state: { ociVersion: '1.2.0', id: 'c1', status: 'creating', pid: 99, bundle: dir },
  });
  assert.ok(spec.process!.noNewPrivileges);
  assert.equal(order[order.indexOf('WAIT_START') - 1], 'SECCOMP', 'the listener is reached during create');
  assert.deepEqual(order.slice(-2), ['PRESERVE_FDS', 'EXEC']);

  delete spec.linux!.seccomp.listenerPath;
  assert.throws(
    () => build(spec, dir, { seccomp: compiled }),
    /linux\.seccomp\.listenerPath: SCMP_ACT_NOTIFY needs/,
  );
});

test('exec with a seccomp listener sends the running container state with the exec process pid', () => {
  const process = { ...defaultSpec({ terminal: false }).process!, args: ['ls'] };
  const plan = buildExecPlan(process, {
    pid: 42,
    namespaces: ['pid', 'mount'],
    detach: false,
    cgroupEntry: V1_ENTRY,
    seccomp: { program: new Uint8Array(8), flags: 8 },
    seccompListener: { path: '/run/agent.sock', container: { id: 'c1', bundle: '/b' } },
  });
  const listener = plan.find((op) => op.op === OP.SECCOMP_LISTENER);
  assert.ok(listener);
  const [, ...state] = strings(listener);
  assert.deepEqual(JSON.parse(state.join('77')), {
    ociVersion: '1.2.0',
    fds: ['seccompFd'],
    pid: 77,
    state: { ociVersion: '1.2.0', id: 'c1', status: 'running', pid: 42, bundle: '/b' },
  });
  const plain = buildExecPlan(process, {
    pid: 42,
    namespaces: ['pid'],
    detach: false,
    cgroupEntry: V1_ENTRY,
    seccomp: { program: new Uint8Array(8), flags: 0 },
    seccompListener: { path: '/run/agent.sock', container: { id: 'c1', bundle: '/b' } },
  });
  assert.ok(!names(plain).includes('SECCOMP_LISTENER'), 'no NOTIFY rule: the listener is not used');
});
