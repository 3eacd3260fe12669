import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox, CGROUP_ROOT } from '../helpers/sandbox.js';
import { makeBundle, runtime, runtimeOk, RUNTIME_BIN } from '../helpers/bundle.js';

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

interface OciState {
  id: string;
  status: string;
  pid: number;
  bundle: string;
}

async function state(sandbox: Parameters<typeof runtimeOk>[0], id: string): Promise<OciState> {
  return JSON.parse(await runtimeOk(sandbox, ['state', id])) as OciState;
}

async function waitForStatus(
  sandbox: Parameters<typeof runtimeOk>[0],
  id: string,
  status: string,
): Promise<OciState> {
  let last: OciState | undefined;
  for (let i = 0; i < 200; i++) {
    last = await state(sandbox, id);
    if (last.status === status) return last;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`container ${id} never became ${status} (last: ${last?.status})`);
}

test('run propagates the exit code and output, and removes the container', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['sh', '-c', 'echo hello from $(hostname); exit 3']);
  const result = await runtime(sandbox, ['run', '--bundle', bundle.dir, 'c1']);
  assert.equal(result.code, 3, result.stderr);
  assert.equal(result.stdout, 'hello from berth\n');
  const after = await runtime(sandbox, ['state', 'c1']);
  assert.equal(after.code, 1);
  assert.match(after.stderr, /container c1 does not exist/);
});

test('create holds the process until start; state, kill, delete follow the lifecycle', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['sh', '-c', 'echo started > /tmp/marker; exec sleep 1000']);
  bundle.spec.root = { path: 'rootfs', readonly: false };
  await bundle.write();
  const pidFile = join(sandbox.root, 'c1.pid');
  await runtimeOk(sandbox, ['create', '--bundle', bundle.dir, '--pid-file', pidFile, 'c1']);
  const created = await state(sandbox, 'c1');
  assert.equal(created.status, 'created');
  assert.equal(created.bundle, bundle.dir);
  assert.equal(Number(await readFile(pidFile, 'utf8')), created.pid);
  assert.ok(await exists(`/proc/${created.pid}`));
  assert.equal(await exists(join(bundle.rootfs, 'tmp/marker')), false, 'the program has not started yet');
  const cgroupDir = join(CGROUP_ROOT, 'pids', bundle.spec.linux!.cgroupsPath!);
  assert.match(await readFile(join(cgroupDir, 'cgroup.procs'), 'utf8'), new RegExp(`^${created.pid}$`, 'm'));

  await runtimeOk(sandbox, ['start', 'c1']);
  const running = await state(sandbox, 'c1');
  assert.equal(running.status, 'running');
  for (let i = 0; i < 100 && !(await exists(join(bundle.rootfs, 'tmp/marker'))); i++)
    await new Promise((r) => setTimeout(r, 20));
  assert.equal(await readFile(join(bundle.rootfs, 'tmp/marker'), 'utf8'), 'started\n');
  const second = await runtime(sandbox, ['start', 'c1']);
  assert.equal(second.code, 1);
  assert.match(second.stderr, /cannot start container c1: it is running/);

  const refused = await runtime(sandbox, ['delete', 'c1']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /cannot delete container c1 that is not stopped: running/);

  await runtimeOk(sandbox, ['kill', 'c1', 'KILL']);
  await waitForStatus(sandbox, 'c1', 'stopped');
  await runtimeOk(sandbox, ['delete', 'c1']);
  assert.equal(await exists(cgroupDir), false, 'the cgroup is removed');
  assert.match((await runtime(sandbox, ['state', 'c1'])).stderr, /does not exist/);
});

test('run -d, exec, ps, pause and resume, list, delete --force', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['sleep', '1000']);
  await runtimeOk(sandbox, ['run', '-d', '--bundle', bundle.dir, 'c2']);
  const running = await state(sandbox, 'c2');
  assert.equal(running.status, 'running');

  const exec = await runtime(sandbox, [
    'exec',
    'c2',
    'sh',
    '-c',
    'echo pid=$$ host=$(hostname) uid=$(id -u)',
  ]);
  assert.equal(exec.code, 0, exec.stderr);
  const match = /^pid=(\d+) host=berth uid=0\n$/.exec(exec.stdout);
  assert.ok(match, exec.stdout);
  assert.notEqual(match[1], '1', 'the exec process is not init');
  const asUser = await runtime(sandbox, [
    'exec',
    '--user',
    '1000:1000',
    '-e',
    'GREETING=hi',
    'c2',
    'sh',
    '-c',
    'echo $(id -u):$(id -g) $GREETING',
  ]);
  assert.equal(asUser.stdout, '1000:1000 hi\n', asUser.stderr);
  const failing = await runtime(sandbox, ['exec', 'c2', 'sh', '-c', 'exit 7']);
  assert.equal(failing.code, 7);
  const missing = await runtime(sandbox, ['exec', 'c2', '/no/such/program']);
  assert.equal(missing.code, 127, missing.stderr);

  const confined = await runtime(sandbox, [
    'exec',
    'c2',
    'sh',
    '-c',
    'grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; grep pids /proc/self/cgroup',
  ]);
  assert.equal(confined.code, 0, confined.stderr);
  assert.match(confined.stdout, /^CapEff:\s+00000000a80425fb$/m, 'the container capabilities');
  assert.match(confined.stdout, /^NoNewPrivs:\s+1$/m);
  assert.match(confined.stdout, /^Seccomp:\s+2$/m, 'the container seccomp filter');
  assert.match(confined.stdout, /^\d+:pids:\/$/m, 'inside the container cgroup (its cgroup namespace root)');

  // A second container joins the first one's network namespace by path.
  const joiner = await makeBundle(sandbox, ['readlink', '/proc/self/ns/net']);
  joiner.spec.linux!.namespaces = joiner.spec.linux!.namespaces!.map((ns) =>
    ns.type === 'network' ? { type: 'network', path: `/proc/${running.pid}/ns/net` } : ns,
  );
  await joiner.write();
  const joined = await runtime(sandbox, ['run', '--bundle', joiner.dir, 'joiner']);
  assert.equal(joined.code, 0, joined.stderr);
  const { readlink } = await import('node:fs/promises');
  assert.equal(joined.stdout.trim(), await readlink(`/proc/${running.pid}/ns/net`));

  const pids = JSON.parse(await runtimeOk(sandbox, ['ps', '--format', 'json', 'c2'])) as number[];
  assert.deepEqual(pids, [running.pid]);
  const table = await runtimeOk(sandbox, ['ps', 'c2']);
  assert.match(table, /PID/);
  assert.match(table, /sleep 1000/);

  await runtimeOk(sandbox, ['pause', 'c2']);
  assert.equal((await state(sandbox, 'c2')).status, 'paused');
  await runtimeOk(sandbox, ['resume', 'c2']);
  assert.equal((await state(sandbox, 'c2')).status, 'running');

  const list = JSON.parse(await runtimeOk(sandbox, ['list', '--format', 'json'])) as Array<{
    id: string;
    status: string;
  }>;
  assert.deepEqual(
    list.map((c) => [c.id, c.status]),
    [['c2', 'running']],
  );
  assert.match(
    await runtimeOk(sandbox, ['list']),
    /^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER\nc2\s+\d+\s+running/,
  );

  await runtimeOk(sandbox, ['delete', '--force', 'c2']);
  assert.equal(await exists(`/proc/${running.pid}`), false);
  assert.equal((await runtimeOk(sandbox, ['list', '-q'])).trim(), '');
});

