/**
 * createContainer and startContainer hooks run inside the container's namespaces (runtime-spec
 * config.md, "POSIX-platform Hooks"): createContainer once the mounts are made and before
 * pivot_root, its path resolved on the host; startContainer after pivot_root, its path resolved in
 * the container. A failing one fails create or start and leaves nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, chmod, mkdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox, CGROUP_ROOT, listMounts, type Sandbox } from '../helpers/sandbox.js';
import { makeBundle, runtime, runtimeOk, type Bundle } from '../helpers/bundle.js';
import type { Hook } from '../../src/oci/runtime-spec.js';

const NAMESPACES = ['mnt', 'pid', 'uts', 'net', 'ipc'];

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** A script that records its namespaces, its mount table and its stdin under `out` (prefix `name`). */
const recorder = (out: string, name: string): string =>
  [
    '#!/bin/sh',
    `for ns in ${NAMESPACES.join(' ')}; do readlink /proc/self/ns/$ns; done > ${out}/${name}.ns`,
    `cat /proc/self/mountinfo > ${out}/${name}.mountinfo`,
    `cat > ${out}/${name}.state`,
    `echo "$HOOK_ENV $*" > ${out}/${name}.args`,
    '',
  ].join('\n');

async function script(path: string, text: string): Promise<void> {
  await writeFile(path, text);
  await chmod(path, 0o755);
}

/** The pid in a state JSON on stdin: sh and sed, so that the hook runs on any host. */
const PID_OF_STATE = `pid=$(sed -n 's/.*"pid":\\([0-9]*\\).*/\\1/p')`;

/**
 * A hook (for /bin/sh -c) run in the runtime's namespaces: it records its state, its argv and env,
 * its own mount namespace, and the mount namespace and mount table of the process the state names.
 */
const hostRecorder = (out: string, name: string): string =>
  [
    `tee ${out}/${name}.state | { ${PID_OF_STATE}`,
    `echo ${name} >> ${out}/order`,
    `tr '\\0' ' ' < /proc/$$/cmdline > ${out}/${name}.argv`,
    `env > ${out}/${name}.env`,
    `readlink /proc/self/ns/mnt /proc/$pid/ns/mnt > ${out}/${name}.ns`,
    `cat /proc/$pid/mountinfo > ${out}/${name}.mountinfo; }`,
  ].join('; ');

/** mountinfo lines as mount point and filesystem type (fields 5 and the first after ` - `). */
const mountTable = (text: string): Array<{ point: string; fstype: string }> =>
  text
    .trim()
    .split('\n')
    .map((line) => ({ point: line.split(' ')[4] ?? '', fstype: line.split(' - ')[1]?.split(' ')[0] ?? '' }));

/** Mount points of a mountinfo text (field 5). */
const mountPoints = (text: string): string[] =>
  text
    .trim()
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '');

/** A bundle whose container sees the sandbox directory `out` at /out (read-write). */
async function bundleWithOut(sandbox: Sandbox, args: string[]): Promise<{ bundle: Bundle; out: string }> {
  const bundle = await makeBundle(sandbox, args);
  const out = join(bundle.dir, 'out');
  await mkdir(out);
  bundle.spec.mounts!.push({ destination: '/out', type: 'bind', source: out, options: ['rbind', 'rw'] });
  return { bundle, out };
}

/** Nothing of the container is left: no state, no cgroup, no mount under its bundle. */
async function assertGone(sandbox: Sandbox, bundle: Bundle, id: string): Promise<void> {
  assert.match((await runtime(sandbox, ['state', id])).stderr, /does not exist/);
  assert.equal(await exists(join(CGROUP_ROOT, 'memory', bundle.spec.linux!.cgroupsPath!)), false);
  const left = (await listMounts()).filter((m) => m.mountPoint.startsWith(bundle.dir));
  assert.deepEqual(left, []);
}

