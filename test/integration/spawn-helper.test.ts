/**
 * berth-spawn, berthd's shim-spawning coprocess (docs/spawn-helper.md): the fds it hands a shim,
 * the exit codes it reports, its replacement after it died, and berthd's containers started
 * through it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { docker, startBerthd } from '../helpers/berthd.js';
import { ensureFixture } from '../../fixtures/index.js';
import { execProgram } from '../helpers/exec.js';
import { LineReader } from '../../src/runtime/shim-process.js';
import {
  SpawnHelper,
  UNKNOWN_EXIT,
  spawnHelper,
  spawnHelperPath,
  spawnShimViaHelper,
} from '../../src/runtime/spawn-helper.js';

function helperBinary(): string {
  const binary = spawnHelperPath();
  assert.ok(binary, 'berth-spawn is not built (make -C native, or set BERTH_SPAWN)');
  return binary;
}

/**
 * A stand-in for berth-shim: it reports its arguments and open fds on fd 4, echoes the plan it read
 * from fd 3 to EOF, waits for one line on fd 4 and exits with the number on it.
 */
async function fakeShim(sandbox: Sandbox): Promise<string> {
  const path = join(sandbox.root, 'fake-shim');
  await writeFile(
    path,
    [
      '#!/bin/sh',
      'echo "args $*" >&4',
      'echo "stdio $(/bin/readlink /proc/$$/fd/0) $(/bin/readlink /proc/$$/fd/1) $(/bin/readlink /proc/$$/fd/2)" >&4',
      // ls lists the shell's fds from outside: no pipe of a command substitution among them.
      '/bin/ls -l /proc/$$/fd >&4',
      'echo end >&4',
      'echo "sid $(/usr/bin/cut -d" " -f6 /proc/$$/stat) pid $$" >&4',
      'echo "plan $(/bin/cat <&3)" >&4',
      'read code <&4',
      'exit "$code"',
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  return path;
}

function lines(reader: LineReader, count: number): Promise<Array<string | undefined>> {
  return Promise.all(Array.from({ length: count }, () => reader.next()));
}

function connected(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
}

test('berth-spawn gives the shim the plan on fd 3, the sync socket on fd 4, /dev/null as stdio and nothing else', async (t) => {
  const sandbox = await createSandbox(t);
  const shimScript = await fakeShim(sandbox);
  const helper = new SpawnHelper(helperBinary(), shimScript);
  t.after(() => helper.kill());
  sandbox.trackProcess(helper.pid);
  const { plan, sync, shim } = helper.start();
  const reader = new LineReader(sync);
  await connected(plan);
  plan.end('the plan\nsecond line');
  const { pid, exited } = await shim;
  sandbox.trackProcess(pid);
  assert.equal(await reader.next(), 'args launch');
  assert.equal(await reader.next(), 'stdio /dev/null /dev/null /dev/null');
  const fds = new Map<number, string>();
  for (let line = await reader.next(); line !== 'end' && line !== undefined; line = await reader.next()) {
    const [, fd, target] = / (\d+) -> (.*)$/.exec(line) ?? [];
    if (fd !== undefined) fds.set(Number(fd), target ?? '');
  }
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((fd) => fds.has(fd)),
    [true, true, true, true, true],
  );
  assert.match(fds.get(3) ?? '', /^socket:/);
  assert.match(fds.get(4) ?? '', /^socket:/);
  // Nothing of the coprocess's or this process's: above 4 only the shell's own (its script, and
  // its copy of stdout while ls runs).
  for (const [fd, target] of fds)
    if (fd > 4) assert.ok(target === shimScript || target === '/dev/null', `fd ${fd} -> ${target}`);
  const [session, planLine, planRest] = await lines(reader, 3);
  // Its own session: it leads it.
  assert.equal(session, `sid ${pid} pid ${pid}`);
  assert.equal(planLine, 'plan the plan');
  assert.equal(planRest, 'second line');
  sync.write('7\n');
  assert.equal(await exited, 7);
  sync.destroy();
});

test('a shim killed by a signal reports 128; the coprocess reports exits of many shims to the right callers', async (t) => {
  const sandbox = await createSandbox(t);
  const helper = new SpawnHelper(helperBinary(), await fakeShim(sandbox));
  t.after(() => helper.kill());
  sandbox.trackProcess(helper.pid);
  const started = Array.from({ length: 8 }, () => helper.start());
  const codes = await Promise.all(
    started.map(async ({ plan, sync, shim }, i) => {
      const reader = new LineReader(sync);
      await connected(plan);
      plan.end(`plan ${i}`);
      const { pid, exited } = await shim;
      sandbox.trackProcess(pid);
      let line = await reader.next();
      for (let n = 0; n < 100 && line !== undefined && !line.startsWith('plan '); n++)
        line = await reader.next();
      assert.equal(line, `plan plan ${i}`);
      if (i === 0) process.kill(pid, 'SIGKILL');
      else sync.write(`${i}\n`);
      const code = await exited;
      sync.destroy();
      return code;
    }),
  );
  assert.deepEqual(codes, [128, 1, 2, 3, 4, 5, 6, 7]);
});

test('connections from another process than its parent are refused', async (t) => {
  const sandbox = await createSandbox(t);
  const helper = new SpawnHelper(helperBinary(), await fakeShim(sandbox));
  t.after(() => helper.kill());
  sandbox.trackProcess(helper.pid);
  // One shim through it first: it listens.
  const { plan, sync, shim } = helper.start();
  await connected(plan);
  plan.end('x');
  const first = await shim;
  sandbox.trackProcess(first.pid);
  sync.write('0\n');
  assert.equal(await first.exited, 0);
  sync.destroy();
  // Another process connects and sends a well-formed header: the coprocess hangs up at once.
  const script = [
    `const s = require('net').connect(${JSON.stringify(helper.socketPath)});`,
    `s.on('connect', () => s.write('plan 999\\n'));`,
    `s.on('close', () => { console.log('closed'); process.exit(0); });`,
    `s.on('error', () => { console.log('closed'); process.exit(0); });`,
    `setTimeout(() => { console.log('open'); process.exit(0); }, 5000);`,
  ].join('\n');
  const outsider = await execProgram(process.execPath, ['-e', script], { timeoutMs: 20_000 });
  assert.equal(outsider.stdout.trim(), 'closed');
});

test('a shim started through spawnShimViaHelper speaks the sync protocol and its exit code arrives', async (t) => {
  const sandbox = await createSandbox(t);
  const path = join(sandbox.root, 'protocol-shim');
  await writeFile(
    path,
    [
      '#!/bin/sh',
      '/bin/cat <&3 >/dev/null',
      'echo "pid $$" >&4',
      'read go <&4',
      '[ "$go" = go ] || exit 9',
      'echo created >&4',
      'exit 5',
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  const previous = process.env.BERTH_SHIM;
  process.env.BERTH_SHIM = path;
  const helper = spawnHelper();
  t.after(async () => {
    helper?.kill();
    // The next test must not be handed this one while its death is still unnoticed.
    for (let i = 0; i < 500 && helper?.alive; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    if (previous === undefined) delete process.env.BERTH_SHIM;
    else process.env.BERTH_SHIM = previous;
  });
  assert.ok(helper);
  sandbox.trackProcess(helper.pid);
  const pending = spawnShimViaHelper();
  assert.ok(pending);
  const handle = await pending.launch(Buffer.from('plan'));
  sandbox.trackProcess(handle.pid);
  assert.equal(handle.pid, handle.child.pid, 'the fake shim reports its own pid as init');
  assert.equal(await parentOf(handle.pid), helper.pid, 'the shim is a child of the coprocess');
  await handle.proceed();
  assert.equal(await handle.exited, 5);
});

test('a coprocess that died is replaced, and a waiting shim it started still launches', async (t) => {
  const sandbox = await createSandbox(t);
  const path = join(sandbox.root, 'protocol-shim');
  await writeFile(
    path,
    [
      '#!/bin/sh',
      '/bin/cat <&3 >/dev/null',
      'echo "pid $$" >&4',
      'read go <&4',
      'echo created >&4',
      'exit 3',
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  const previous = process.env.BERTH_SHIM;
  process.env.BERTH_SHIM = path;
  const helpers: SpawnHelper[] = [];
  t.after(() => {
    for (const helper of helpers) helper.kill();
    if (previous === undefined) delete process.env.BERTH_SHIM;
    else process.env.BERTH_SHIM = previous;
  });
  const first = spawnHelper();
  assert.ok(first);
  helpers.push(first);
  sandbox.trackProcess(first.pid);
  // A shim started ahead of its plan, then the coprocess dies.
  const { plan, sync, shim } = first.start();
  const reader = new LineReader(sync);
  await connected(plan);
  const orphan = await shim;
  sandbox.trackProcess(orphan.pid);
  first.kill();
  for (let i = 0; i < 500 && first.alive; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(first.alive, false);
  // The shim still gets its plan and speaks; its exit is seen without a code.
  plan.end('plan');
  assert.equal(await reader.next(), `pid ${orphan.pid}`);
  sync.write('go\n');
  assert.equal(await reader.next(), 'created');
  assert.equal(await orphan.exited, UNKNOWN_EXIT);
  sync.destroy();
  const second = spawnHelper();
  assert.ok(second);
  helpers.push(second);
  sandbox.trackProcess(second.pid);
  assert.notEqual(second.pid, first.pid);
  const pending = spawnShimViaHelper();
  assert.ok(pending);
  const handle = await pending.launch(Buffer.from('plan'));
  sandbox.trackProcess(handle.pid);
  assert.equal(await parentOf(handle.pid), second.pid);
  await handle.proceed();
  assert.equal(await handle.exited, 3);
});

async function parentOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}

async function spawnHelperOf(berthdPid: number): Promise<number | undefined> {
  for (const pid of await childrenOf(berthdPid)) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === 'berth-spawn') return pid;
  }
  return undefined;
}

test('berthd starts containers through berth-spawn and replaces it after it was killed', async (t) => {
  helperBinary();
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const run = (args: string[]): ReturnType<typeof docker> => docker(sandbox, berthd.dockerHost, args);
  const busybox = await ensureFixture('busybox');
  assert.equal((await run(['load', '-i', busybox.dockerArchive])).code, 0);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  const started = await run(['run', '-d', ...cg, 'busybox', 'sleep', '1000']);
  assert.equal(started.code, 0, started.stderr);
  const first = started.stdout.trim();
  const berthdPid = berthd.child.pid ?? 0;
  const helper = await spawnHelperOf(berthdPid);
  assert.ok(helper, 'berthd runs berth-spawn');
  const initPid = Number((await run(['inspect', '--format', '{{.State.Pid}}', first])).stdout.trim());
  assert.equal(
    await parentOf(await parentOf(initPid)),
    helper,
    "the container's shim is a child of berth-spawn",
  );

  process.kill(helper, 'SIGKILL');
  // The running container is not touched; the next ones start (the first may take the shim that
  // was waiting for it, re-parented), and an exit code still reaches docker.
  const second = await run(['run', '-d', ...cg, 'busybox', 'sleep', '1000']);
  assert.equal(second.code, 0, second.stderr);
  const failing = await run(['run', '--rm', ...cg, 'busybox', 'sh', '-c', 'exit 3']);
  assert.equal(failing.code, 3, failing.stderr);
  const third = await run(['run', '-d', ...cg, 'busybox', 'sleep', '1000']);
  assert.equal(third.code, 0, third.stderr);
  const replacement = await spawnHelperOf(berthdPid);
  assert.ok(replacement && replacement !== helper, 'a new berth-spawn');
  const thirdInit = Number(
    (await run(['inspect', '--format', '{{.State.Pid}}', third.stdout.trim()])).stdout.trim(),
  );
  assert.equal(await parentOf(await parentOf(thirdInit)), replacement);
  const running = await run(['inspect', '--format', '{{.State.Running}}', first, second.stdout.trim()]);
  assert.equal(running.stdout.trim(), 'true\ntrue');
  const removed = await run(['rm', '-f', first, second.stdout.trim(), third.stdout.trim()]);
  assert.equal(removed.code, 0, removed.stderr);
});
