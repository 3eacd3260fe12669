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
  assert.equal(startState.status, 'created');
  assert.equal(startState.pid, created.pid);
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