test('kill --all signals every process of the container', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['sh', '-c', 'trap "" TERM; sleep 1000 & sleep 1000 & wait']);
  await runtimeOk(sandbox, ['run', '-d', '--bundle', bundle.dir, 'c3']);
  let pids: number[] = [];
  for (let i = 0; i < 100 && pids.length < 3; i++) {
    pids = JSON.parse(await runtimeOk(sandbox, ['ps', '--format', 'json', 'c3'])) as number[];
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(pids.length, 3);
  await runtimeOk(sandbox, ['kill', '--all', 'c3', '9']);
  await waitForStatus(sandbox, 'c3', 'stopped');
  await runtimeOk(sandbox, ['delete', 'c3']);
});

test('hooks run with the state on stdin; a failing prestart hook aborts create and leaves nothing', async (t) => {
  const sandbox = await createSandbox(t);
  const hook = join(sandbox.root, 'hook.sh');
  await writeFile(hook, '#!/bin/sh\ncat > "$1"\n');
  await chmod(hook, 0o755);
  const bundle = await makeBundle(sandbox, ['true']);
  bundle.spec.hooks = {
    prestart: [{ path: hook, args: ['hook.sh', join(sandbox.root, 'prestart.json')] }],
    poststart: [{ path: hook, args: ['hook.sh', join(sandbox.root, 'poststart.json')] }],
    poststop: [{ path: hook, args: ['hook.sh', join(sandbox.root, 'poststop.json')] }],
  };
  await bundle.write();
  const result = await runtime(sandbox, ['run', '--bundle', bundle.dir, 'h1']);
  assert.equal(result.code, 0, result.stderr);
  const prestart = JSON.parse(await readFile(join(sandbox.root, 'prestart.json'), 'utf8')) as OciState;
  assert.equal(prestart.id, 'h1');
  assert.equal(prestart.status, 'creating');
  assert.ok(prestart.pid > 0);
  assert.equal(
    (JSON.parse(await readFile(join(sandbox.root, 'poststart.json'), 'utf8')) as OciState).status,
    'running',
  );
  assert.equal(
    (JSON.parse(await readFile(join(sandbox.root, 'poststop.json'), 'utf8')) as OciState).status,
    'stopped',
  );

  const failing = await makeBundle(sandbox, ['true']);
  failing.spec.hooks = { prestart: [{ path: '/bin/false' }] };
  await failing.write();
  const failed = await runtime(sandbox, ['create', '--bundle', failing.dir, 'h2']);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /prestart hook \/bin\/false exited with 1/);
  assert.match((await runtime(sandbox, ['state', 'h2'])).stderr, /does not exist/);
  assert.equal(await exists(join(CGROUP_ROOT, 'memory', failing.spec.linux!.cgroupsPath!)), false);
});

test('--preserve-fds passes extra file descriptors to the container as fds 3 and up', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['sh', '-c', 'echo through-fd3 >&3']);
  const target = join(sandbox.root, 'fd3.txt');
  await writeFile(target, '');
  const { spawn } = await import('node:child_process');
  const { openSync, closeSync } = await import('node:fs');
  const fd = openSync(target, 'a');
  try {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          RUNTIME_BIN,
          '--root',
          join(sandbox.runRoot, 'runtime'),
          'run',
          '--preserve-fds',
          '1',
          '--bundle',
          bundle.dir,
          'fds',
        ],
        { stdio: ['ignore', 'ignore', 'inherit', fd] },
      );
      child.once('exit', resolve);
    });
    assert.equal(code, 0);
  } finally {
    closeSync(fd);
  }
  assert.equal(await readFile(target, 'utf8'), 'through-fd3\n');
});
