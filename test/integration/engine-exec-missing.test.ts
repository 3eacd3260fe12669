/**
 * A command that cannot be executed, through the real docker CLI and berth's own: dockerd's start
 * error (HTTP 400, State left "created" with ExitCode 127/126 and Error, no start or die event),
 * --rm removing the container, and exec's message on the stream with exit code 127/126.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { startBerthd, docker, type Berthd } from '../helpers/berthd.js';
import { execProgram, type ExecResult } from '../helpers/exec.js';
import { ensureFixture } from '../../fixtures/index.js';

const BERTH = fileURLToPath(new URL('../../../bin/berth.js', import.meta.url));

const RUNC = 'unable to start container process: ';
const CREATE = `failed to create task for container: OCI runtime create failed: ${RUNC}`;
const EXEC = `OCI runtime exec failed: exec failed: ${RUNC}`;

/** What cannot run in busybox, the exit code the docker CLI gives it and runc's reason. */
const CASES: { cmd: string; code: number; reason: string }[] = [
  { cmd: 'nosuchcmd', code: 127, reason: 'exec: "nosuchcmd": executable file not found in $PATH' },
  { cmd: '/nosuch', code: 127, reason: 'exec: "/nosuch": stat /nosuch: no such file or directory' },
  { cmd: '/etc/passwd', code: 126, reason: 'exec: "/etc/passwd": permission denied' },
  // dockerd appends EACCES's text to Go 1.20's EISDIR so that clients map it to 126.
  { cmd: '/etc', code: 126, reason: 'exec: "/etc": is a directory: permission denied' },
];

interface Daemon {
  sandbox: Sandbox;
  berthd: Berthd;
  run: (args: string[]) => Promise<ExecResult>;
  berth: (args: string[]) => Promise<ExecResult>;
}

async function daemonWithBusybox(t: TestContext): Promise<Daemon> {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const run = (args: string[]): Promise<ExecResult> => docker(sandbox, berthd.dockerHost, args);
  const home = join(sandbox.root, 'home');
  await mkdir(home);
  const berth = (args: string[]): Promise<ExecResult> =>
    execProgram(process.execPath, [BERTH, ...args], {
      timeoutMs: 30_000,
      env: { PATH: process.env.PATH, HOME: home, BERTH_HOST: berthd.dockerHost },
    });
  const loaded = await run(['load', '-i', (await ensureFixture('busybox')).dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);
  return { sandbox, berthd, run, berth };
}

interface State {
  Status: string;
  Running: boolean;
  ExitCode: number;
  Error: string;
  StartedAt: string;
}

async function inspectState(d: Daemon, name: string): Promise<State> {
  const out = await d.run(['inspect', '--format', '{{json .State}}', name]);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout) as State;
}

async function eventsOf(d: Daemon, since: string, id: string): Promise<string[]> {
  const until = String(Math.ceil(Date.now() / 1000) + 1);
  const args = ['events', '--since', since, '--until', until, '--filter', `container=${id}`];
  const events = await d.run([...args, '--format', '{{.Action}}']);
  assert.equal(events.code, 0, events.stderr);
  return events.stdout.split('\n').filter(Boolean);
}

test('docker run of a command that cannot run: the start error, exit code and State', async (t) => {
  const d = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', d.sandbox.cgroupParent];
  const since = String(Math.floor(Date.now() / 1000) - 1);
  for (const [i, { cmd, code, reason }] of CASES.entries()) {
    const name = `c${i}`;
    const ran = await d.run(['run', '--name', name, ...cg, 'busybox', cmd]);
    assert.equal(ran.code, code, `${cmd}: ${ran.stderr}`);
    assert.equal(ran.stdout, '');
    assert.ok(ran.stderr.includes(`docker: Error response from daemon: ${CREATE}${reason}`), ran.stderr);
    const state = await inspectState(d, name);
    assert.equal(state.Status, 'created', cmd);
    assert.equal(state.Running, false);
    assert.equal(state.ExitCode, code, cmd);
    assert.equal(state.Error, `${CREATE}${reason}`);
    assert.equal(state.StartedAt, '0001-01-01T00:00:00Z', 'never started');
    const id = (await d.run(['inspect', '--format', '{{.Id}}', name])).stdout.trim();
    assert.deepEqual(await eventsOf(d, since, id), ['create'], 'no start, no die');
  }
  // The API itself: 400 with the message.
  const started = await d.run(['start', 'c0']);
  assert.equal(started.code, 1);
  assert.match(
    started.stderr,
    /Error response from daemon: failed to create task for container: .*"nosuchcmd"/,
  );
  // A detached run prints the ID, then fails the same way.
  const detached = await d.run(['run', '-d', ...cg, 'busybox', 'nosuchcmd']);
  assert.equal(detached.code, 127, detached.stderr);
  assert.match(detached.stdout, /^[0-9a-f]{64}\n$/);
});