test('createContainer and startContainer hooks run in the container namespaces, at their point of the set-up', async (t) => {
  const sandbox = await createSandbox(t);
  const { bundle, out } = await bundleWithOut(sandbox, ['sh', '-c', 'touch /out/ran; sleep 100']);
  const createHook = join(sandbox.root, 'create-hook.sh');
  await script(createHook, recorder(out, 'create'));
  await mkdir(join(bundle.rootfs, 'hooks'));
  await script(join(bundle.rootfs, 'hooks', 'start.sh'), recorder('/out', 'start'));
  bundle.spec.hooks = {
    createContainer: [
      { path: createHook, args: ['create-hook.sh', 'one', 'two'], env: ['HOOK_ENV=from-spec'], timeout: 30 },
    ],
    startContainer: [{ path: '/hooks/start.sh', timeout: 30 }],
  };
  await bundle.write();

  await runtimeOk(sandbox, ['create', '--bundle', bundle.dir, 'k1']);
  const created = JSON.parse(await runtimeOk(sandbox, ['state', 'k1'])) as { pid: number };
  const container = await Promise.all(NAMESPACES.map((ns) => readlink(`/proc/${created.pid}/ns/${ns}`)));
  const host = await Promise.all(NAMESPACES.map((ns) => readlink(`/proc/self/ns/${ns}`)));
  for (const [i, ns] of NAMESPACES.entries())
    assert.notEqual(container[i], host[i], `the container has its own ${ns}`);

  // createContainer: in the container's namespaces, its mounts made, pivot_root still ahead.
  assert.deepEqual((await readFile(join(out, 'create.ns'), 'utf8')).trim().split('\n'), container);
  const createMounts = mountPoints(await readFile(join(out, 'create.mountinfo'), 'utf8'));
  assert.ok(
    createMounts.includes(join(bundle.rootfs, 'proc')),
    'the container /proc is mounted in the rootfs',
  );
  assert.ok(createMounts.includes(join(bundle.rootfs, 'out')));
  const createState = JSON.parse(await readFile(join(out, 'create.state'), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.deepEqual(createState, {
    ociVersion: '1.2.0',
    id: 'k1',
    status: 'creating',
    pid: created.pid,
    bundle: bundle.dir,
  });
  assert.equal(await readFile(join(out, 'create.args'), 'utf8'), 'from-spec one two\n', 'args and env');
  assert.equal(await exists(join(out, 'start.ns')), false, 'startContainer waits for start');

  await runtimeOk(sandbox, ['start', 'k1']);
  // startContainer: inside the container root, before the user's program.
  assert.deepEqual((await readFile(join(out, 'start.ns'), 'utf8')).trim().split('\n'), container);
  const startMounts = mountPoints(await readFile(join(out, 'start.mountinfo'), 'utf8'));
  assert.ok(startMounts.includes('/') && startMounts.includes('/proc') && startMounts.includes('/out'));
  assert.ok(
    startMounts.every((point) => !point.startsWith(bundle.dir)),
    'no host path: after pivot_root',
  );
  const startState = JSON.parse(await readFile(join(out, 'start.state'), 'utf8')) as Record<string, unknown>;
  // As runc: the pid as the process sees itself, 1 in its new pid namespace.
  assert.deepEqual(startState, {
    ociVersion: '1.2.0',
    id: 'k1',
    status: 'created',
    pid: 1,
    bundle: bundle.dir,
  });
  let ran = false;
  for (let i = 0; i < 200 && !ran; i++) {
    ran = await exists(join(out, 'ran'));
    if (!ran) await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.ok(ran, 'the user program runs after the hooks');
  await runtimeOk(sandbox, ['delete', '--force', 'k1']);
});

test('a failing createContainer hook fails create with its message and leaves nothing behind', async (t) => {
  const sandbox = await createSandbox(t);
  const { bundle, out } = await bundleWithOut(sandbox, ['true']);
  bundle.spec.hooks = {
    createContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'echo boom >&2; exit 3'] }],
    poststop: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${out}/poststop`] }],
  };
  await bundle.write();
  const failed = await runtime(sandbox, ['create', '--bundle', bundle.dir, 'k2']);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /createContainer hook \/bin\/sh exited with 3: boom$/m);
  assert.equal(await exists(join(out, 'poststop')), true, 'destroyed as delete does, poststop included');
  await assertGone(sandbox, bundle, 'k2');
});

test('a failing or hanging startContainer hook fails start; the container is destroyed before its program runs', async (t) => {
  const sandbox = await createSandbox(t);
  for (const [id, hook, message] of [
    ['k3', 'echo nope; exit 4', /startContainer hook \/bin\/sh exited with 4: nope$/m],
    ['k4', 'sleep 60', /startContainer hook \/bin\/sh timed out after 1 s$/m],
  ] as const) {
    const { bundle, out } = await bundleWithOut(sandbox, ['touch', '/out/ran']);
    bundle.spec.hooks = {
      startContainer: [{ path: '/bin/sh', args: ['sh', '-c', hook], timeout: 1 }],
      poststop: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${out}/poststop`] }],
    };
    await bundle.write();
    await runtimeOk(sandbox, ['create', '--bundle', bundle.dir, id]);
    const failed = await runtime(sandbox, ['start', id]);
    assert.equal(failed.code, 1, id);
    assert.match(failed.stderr, message);
    assert.equal(await exists(join(out, 'ran')), false, `${id}: the user program never ran`);
    assert.equal(
      await exists(join(out, 'poststop')),
      true,
      `${id}: destroyed as delete does, poststop included`,
    );
    await assertGone(sandbox, bundle, id);
  }
});

