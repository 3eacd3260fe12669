/**
 * The sync protocol of docs/shim-plan.md as handshake() speaks it, whoever started the shim
 * (Node's spawn or berth-spawn): a unix socket pair stands in for the shim's fd 4.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ExecFailedError,
  LineReader,
  ShimOperationError,
  handshake,
  type ShimProcess,
} from '../../../src/runtime/shim-process.js';
import { BerthError } from '../../../src/common/errors.js';

/** Both ends of a connection: `ours` for handshake(), `shim` for the test to speak as the shim. */
async function socketPair(t: TestContext): Promise<{ ours: Socket; shim: Socket; shimLines: LineReader }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-shim-process-'));
  const server = createServer();
  const path = join(dir, 's');
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const ours = connect(path);
  const shim = await accepted;
  t.after(async () => {
    ours.destroy();
    shim.destroy();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  return { ours, shim, shimLines: new LineReader(shim) };
}

function fakeProcess(): ShimProcess & { exit(code: number): void; released: boolean } {
  let exit: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => (exit = resolve));
  const fake = {
    child: { pid: 4242, stdout: null, stderr: null },
    exited,
    released: false,
    exit: (code: number) => exit(code),
    release: () => {
      fake.released = true;
    },
  };
  return fake;
}

test('pid, go, runtime hooks, resume, created: the handle names both processes', async (t) => {
  const { ours, shim, shimLines } = await socketPair(t);
  const started = fakeProcess();
  shim.write('pid 77\n');
  const handle = await handshake(started, ours, new LineReader(ours));
  assert.equal(handle.pid, 77);
  assert.equal(handle.child.pid, 4242);
  const hooksRan: string[] = [];
  const proceeding = handle.proceed(async () => {
    hooksRan.push('hooks');
  });
  assert.equal(await shimLines.next(), 'go');
  shim.write('runtime-hooks\n');
  assert.equal(await shimLines.next(), 'resume');
  assert.deepEqual(hooksRan, ['hooks']);
  shim.write('created\n');
  await proceeding;
  handle.release();
  assert.equal(started.released, true);
});

test('an error line before pid becomes the operation error, once the shim has exited', async (t) => {
  const { ours, shim } = await socketPair(t);
  const started = fakeProcess();
  shim.write('error 3 MOUNT 2 mounting /x: No such file or directory\n');
  let settled = false;
  const failing = handshake(started, ours, new LineReader(ours)).finally(() => (settled = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(settled, false, 'it waits for the exit');
  started.exit(1);
  const err = await failing.catch((e: unknown) => e);
  assert.ok(err instanceof ShimOperationError);
  assert.equal(err.operation, 'MOUNT');
  assert.equal(err.index, 3);
  assert.match(err.message, /plan step 3.*mounting \/x/);
});

test('EOF before pid reports the exit code the process gave', async (t) => {
  const { ours, shim } = await socketPair(t);
  const started = fakeProcess();
  shim.end();
  started.exit(127);
  const err = await handshake(started, ours, new LineReader(ours)).catch((e: unknown) => e);
  assert.ok(err instanceof BerthError);
  assert.match(err.message, /berth-shim exited \(127\) before starting the container/);
});

test('exec-failed after go is the ExecFailedError', async (t) => {
  const { ours, shim, shimLines } = await socketPair(t);
  const started = fakeProcess();
  shim.write('pid 9\n');
  const handle = await handshake(started, ours, new LineReader(ours));
  const proceeding = handle.proceed().catch((e: unknown) => e);
  assert.equal(await shimLines.next(), 'go');
  shim.write('exec-failed 2 /nope: No such file or directory\n');
  started.exit(1);
  const err = await proceeding;
  assert.ok(err instanceof ExecFailedError);
  assert.equal(err.errno, 2);
});

test('a failed EXEC before `created` is the ExecFailedError with runc message and exit code', async (t) => {
  const cases: [string, number, string][] = [
    ['2 exec: "nosuchcmd": executable file not found in $PATH', 127, 'not found in $PATH'],
    ['20 exec: "/etc/passwd/x": stat /etc/passwd/x: not a directory', 127, 'not a directory'],
    ['13 exec: "/etc/passwd": permission denied', 126, 'permission denied'],
    ['21 exec: "/etc": is a directory', 126, 'is a directory'],
  ];
  for (const [report, exitCode, text] of cases) {
    const { ours, shim, shimLines } = await socketPair(t);
    const started = fakeProcess();
    shim.write('pid 9\n');
    const handle = await handshake(started, ours, new LineReader(ours));
    const proceeding = handle.proceed().catch((e: unknown) => e);
    assert.equal(await shimLines.next(), 'go');
    shim.write(`error 41 EXEC ${report}\n`);
    started.exit(1);
    const err = await proceeding;
    assert.ok(err instanceof ExecFailedError);
    assert.equal(err.exitCode, exitCode);
    assert.equal(err.kind, 'invalid-argument');
    assert.ok(err.message.startsWith('unable to start container process: exec: "'), err.message);
    assert.ok(err.message.endsWith(text), err.message);
  }
});
