/**
 * A container between two runs of its restart policy, as Docker shows and treats it: State
 * `restarting` with Running and Restarting true and no PID; listed by `docker ps` without -a as
 * "Restarting (1) ..." and by `status=restarting`; `rm` without -f, exec, pause and top refused;
 * `docker wait` waits for the next exit; kill ends the loop; a berthd restart picks the loop up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSandbox } from '../helpers/sandbox.js';
import { docker, startBerthd, type Berthd } from '../helpers/berthd.js';
import type { ExecResult } from '../helpers/exec.js';
import { ensureFixture } from '../../fixtures/index.js';

const POLL_MS = 50;
/** Attempts of a check that a restart may race: each starts when the container waits again. */
const ATTEMPTS = 8;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Inspected {
  State: { Status: string; Running: boolean; Restarting: boolean; Pid: number; ExitCode: number };
  RestartCount: number;
}

test('a restarting container: Running and Restarting, refused operations, wait, kill, recovery', async (t) => {
  const sandbox = await createSandbox(t);
  const busybox = await ensureFixture('busybox');
  let daemon: Berthd = await startBerthd(t, sandbox);
  const run = (args: string[]): Promise<ExecResult> => docker(sandbox, daemon.dockerHost, args);
  assert.equal((await run(['load', '-i', busybox.dockerArchive])).code, 0);
  const inspect = async (id: string): Promise<Inspected> => {
    const result = await run(['inspect', '--type', 'container', id]);
    assert.equal(result.code, 0, result.stderr);
    return (JSON.parse(result.stdout) as Inspected[])[0] as Inspected;
  };
  /** Waits (bounded) until the container waits for a restart, with at least `count` restarts. */
  const restarting = async (id: string, count = 0): Promise<Inspected> => {
    for (let waited = 0; waited <= 60_000; waited += POLL_MS) {
      const record = await inspect(id);
      if (record.State.Restarting && record.RestartCount >= count) return record;
      await sleep(POLL_MS);
    }
    return assert.fail(`${id} never waited for a restart`);
  };
  /**
   * Runs `check` while the container waits for a restart; a result taken across a restart (the
   * restart count moved on) is not judged and the check runs again.
   */
  const duringBackOff = async (id: string, check: () => Promise<ExecResult>): Promise<ExecResult> => {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const before = await restarting(id);
      const result = await check();
      const after = await inspect(id);
      if (after.RestartCount === before.RestartCount && after.State.Restarting) return result;
    }
    return assert.fail(`no check of ${id} fitted between two restarts`);
  };
  const loop = async (name: string): Promise<string> => {
    const started = await run([
      'run',
      '-d',
      '--name',
      name,
      '--restart',
      'always',
      '--cgroup-parent',
      sandbox.cgroupParent,
      'busybox',
      'false',
    ]);
    assert.equal(started.code, 0, started.stderr);
    return started.stdout.trim();
  };

  const id = await loop('looping');
  // From the fourth restart on the back-off is 800 ms and more: room for the checks.
  const record = await restarting(id, 4);
  const { Status, Running, Restarting, Pid, ExitCode } = record.State;
  assert.deepEqual(
    { Status, Running, Restarting, Pid, ExitCode },
    { Status: 'restarting', Running: true, Restarting: true, Pid: 0, ExitCode: 1 },
  );

  const ps = await duringBackOff(id, () => run(['ps', '--format', '{{.Names}} {{.Status}}']));
  assert.match(ps.stdout, /^looping Restarting \(1\) (Less than a second|\d+ seconds?) ago$/m);
  const filtered = await duringBackOff(id, () => run(['ps', '-q', '--filter', 'status=restarting']));
  assert.equal(filtered.stdout.trim(), id.slice(0, 12));
  const runningOnly = await duringBackOff(id, () => run(['ps', '-q', '--filter', 'status=running']));
  assert.equal(runningOnly.stdout.trim(), '');

  const rm = await duringBackOff(id, () => run(['rm', id]));
  assert.notEqual(rm.code, 0);
  assert.match(
    rm.stderr,
    /cannot remove container "\/looping": container is restarting: stop the container before removing or force remove/,
  );
  for (const args of [
    ['exec', id, 'true'],
    ['pause', id],
    ['top', id],
  ]) {
    const refused = await duringBackOff(id, () => run(args));
    assert.notEqual(refused.code, 0, `${args[0]} must be refused`);
    assert.match(
      refused.stderr,
      new RegExp(`Container ${id} is restarting, wait until the container is running`),
    );
  }
  const stats = await duringBackOff(id, () => run(['stats', '--no-stream', '--format', '{{.Name}}', id]));
  assert.equal(stats.code, 0, stats.stderr);

  // `docker wait` during the back-off returns at the next exit, not at once.
  const waitFrom = await restarting(id);
  const waited = await run(['wait', id]);
  assert.equal(waited.stdout.trim(), '1');
  assert.ok((await inspect(id)).RestartCount > waitFrom.RestartCount, 'wait returned only after a restart');

  // kill during the back-off ends the loop (had a run slipped in, SIGKILL would have ended it too).
  await restarting(id);
  const killed = await run(['kill', id]);
  assert.equal(killed.code, 0, killed.stderr);
  const afterKill = await inspect(id);
  assert.equal(afterKill.State.Status, 'exited');
  assert.equal(afterKill.State.Running, false);
  assert.equal(afterKill.State.Restarting, false);
  await sleep(3000); // well past the pending restart's time
  assert.equal((await inspect(id)).RestartCount, afterKill.RestartCount, 'no restart after kill');
  assert.equal((await run(['rm', id])).code, 0);

  // A berthd killed during the back-off carries the loop on after it starts again.
  const survivor = await loop('survivor');
  const beforeCrash = await restarting(survivor, 2);
  await daemon.stop('SIGKILL');
  daemon = await startBerthd(t, sandbox);
  const carriedOn = await restarting(survivor, beforeCrash.RestartCount + 1);
  assert.equal(carriedOn.State.Running, true);
  const forced = await run(['rm', '-f', survivor]);
  assert.equal(forced.code, 0, forced.stderr);
});
