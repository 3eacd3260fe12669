/**
 * Resource abuse from inside containers (issue 8, "Load and resource abuse"): a fork bomb under
 * --pids-limit, a log flood under max-size x max-file, an attach client that never reads while
 * its container floods. The memory hog (-m 32m, OOMKilled, 137) is covered by
 * engine-docker-cli.test.ts ("an OOM-killed container is reported with OOMKilled and 137").
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { apiRequest, docker, startBerthd, type Berthd } from '../helpers/berthd.js';
import { ensureFixture } from '../../fixtures/index.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Daemon {
  sandbox: Sandbox;
  berthd: Berthd;
  run: (args: string[]) => ReturnType<typeof docker>;
  /** `docker run -d` in the sandbox's cgroup parent; returns the container id. */
  runDetached: (args: string[]) => Promise<string>;
}

async function daemonWithBusybox(t: TestContext): Promise<Daemon> {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const run = (args: string[]): ReturnType<typeof docker> => docker(sandbox, berthd.dockerHost, args);
  const loaded = await run(['load', '-i', (await ensureFixture('busybox')).dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);
  const runDetached = async (args: string[]): Promise<string> => {
    const started = await run(['run', '-d', '--cgroup-parent', sandbox.cgroupParent, ...args]);
    assert.equal(started.code, 0, started.stderr);
    return started.stdout.trim();
  };
  return { sandbox, berthd, run, runDetached };
}

async function inspect(run: Daemon['run'], format: string, id: string): Promise<string> {
  const result = await run(['inspect', '-f', format, id]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout.trim();
}

/** Resident memory of a process in bytes (VmRSS). */
async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
  assert.ok(kib, `no VmRSS for ${pid}`);
  return Number(kib) * 1024;
}

test('a fork bomb under --pids-limit 64 is contained and docker kill ends it', async (t) => {
  const { sandbox, berthd, run, runDetached } = await daemonWithBusybox(t);
  // Every bomb process forks bombs and sleepers until a fork fails (the shell then exits); the
  // sleepers hold their slots. The container's own process only waits, so it outlives the bomb.
  const id = await runDetached([
    '--pids-limit',
    '64',
    'busybox',
    'sh',
    '-c',
    'bomb() { while :; do bomb & sleep 1000 & done; }; bomb 2>/dev/null & exec sleep 1000',
  ]);
  const cgroup = `/sys/fs/cgroup/pids/${sandbox.cgroupParent}/${id}`;
  assert.equal((await readFile(join(cgroup, 'pids.max'), 'utf8')).trim(), '64');

  // Sample until the kernel refused a fork (pids.events counts refusals), bounded.
  let highest = 0;
  let refused = 0;
  for (let i = 0; i < 400 && refused === 0; i++) {
    highest = Math.max(highest, Number((await readFile(join(cgroup, 'pids.current'), 'utf8')).trim()));
    refused = Number(/^max (\d+)$/m.exec(await readFile(join(cgroup, 'pids.events'), 'utf8'))?.[1] ?? 0);
    await sleep(25);
  }
  assert.ok(refused > 0, 'the bomb reached the limit and forks were refused');
  for (let i = 0; i < 20; i++) {
    highest = Math.max(highest, Number((await readFile(join(cgroup, 'pids.current'), 'utf8')).trim()));
    await sleep(25);
  }
  assert.ok(highest <= 64, `pids.current stays within the limit (saw ${highest})`);
  assert.ok(highest >= 32, `the bomb really forked (saw at most ${highest} processes)`);

  // The host is fine: berthd answers and another container starts and runs.
  assert.equal((await apiRequest({ socketPath: berthd.socket }, '/_ping')).body, 'OK');
  const other = await run([
    'run',
    '--rm',
    '--cgroup-parent',
    sandbox.cgroupParent,
    'busybox',
    'sh',
    '-c',
    'echo alive',
  ]);
  assert.equal(other.code, 0, other.stderr);
  assert.equal(other.stdout, 'alive\n');

  const killed = await run(['kill', id]);
  assert.equal(killed.code, 0, killed.stderr);
  const waited = await run(['wait', id]);
  assert.equal(waited.code, 0, waited.stderr);
  assert.equal(waited.stdout.trim(), '137');
  assert.equal(await inspect(run, '{{.State.Running}}', id), 'false');
  const left = await readFile(join(cgroup, 'pids.current'), 'utf8').catch(() => '0');
  assert.equal(left.trim(), '0', 'no process of the bomb is left');
  assert.equal((await run(['rm', id])).code, 0);
});

test('a log flood with max-size=100k and max-file=2 keeps two files of at most 100k', async (t) => {
  const { run, runDetached } = await daemonWithBusybox(t);
  const lines = 20_000;
  const id = await runDetached([
    '--log-opt',
    'max-size=100k',
    '--log-opt',
    'max-file=2',
    'busybox',
    'sh',
    '-c',
    `i=0; while [ $i -lt ${lines} ]; do echo "flood line $i of the log abuse test"; i=$((i+1)); done`,
  ]);
  const waited = await run(['wait', id]);
  assert.equal(waited.stdout.trim(), '0', waited.stderr);

  const logPath = await inspect(run, '{{.LogPath}}', id);
  const dir = dirname(logPath);
  const files = (await readdir(dir)).filter((name) => name.startsWith(basename(logPath)));
  assert.deepEqual(files.sort(), [basename(logPath), `${basename(logPath)}.1`], 'the log and one rotation');
  let longestLine = 0;
  for (const name of files) {
    const text = await readFile(join(dir, name), 'utf8');
    for (const line of text.split('\n')) longestLine = Math.max(longestLine, line.length + 1);
  }
  for (const name of files) {
    const size = (await stat(join(dir, name))).size;
    assert.ok(size <= 100 * 1024 + longestLine, `${name} is ${size} bytes, more than 100k and a line`);
  }
  // Far more than 200k was written: the oldest lines are gone, the newest are kept.
  const logs = await run(['logs', '--tail', '1', id]);
  assert.equal(logs.stdout, `flood line ${lines - 1} of the log abuse test\n`);
  const all = await run(['logs', id]);
  assert.doesNotMatch(all.stdout, /^flood line 0 of/m);
});

/** A raw hijacked attach that never reads what berthd sends. */
async function stuckAttach(socketPath: string, id: string): Promise<Socket> {
  const socket = connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  socket.write(
    `POST /containers/${id}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n` +
      'Host: berth\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n',
  );
  // Read the response head only: the attach is in place, and from now on nothing is read.
  let head = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no attach response head: ${head}`)), 10_000);
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      resolve();
    };
    socket.on('data', onData);
  });
  assert.match(head, /^HTTP\/1\.1 101 /);
  return socket;
}

test('an attach client that never reads does not stall berthd or other containers', async (t) => {
  const { berthd, run, runDetached } = await daemonWithBusybox(t);
  const pid = berthd.child.pid ?? 0;
  const quiet = await runDetached(['busybox', 'sh', '-c', 'echo quiet container; sleep 1000']);
  // 400 MiB of 1000-byte lines once the gate file appears (after the attach is in place), then a
  // marker in the log and silence.
  const megabytes = 400;
  const flood = await runDetached([
    '--log-opt',
    'max-size=1m',
    '--log-opt',
    'max-file=1',
    'busybox',
    'sh',
    '-c',
    'while [ ! -e /tmp/go ]; do sleep 0.1; done; ' +
      `line="$(head -c 999 /dev/zero | tr '\\0' x)"; i=0; while [ $i -lt ${megabytes} ]; do ` +
      'yes "$line" | head -n 1049; usleep 20000; i=$((i+1)); done; ' +
      'echo flood-done; sleep 1000',
  ]);
  const socket = await stuckAttach(berthd.socket, flood);
  t.after(() => socket.destroy());
  const rssBefore = await rssBytes(pid);
  const gate = await run(['exec', flood, 'touch', '/tmp/go']);
  assert.equal(gate.code, 0, gate.stderr);

  // While the flood runs, berthd keeps answering (every request is bounded by apiRequest's own
  // timeout) and the other container's logs are served.
  const api = { socketPath: berthd.socket };
  let done = false;
  let peakRss = rssBefore;
  for (let i = 0; i < 300 && !done; i++) {
    assert.equal((await apiRequest(api, '/_ping')).body, 'OK');
    const list = await apiRequest(api, '/containers/json');
    assert.equal(list.status, 200);
    const logs = await run(['logs', quiet]);
    assert.equal(logs.stdout, 'quiet container\n', logs.stderr);
    peakRss = Math.max(peakRss, await rssBytes(pid));
    const tail = await run(['logs', '--tail', '1', flood]);
    done = tail.stdout === 'flood-done\n';
  }
  assert.ok(done, 'the flood finished');
  peakRss = Math.max(peakRss, await rssBytes(pid));
  // A stuck client may cost a bounded buffer, not the whole flood.
  const grown = peakRss - rssBefore;
  assert.ok(
    grown < 192 * 1024 * 1024,
    `berthd grew by ${Math.round(grown / 1048576)} MiB while ${megabytes} MiB went to a client that never reads`,
  );

  const stopped = await run(['stop', '-t', '1', flood]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal(await inspect(run, '{{.State.Running}}', flood), 'false');
  assert.equal((await run(['rm', '-f', flood, quiet])).code, 0);
});