test('prestart and createRuntime hooks run in the runtime namespaces once init has made its mounts, before pivot_root', async (t) => {
  const sandbox = await createSandbox(t);
  const { bundle, out } = await bundleWithOut(sandbox, ['sh', '-c', 'echo program >> /out/order; sleep 100']);
  bundle.spec.mounts!.push({ destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['size=1m'] });
  bundle.spec.annotations = { 'org.example.key': 'value' };
  const host = (name: string, timeout?: number): Hook => ({
    path: '/bin/sh',
    args: [`${name}-argv0`, '-c', hostRecorder(out, name), 'x', 'one'],
    env: [`HOOK_ENV=${name}`],
    timeout,
  });
  const createHook = join(sandbox.root, 'create-hook.sh');
  await script(createHook, `#!/bin/sh\necho createContainer >> ${out}/order\n`);
  bundle.spec.hooks = {
    prestart: [host('prestart', 30)],
    createRuntime: [host('createRuntime')],
    createContainer: [{ path: createHook }],
    poststart: [host('poststart', 30)],
    poststop: [{ path: '/bin/sh', args: ['sh', '-c', `cat > ${out}/poststop.state`] }],
  };
  await bundle.write();

  await runtimeOk(sandbox, ['create', '--bundle', bundle.dir, 'k5']);
  const created = JSON.parse(await runtimeOk(sandbox, ['state', 'k5'])) as { pid: number };
  const hostMnt = await readlink('/proc/self/ns/mnt');
  const initMnt = await readlink(`/proc/${created.pid}/ns/mnt`);
  assert.notEqual(initMnt, hostMnt);
  for (const name of ['prestart', 'createRuntime']) {
    assert.deepEqual(JSON.parse(await readFile(join(out, `${name}.state`), 'utf8')), {
      ociVersion: '1.2.0',
      id: 'k5',
      status: 'creating',
      pid: created.pid,
      bundle: bundle.dir,
      annotations: { 'org.example.key': 'value' },
    });
    // In the runtime's mount namespace, looking at init's.
    assert.deepEqual(
      (await readFile(join(out, `${name}.ns`), 'utf8')).trim().split('\n'),
      [hostMnt, initMnt],
      name,
    );
    // init's mounts are made: config.json's tmpfs is there, in the rootfs, which is not pivoted yet.
    const table = mountTable(await readFile(join(out, `${name}.mountinfo`), 'utf8'));
    assert.ok(
      table.some((m) => m.point === join(bundle.rootfs, 'scratch') && m.fstype === 'tmpfs'),
      `${name}: the tmpfs mount of config.json is made`,
    );
    assert.ok(
      table.some((m) => m.point === bundle.rootfs),
      `${name}: the rootfs is a mount point`,
    );
    assert.ok(
      table.some((m) => m.point === join(bundle.rootfs, 'proc')),
      `${name}: /proc is mounted in the rootfs`,
    );
    assert.ok(!table.some((m) => m.point === '/scratch'), `${name}: pivot_root is still ahead`);
    // argv[0] from args, the arguments after it, and exactly the hook's env.
    assert.equal(
      await readFile(join(out, `${name}.argv`), 'utf8'),
      `${name}-argv0 -c ${hostRecorder(out, name)} x one `,
    );
    const env = (await readFile(join(out, `${name}.env`), 'utf8')).trim().split('\n');
    assert.ok(env.includes(`HOOK_ENV=${name}`), `${name}: its env`);
    assert.ok(
      !env.some((e) => e.startsWith('BERTH_') || e.startsWith('NODE')),
      `${name}: nothing of the runtime's env`,
    );
  }
  assert.equal(await readFile(join(out, 'order'), 'utf8'), 'prestart\ncreateRuntime\ncreateContainer\n');

  await runtimeOk(sandbox, ['start', 'k5']);
  assert.deepEqual(JSON.parse(await readFile(join(out, 'poststart.state'), 'utf8')), {
    ociVersion: '1.2.0',
    id: 'k5',
    status: 'running',
    pid: created.pid,
    bundle: bundle.dir,
    annotations: { 'org.example.key': 'value' },
  });
  await runtimeOk(sandbox, ['delete', '--force', 'k5']);
  assert.deepEqual(JSON.parse(await readFile(join(out, 'poststop.state'), 'utf8')), {
    ociVersion: '1.2.0',
    id: 'k5',
    status: 'stopped',
    bundle: bundle.dir,
    annotations: { 'org.example.key': 'value' },
  });
  await assertGone(sandbox, bundle, 'k5');
});