test('docker run --rm of a missing command removes the container', async (t) => {
  const d = await daemonWithBusybox(t);
  const since = String(Math.floor(Date.now() / 1000) - 1);
  const ran = await d.run(['run', '--rm', '--cgroup-parent', d.sandbox.cgroupParent, 'busybox', 'nosuchcmd']);
  assert.equal(ran.code, 127, ran.stderr);
  assert.ok(ran.stderr.includes(`${CREATE}${CASES[0]!.reason}`), ran.stderr);
  const ps = await d.run(['ps', '-aq']);
  assert.equal(ps.stdout, '', 'removed');
  const events = await d.run([
    'events',
    '--since',
    since,
    '--until',
    String(Math.ceil(Date.now() / 1000) + 1),
    '--format',
    '{{.Type}} {{.Action}}',
    '--filter',
    'type=container',
  ]);
  assert.deepEqual(events.stdout.split('\n').filter(Boolean), ['container create', 'container destroy']);
});

test('docker exec of a command that cannot run prints dockerd message and exits 127/126', async (t) => {
  const d = await daemonWithBusybox(t);
  const up = await d.run([
    'run',
    '-d',
    '--cgroup-parent',
    d.sandbox.cgroupParent,
    'busybox',
    'sleep',
    '1000',
  ]);
  assert.equal(up.code, 0, up.stderr);
  const id = up.stdout.trim();
  for (const { cmd, code, reason } of CASES) {
    const exec = await d.run(['exec', id, cmd]);
    assert.equal(exec.code, code, `${cmd}: ${exec.stdout}${exec.stderr}`);
    assert.equal(exec.stdout, `${EXEC}${reason}\r\n`);
    const tty = await d.run(['exec', '-t', id, cmd]);
    assert.equal(tty.code, code, `${cmd} -t: ${tty.stdout}${tty.stderr}`);
  }
  const detached = await d.run(['exec', '-d', id, 'nosuchcmd']);
  assert.notEqual(detached.code, 0);
  assert.ok(
    detached.stderr.includes(`Error response from daemon: ${EXEC}${CASES[0]!.reason}`),
    detached.stderr,
  );
  const still = await d.run(['exec', id, 'true']);
  assert.equal(still.code, 0, still.stderr);
});

test('berth run and berth exec print the same and exit like docker', async (t) => {
  const d = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', d.sandbox.cgroupParent];
  for (const { cmd, code, reason } of CASES) {
    const ran = await d.berth(['run', '--rm', ...cg, 'busybox', cmd]);
    assert.equal(ran.code, code, `${cmd}: ${ran.stderr}`);
    assert.ok(ran.stderr.includes(`Error response from daemon: ${CREATE}${reason}`), ran.stderr);
  }
  assert.equal((await d.run(['ps', '-aq'])).stdout, '');
  const up = await d.berth(['run', '-d', ...cg, 'busybox', 'sleep', '1000']);
  const id = up.stdout.trim();
  for (const { cmd, code, reason } of CASES) {
    const exec = await d.berth(['exec', id, cmd]);
    assert.equal(exec.code, code, `${cmd}: ${exec.stderr}`);
    assert.equal(exec.stdout, `${EXEC}${reason}\r\n`);
  }
});
