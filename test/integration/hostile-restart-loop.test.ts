/**
 * Crash loops: containers with `--restart always` whose command exits at once. berthd must back
 * off like Docker (each delay longer than the one before), `docker stop` must end the loop also
 * while the container waits for its next restart, and after more than 20 restarts nothing of the
 * earlier runs may remain: no mount, cgroup, network namespace, veth or process.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CGROUP_ROOT, createSandbox, listMounts, type Sandbox } from '../helpers/sandbox.js';
import { docker, startBerthd, type Berthd } from '../helpers/berthd.js';
import { execProgram } from '../helpers/exec.js';
import { ensureFixture } from '../../fixtures/index.js';

/** Three looping containers reaching this many restarts each make 21 restarts in all. */
const LOOPERS = 3;
const RESTARTS_EACH = 7;
const POLL_MS = 50;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Resources {
  mounts: string[];
  cgroups: string[];
  netns: string[];
  veths: string[];
}

async function cgroupsBelow(sandbox: Sandbox): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory()) continue;
      found.push(join(dir, entry.name));
      await walk(join(dir, entry.name));
    }
  };
  for (const hierarchy of await readdir(CGROUP_ROOT))
    await walk(join(CGROUP_ROOT, hierarchy, sandbox.cgroupParent));
  return found.sort();
}

async function resources(sandbox: Sandbox): Promise<Resources> {
  const mounts = (await listMounts()).map((m) => m.mountPoint).filter((p) => p.startsWith(sandbox.root));
  const netns = (await execProgram('ip', ['netns', 'list'])).stdout
    .split('\n')
    .filter((line) => line.includes(sandbox.id));
  const veths = (await execProgram('ip', ['-o', 'link', 'show', 'master', sandbox.name('br')])).stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(':')[1]?.trim() ?? line);
  return { mounts: mounts.sort(), cgroups: await cgroupsBelow(sandbox), netns, veths };
}

/** Container processes (anything in the sandbox's cgroups or rooted in it), berthd's own excluded. */
async function containerProcesses(sandbox: Sandbox, daemon: Berthd): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === daemon.child.pid || Number(entry) === process.pid) continue;
    const root = await readlink(`/proc/${entry}/root`).catch(() => '');
    const cgroup = await readFile(`/proc/${entry}/cgroup`, 'utf8').catch(() => '');
    if (root.startsWith(sandbox.root) || cgroup.includes(sandbox.cgroupParent)) {
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
      found.push(`${entry} ${cmdline.replace(/\0/g, ' ').trim()}`);
    }
  }
  return found;
}

interface State {
  Status: string;
  Running: boolean;
  Restarting: boolean;
}

async function inspect(
  sandbox: Sandbox,
  daemon: Berthd,
  id: string,
): Promise<{ State: State; RestartCount: number }> {
  const result = await docker(sandbox, daemon.dockerHost, ['inspect', '--type', 'container', id]);
  assert.equal(result.code, 0, result.stderr);
  const [record] = JSON.parse(result.stdout) as [{ State: State; RestartCount: number }];
  return record;
}

/** Polls until `done` holds, at most `limitMs` (a bound on the loop, not a measurement). */
async function until(what: string, limitMs: number, done: () => Promise<boolean>): Promise<void> {
  for (let waited = 0; ; waited += POLL_MS) {
    if (await done()) return;
    if (waited >= limitMs) assert.fail(`gave up waiting: ${what}`);
    await sleep(POLL_MS);
  }
}

/** Nanosecond times of the container's `event` events so far. */
async function eventTimes(
  sandbox: Sandbox,
  daemon: Berthd,
  id: string,
  event: string,
  since: number,
): Promise<bigint[]> {
  const result = await docker(sandbox, daemon.dockerHost, [
    'events',
    '--since',
    String(since),
    '--until',
    String(Math.ceil(Date.now() / 1000) + 1),
    '--filter',
    `container=${id}`,
    '--filter',
    `event=${event}`,
    '--format',
    '{{.TimeNano}}',
  ]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => BigInt(line));
}