test('a failing or hanging prestart or createRuntime hook fails create with its output and leaves nothing behind', async (t) => {
  const sandbox = await createSandbox(t);
  for (const [id, kind, hook, message] of [
    [
      'k6',
      'createRuntime',
      'echo no GPU for you; echo on stderr >&2; exit 5',
      /createRuntime hook \/bin\/sh exited with 5: no GPU for you on stderr$/m,
    ],
    ['k7', 'prestart', 'exec sleep 60', /prestart hook \/bin\/sh timed out after 1 s$/m],
  ] as const) {
    const { bundle, out } = await bundleWithOut(sandbox, ['touch', '/out/ran']);
    // The hook notes init's pid and the shim's (init's parent) before it fails.
    const note = `${PID_OF_STATE}; echo $pid > ${out}/pid; awk '/^PPid:/ {print $2}' /proc/$pid/status > ${out}/shim`;
    bundle.spec.hooks = {
      [kind]: [{ path: '/bin/sh', args: ['sh', '-c', `${note}; ${hook}`], timeout: 1 }],
      poststop: [{ path: '/bin/sh', args: ['sh', '-c', `touch ${out}/poststop`] }],
    };
    await bundle.write();
    const failed = await runtime(sandbox, ['create', '--bundle', bundle.dir, id]);
    assert.equal(failed.code, 1, id);
    assert.match(failed.stderr, message);
    assert.equal(
      await exists(join(out, 'poststop')),
      true,
      `${id}: destroyed as delete does, poststop included`,
    );
    assert.equal(await exists(join(out, 'ran')), false, `${id}: the program never ran`);
    for (const file of ['pid', 'shim']) {
      const pid = Number((await readFile(join(out, file), 'utf8')).trim());
      assert.ok(pid > 1, `${id}: the hook saw the ${file} pid`);
      assert.equal(await exists(`/proc/${pid}`), false, `${id}: the ${file} process is gone`);
    }
    await assertGone(sandbox, bundle, id);
  }
});
