/**
 * A program that cannot be executed fails `create` (runc's exec.LookPath before the start fifo)
 * with runc's message, leaving nothing behind; `exec` of one fails with 127 or 126.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox, listMounts, CGROUP_ROOT } from '../helpers/sandbox.js';
import { makeBundle, runtime, runtimeOk } from '../helpers/bundle.js';
import { execProgram } from '../helpers/exec.js';

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

/** Programs that cannot run, with runc's message (runc 1.1 built with Go 1.19, as Debian ships it). */
const CASES: { args: string[]; message: string }[] = [
  { args: ['nosuchcmd'], message: 'exec: "nosuchcmd": executable file not found in $PATH' },
  { args: ['/nosuch'], message: 'exec: "/nosuch": stat /nosuch: no such file or directory' },
  { args: ['./rel'], message: 'exec: "./rel": stat ./rel: no such file or directory' },
  { args: ['/etc/passwd'], message: 'exec: "/etc/passwd": permission denied' },
  { args: ['/etc/passwd/x'], message: 'exec: "/etc/passwd/x": stat /etc/passwd/x: not a directory' },
  // Only in $PATH's first directory, and not executable there: Go's LookPath goes on, finds nothing.
  { args: ['plain'], message: 'exec: "plain": executable file not found in $PATH' },
];

async function prepareRootfs(rootfs: string): Promise<void> {
  await mkdir(join(rootfs, 'usr', 'local', 'sbin'), { recursive: true });
  await writeFile(join(rootfs, 'usr', 'local', 'sbin', 'plain'), '#!/bin/sh\n');
  await chmod(join(rootfs, 'usr', 'local', 'sbin', 'plain'), 0o644);
  await chmod(join(rootfs, 'etc', 'passwd'), 0o644);
}

test('create of a program that cannot run fails with runc message and leaves nothing', async (t) => {
  const sandbox = await createSandbox(t);
  let n = 0;
  for (const { args, message } of CASES) {
    const id = `m${n++}`;
    const bundle = await makeBundle(sandbox, args, id);
    await prepareRootfs(bundle.rootfs);
    const result = await runtime(sandbox, ['create', '--bundle', bundle.dir, id]);
    assert.equal(result.code, 1, `${args[0]}: ${result.stderr}`);
    assert.equal(result.stderr, `berth-runtime: unable to start container process: ${message}\n`);
    assert.match((await runtime(sandbox, ['state', id])).stderr, /does not exist/);
    assert.equal(await exists(join(sandbox.runRoot, 'runtime', id)), false, 'no state directory');
    for (const controller of ['memory', 'pids'])
      assert.equal(await exists(join(CGROUP_ROOT, controller, bundle.spec.linux!.cgroupsPath!)), false);
    const mounts = await listMounts();
    assert.ok(!mounts.some((m) => m.mountPoint.startsWith(bundle.dir)), 'no mount left in the bundle');
  }
  // runc 1.1 (Go 1.19) says "permission denied" for a directory; Go 1.20+ (newer runc) "is a directory".
  const dir = await makeBundle(sandbox, ['/etc'], 'mdir');
  const result = await runtime(sandbox, ['create', '--bundle', dir.dir, 'mdir']);
  assert.equal(
    result.stderr,
    'berth-runtime: unable to start container process: exec: "/etc": is a directory\n',
  );
  assert.equal(result.code, 1);
});

