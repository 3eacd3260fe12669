/**
 * What third-party clients observe, pinned to dockerd's answers through the real docker CLI:
 * the event sequence of a run/exec/stop/rm (with network, volume and image events), docker ps
 * and docker images filters, inspect's normalised fields and Mounts, and the create-time errors.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { apiRequest, docker, startBerthd, type Berthd } from '../helpers/berthd.js';
import { ensureFixture } from '../../fixtures/index.js';

interface Daemon {
  sandbox: Sandbox;
  berthd: Berthd;
  run: (args: string[]) => ReturnType<typeof docker>;
  ok: (args: string[]) => Promise<string>;
}

async function daemonWithBusybox(t: TestContext): Promise<Daemon> {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  // Containers go under the sandbox's cgroup parent, which the sandbox removes.
  const withCgroup = (args: string[]): string[] =>
    args[0] === 'run' || args[0] === 'create'
      ? [args[0], '--cgroup-parent', sandbox.cgroupParent, ...args.slice(1)]
      : args;
  const run = (args: string[]): ReturnType<typeof docker> =>
    docker(sandbox, berthd.dockerHost, withCgroup(args));
  const ok = async (args: string[]): Promise<string> => {
    const result = await run(args);
    assert.equal(result.code, 0, `docker ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  await ok(['load', '-i', (await ensureFixture('busybox')).dockerArchive]);
  return { sandbox, berthd, run, ok };
}

interface Event {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
}

test('events of a run, exec, network connect, stop, rm and image tag/rmi, as dockerd sends them', async (t) => {
  const { ok, sandbox } = await daemonWithBusybox(t);
  const net = sandbox.name('pn');
  await ok(['network', 'create', net]);
  const since = (Date.now() / 1000 - 1).toFixed(3);
  const id = (
    await ok(['run', '-d', '--name', 'ev', '-v', 'evvol:/x', '--network', net, 'busybox', 'sleep', '100'])
  ).trim();
  await ok(['exec', 'ev', 'true']);
  await ok(['stop', '-t', '1', 'ev']);
  await ok(['rm', 'ev']);
  await ok(['tag', 'busybox', 'evtag:1']);
  await ok(['rmi', 'evtag:1']);
  await ok(['volume', 'rm', 'evvol']);
  const until = (Date.now() / 1000 + 1).toFixed(3);
  const events = (await ok(['events', '--since', since, '--until', until, '--format', '{{json .}}']))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Event);
  // The network's own create may fall inside the window too.
  const seen = events.map((e) => `${e.Type} ${e.Action}`).filter((e) => e !== 'network create');
  assert.deepEqual(seen, [
    'volume create',
    'container create',
    'network connect',
    'volume mount',
    'container start',
    'container exec_create: true ',
    'container exec_start: true ',
    'container exec_die',
    'container kill',
    'container kill',
    'container die',
    'network disconnect',
    'volume unmount',
    'container stop',
    'container destroy',
    'image tag',
    'image untag',
    'volume destroy',
  ]);
  const find = (what: string): Event | undefined => events.find((e) => `${e.Type} ${e.Action}` === what);
  const execDie = find('container exec_die');
  assert.equal(execDie?.Actor.Attributes.exitCode, '0');
  assert.match(execDie?.Actor.Attributes.execID ?? '', /^[0-9a-f]{64}$/);
  assert.equal(
    find('container exec_create: true ')?.Actor.Attributes.execID,
    execDie?.Actor.Attributes.execID,
  );
  // The stop signal, then SIGKILL after the timeout (sleep ignores SIGTERM as PID 1).
  assert.deepEqual(
    events.filter((e) => e.Action === 'kill').map((e) => e.Actor.Attributes.signal),
    ['15', '9'],
  );
  assert.equal(find('container die')?.Actor.Attributes.exitCode, '137');
  assert.deepEqual(find('network connect')?.Actor.Attributes, { container: id, name: net, type: 'bridge' });
  assert.deepEqual(find('volume mount')?.Actor, {
    ID: 'evvol',
    Attributes: { container: id, destination: '/x', driver: 'local', propagation: '', 'read/write': 'true' },
  });
  assert.deepEqual(find('volume unmount')?.Actor.Attributes, { container: id, driver: 'local' });
  const image = find('image tag')?.Actor.ID ?? '';
  assert.match(image, /^sha256:/);
  assert.deepEqual(find('image tag')?.Actor.Attributes, { name: 'evtag:1' });
  assert.deepEqual(find('image untag')?.Actor, { ID: image, Attributes: { name: image } });
  assert.deepEqual(find('volume destroy')?.Actor.Attributes, { driver: 'local' });
});

test('docker ps and docker images filters, Command quoting and inspect shapes, as dockerd', async (t) => {
  const { ok, run, sandbox, berthd } = await daemonWithBusybox(t);
  const bind = join(sandbox.root, 'bind');
  await mkdir(bind);
  await ok(['create', '--name', 'first', 'busybox', 'sh', '-c', 'exit 3']);
  await ok([
    'create',
    '--name',
    'second',
    '-v',
    `${bind}:/b:ro`,
    '-v',
    'data:/data',
    '--pids-limit',
    '-1',
    'busybox',
  ]);
  await ok(['create', '--name', 'third', '--mount', 'type=tmpfs,target=/t', 'busybox']);
  assert.equal((await run(['start', '-a', 'first'])).code, 3);
  const names = async (filter: string): Promise<string[]> =>
    (await ok(['ps', '-a', '--filter', filter, '--format', '{{.Names}}']))
      .trim()
      .split('\n')
      .filter(Boolean)
      .sort();
  assert.deepEqual(await names('before=second'), ['first']);
  assert.deepEqual(await names('since=first'), ['second', 'third']);
  assert.deepEqual(await names('name=^th'), ['third']);
  assert.deepEqual(await names('name=^/th'), ['third']);
  assert.deepEqual(await names('exited=3'), ['first']);
  assert.deepEqual(await names('volume=data'), ['second']);
  assert.deepEqual(await names('volume=/b'), ['second']);
  const bogus = await run(['ps', '-a', '--filter', 'status=bogus']);
  assert.equal(bogus.code, 1);
  assert.match(bogus.stderr, /invalid filter 'status=bogus'/);

  const list = JSON.parse(
    (await apiRequest({ socketPath: berthd.socket }, '/containers/json?all=1')).body,
  ) as Array<{
    Names: string[];
    Command: string;
    Mounts: Array<{ Type: string; Destination: string }>;
  }>;
  const byName = new Map(list.map((c) => [c.Names[0], c]));
  assert.equal(byName.get('/first')?.Command, "sh -c 'exit 3'");
  assert.deepEqual(
    byName
      .get('/second')
      ?.Mounts.map((m) => `${m.Type} ${m.Destination}`)
      .sort(),
    ['bind /b', 'volume /data'],
  );

  const inspect = JSON.parse(await ok(['inspect', 'second']))[0] as {
    Id: string;
    Config: { Hostname: string; Volumes: unknown };
    HostConfig: Record<string, unknown>;
    Mounts: Array<Record<string, unknown>>;
  };
  assert.equal(inspect.Config.Hostname, inspect.Id.slice(0, 12));
  assert.equal(inspect.HostConfig.PidsLimit, null);
  assert.equal(inspect.HostConfig.MemorySwappiness, null);
  assert.equal(inspect.HostConfig.IpcMode, 'private');
  assert.ok(Array.isArray(inspect.HostConfig.MaskedPaths));
  assert.deepEqual(
    inspect.Mounts.find((m) => m.Type === 'bind'),
    { Type: 'bind', Source: bind, Destination: '/b', Mode: 'ro', RW: false, Propagation: 'rprivate' },
  );
  assert.equal(inspect.Mounts.find((m) => m.Type === 'volume')?.Mode, 'z');
  const third = JSON.parse(await ok(['inspect', 'third']))[0] as { Mounts: Array<Record<string, unknown>> };
  assert.deepEqual(third.Mounts, [
    { Type: 'tmpfs', Source: '', Destination: '/t', Mode: '', RW: true, Propagation: '' },
  ]);

  await ok(['tag', 'busybox', 'other/name:2']);
  const repos = async (args: string[]): Promise<string[]> =>
    (await ok(['images', ...args, '--format', '{{.Repository}}:{{.Tag}}']))
      .trim()
      .split('\n')
      .filter(Boolean)
      .sort();
  assert.deepEqual(await repos(['busybox']), ['busybox:latest']);
  assert.deepEqual(await repos(['--filter', 'reference=other/*']), ['other/name:2']);
  assert.deepEqual(await repos(['--filter', 'dangling=true']), []);
  const badImageFilter = await run(['images', '--filter', 'bogus=1']);
  assert.equal(badImageFilter.code, 1);
  assert.match(badImageFilter.stderr, /invalid filter 'bogus'/);
  const removed = await apiRequest({ socketPath: berthd.socket }, '/images/other/name:2', 'DELETE');
  assert.equal(removed.status, 200);
  assert.deepEqual(JSON.parse(removed.body), [{ Untagged: 'other/name:2' }]);
});

test('create-time refusals and texts, as dockerd', async (t) => {
  const { ok, run } = await daemonWithBusybox(t);
  const bogus = await run(['create', '--restart', 'bogus', 'busybox']);
  assert.equal(bogus.code, 1);
  assert.match(
    bogus.stderr,
    /invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'/,
  );
  const missing = await run(['create', '--mount', 'type=bind,src=/nonexistent-parity,target=/x', 'busybox']);
  assert.equal(missing.code, 1);
  assert.match(
    missing.stderr,
    /invalid mount config for type "bind": bind source path does not exist: \/nonexistent-parity/,
  );
  const memory = await run(['create', '--memory', '1k', 'busybox']);
  assert.equal(memory.code, 1);
  assert.match(memory.stderr, /Minimum memory limit allowed is 6MB/);
  // None of the refused creates left a container behind.
  assert.equal((await ok(['ps', '-aq'])).trim(), '');
  await ok(['create', '--name', 'ra', 'busybox']);
  await ok(['create', '--name', 'rb', 'busybox']);
  const rename = await run(['rename', 'ra', 'rb']);
  assert.equal(rename.code, 1);
  assert.match(
    rename.stderr,
    /Error when allocating new name: Conflict\. The container name "\/rb" is already in use/,
  );
});

test('rm -f removes a paused container, as dockerd', async (t) => {
  const { ok } = await daemonWithBusybox(t);
  await ok(['run', '-d', '--name', 'frozen', 'busybox', 'sleep', '100']);
  await ok(['pause', 'frozen']);
  await ok(['rm', '-f', 'frozen']);
  assert.equal((await ok(['ps', '-aq'])).trim(), '');
});