test('a crash-looping container backs off, stops on docker stop and leaks nothing', async (t) => {
  const sandbox = await createSandbox(t);
  const busybox = await ensureFixture('busybox');
  const daemon = await startBerthd(t, sandbox);
  const run = (args: string[]): ReturnType<typeof docker> => docker(sandbox, daemon.dockerHost, args);
  const loaded = await run(['load', '-i', busybox.dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);
  const before = await resources(sandbox);
  const since = Math.floor(Date.now() / 1000) - 1;
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

  await t.test('docker stop while the container waits for its restart ends the loop', async () => {
    const id = await loop('stopped-loop');
    await until('two restarts, then waiting for the third', 30_000, async () => {
      const record = await inspect(sandbox, daemon, id);
      return record.RestartCount >= 2 && record.State.Restarting;
    });
    const stopped = await run(['stop', id]);
    assert.equal(stopped.code, 0, stopped.stderr);
    const count = (await inspect(sandbox, daemon, id)).RestartCount;
    // The pending restart was due within a second or two; give it well beyond that to happen.
    await sleep(4000);
    const after = await inspect(sandbox, daemon, id);
    assert.equal(after.RestartCount, count, 'no restart after docker stop');
    assert.equal(after.State.Restarting, false, 'not restarting after docker stop');
    assert.equal(after.State.Status, 'exited');
    const removed = await run(['rm', '-f', id]);
    assert.equal(removed.code, 0, removed.stderr);
  });

  await t.test(`${LOOPERS} loops of ${RESTARTS_EACH} restarts: back-off, then nothing leaked`, async () => {
    const ids: string[] = [];
    for (let i = 0; i < LOOPERS; i++) ids.push(await loop(`loop-${i}`));
    // RestartCount counts the restart being waited for, as Docker's does: RESTARTS_EACH done and
    // the next one pending. 200 ms doubling to 12.8 s: about 26 s of back-off.
    await until(`${RESTARTS_EACH} restarts of every container, all waiting`, 120_000, async () => {
      for (const id of ids) {
        const record = await inspect(sandbox, daemon, id);
        // Like Docker's, a container waiting for its restart is Running and Restarting.
        if (record.RestartCount <= RESTARTS_EACH || !record.State.Restarting || !record.State.Running)
          return false;
      }
      return true;
    });
    let restarts = 0;

    for (const id of ids) {
      const dies = await eventTimes(sandbox, daemon, id, 'die', since);
      const starts = await eventTimes(sandbox, daemon, id, 'start', since);
      restarts += starts.length - 1;
      assert.ok(
        dies.length >= RESTARTS_EACH && starts.length >= RESTARTS_EACH + 1,
        `${id}: ${dies.length} die and ${starts.length} start events for ${RESTARTS_EACH} restarts`,
      );
      // The back-off: from each exit to the next start at least Docker's 100 ms doubling (the
      // timer cannot fire early; load only adds, so no upper bound is checked). Without a
      // back-off the later delays would be a start's time, far below 1.6, 3.2 and 6.4 s.
      const delays = dies.slice(0, RESTARTS_EACH).map((die, i) => Number((starts[i + 1] ?? die) - die) / 1e6);
      delays.forEach((delay, i) =>
        assert.ok(
          delay >= 0.95 * 100 * 2 ** i,
          `${id}: restart ${i + 1} came after ${delay.toFixed(0)} ms, before its back-off of ${100 * 2 ** i} ms: ${delays.map((d) => d.toFixed(0)).join(', ')} ms`,
        ),
      );
    }

    assert.ok(restarts >= 20, `${restarts} restarts`);

    // Every container waits for its next restart: none of the 21 runs may have left anything.
    assert.deepEqual(await resources(sandbox), before, 'between restarts, resources are as before');
    assert.deepEqual(await containerProcesses(sandbox, daemon), [], 'no container process between restarts');

    const removed = await run(['rm', '-f', ...ids]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.deepEqual(await resources(sandbox), before, 'after rm -f, resources are as before');
    assert.deepEqual(await containerProcesses(sandbox, daemon), [], 'no container process after rm -f');
  });
});