test('the look-up uses the container PATH, working directory and user', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['tool'], 'p1');
  await mkdir(join(bundle.rootfs, 'opt', 'bin'), { recursive: true });
  await writeFile(join(bundle.rootfs, 'opt', 'bin', 'tool'), '#!/bin/sh\necho tool ran as $(id -u)\n');
  // Executable by its owner (root) only: uid 1000 may not run it.
  await chmod(join(bundle.rootfs, 'opt', 'bin', 'tool'), 0o744);
  bundle.spec.process!.env = ['PATH=/opt/bin'];
  await bundle.write();
  const ran = await runtime(sandbox, ['run', '--bundle', bundle.dir, 'p1']);
  assert.equal(ran.stdout, 'tool ran as 0\n', ran.stderr);
  assert.equal(ran.code, 0);

  // Without CAP_DAC_OVERRIDE, which would let any x bit do.
  const capabilities = bundle.spec.process!.capabilities;
  bundle.spec.process!.user = { uid: 1000, gid: 1000 };
  bundle.spec.process!.capabilities = { bounding: [], effective: [], permitted: [] };
  await bundle.write();
  const refused = await runtime(sandbox, ['create', '--bundle', bundle.dir, 'p2']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /exec: "tool": executable file not found in \$PATH\n$/);

  bundle.spec.process!.user = { uid: 0, gid: 0 };
  bundle.spec.process!.capabilities = capabilities;
  bundle.spec.process!.args = ['./bin/tool'];
  bundle.spec.process!.cwd = '/opt';
  await bundle.write();
  const relative = await runtime(sandbox, ['run', '--bundle', bundle.dir, 'p3']);
  assert.equal(relative.stdout, 'tool ran as 0\n', relative.stderr);
});

test('a program gone between the look-up and execve still fails with 127 (the late report)', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['/victim'], 'v1');
  await writeFile(join(bundle.rootfs, 'victim'), '#!/bin/sh\necho ran\n');
  await chmod(join(bundle.rootfs, 'victim'), 0o755);
  // A startContainer hook runs in the container after WAIT_START (the look-up), before EXEC.
  bundle.spec.hooks = { startContainer: [{ path: '/bin/rm', args: ['rm', '/victim'] }] };
  bundle.spec.root = { path: 'rootfs', readonly: false };
  await bundle.write();
  const result = await runtime(sandbox, ['run', '--bundle', bundle.dir, 'v1']);
  assert.equal(result.code, 127, result.stderr);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /exec-failed 2 exec \/victim: no such file or directory/);
});

test('runc reports the same messages for the same bundles', { skip: !(await hasRunc()) }, async (t) => {
  const sandbox = await createSandbox(t);
  let n = 0;
  for (const { args, message } of CASES) {
    const id = `r${n++}`;
    const bundle = await makeBundle(sandbox, args, id);
    await prepareRootfs(bundle.rootfs);
    const runc = await execProgram(
      'runc',
      ['--root', join(sandbox.runRoot, 'runc'), 'create', '--bundle', bundle.dir, id],
      { timeoutMs: 30_000 },
    );
    assert.equal(runc.code, 1, runc.stderr);
    assert.ok(
      runc.stderr.includes(`unable to start container process: ${JSON.stringify(message).slice(1, -1)}`),
      runc.stderr,
    );
    const left = await readdir(join(sandbox.runRoot, 'runc')).catch(() => []);
    assert.deepEqual(left, [], 'runc leaves nothing either');
  }
});

test('exec of a program that cannot run exits 127 or 126 with the message', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['sleep', '1000'], 'e1');
  await prepareRootfs(bundle.rootfs);
  await runtimeOk(sandbox, ['run', '-d', '--bundle', bundle.dir, 'e1']);
  const missing = await runtime(sandbox, ['exec', 'e1', 'nosuchcmd']);
  assert.equal(missing.code, 127);
  assert.equal(
    missing.stderr,
    'berth-runtime: unable to start container process: exec: "nosuchcmd": executable file not found in $PATH\n',
  );
  const denied = await runtime(sandbox, ['exec', 'e1', '/etc/passwd']);
  assert.equal(denied.code, 126);
  assert.match(denied.stderr, /exec: "\/etc\/passwd": permission denied\n$/);
  const fine = await runtime(sandbox, ['exec', 'e1', 'true']);
  assert.equal(fine.code, 0, fine.stderr);
  await runtimeOk(sandbox, ['delete', '--force', 'e1']);
});

async function hasRunc(): Promise<boolean> {
  return (await execProgram('runc', ['--version']).catch(() => ({ code: 127 }))).code === 0;
}
