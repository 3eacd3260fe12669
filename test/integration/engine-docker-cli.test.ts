/**
 * The real docker CLI against berthd: the container and image commands people type every day.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { startBerthd, docker, type Berthd } from '../helpers/berthd.js';
import { ensureFixture } from '../../fixtures/index.js';
import { startRegistry, skopeoCopy } from '../helpers/registry.js';

async function daemonWithBusybox(
  t: TestContext,
): Promise<{ sandbox: Sandbox; berthd: Berthd; run: (args: string[]) => ReturnType<typeof docker> }> {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const run = (args: string[]): ReturnType<typeof docker> => docker(sandbox, berthd.dockerHost, args);
  const busybox = await ensureFixture('busybox');
  const loaded = await run(['load', '-i', busybox.dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);
  assert.match(loaded.stdout, /Loaded image: busybox:latest/);
  return { sandbox, berthd, run };
}

test('docker run --rm prints the output and returns the exit code', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  const hello = await run([
    'run',
    '--rm',
    ...cg,
    'busybox',
    'sh',
    '-c',
    'echo out; echo err >&2; hostname | wc -c',
  ]);
  assert.equal(hello.code, 0, hello.stderr);
  assert.equal(hello.stdout, 'out\n13\n', 'the short id is the hostname');
  assert.equal(hello.stderr, 'err\n');
  const failing = await run(['run', '--rm', ...cg, 'busybox', 'sh', '-c', 'exit 42']);
  assert.equal(failing.code, 42);
  const ps = await run(['ps', '-aq']);
  assert.equal(ps.stdout, '', '--rm removed the containers');
  const missing = await run(['run', '--rm', ...cg, 'busybox', '/no/such/binary']);
  assert.notEqual(missing.code, 0);
  // --runtime: berth's own works; another name is dockerd's 400 and nothing is created.
  const own = await run(['run', '--rm', ...cg, '--runtime', 'berth', 'busybox', 'true']);
  assert.equal(own.code, 0, own.stderr);
  const unknown = await run(['run', '--rm', ...cg, '--runtime', 'nosuch', 'busybox', 'true']);
  assert.equal(unknown.code, 125);
  assert.match(unknown.stderr, /Error response from daemon: Unknown runtime specified nosuch/);
  assert.equal((await run(['ps', '-aq'])).stdout, '');
});

test('what a removed container leaves goes: run --rm, rm, container prune, image prune, a removal cut short', async (t) => {
  const { sandbox, berthd, run } = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  const snapshots = async (): Promise<number> => (await readdir(join(sandbox.dataRoot, 'snapshots'))).length;
  const containerDirs = (): Promise<string[]> => readdir(join(sandbox.dataRoot, 'containers'));
  const bundles = (root = berthd.execRoot): Promise<string[]> =>
    readdir(join(root, 'containers')).catch(() => []);
  const imageOnly = await snapshots();

  assert.equal((await run(['run', '--rm', ...cg, 'busybox', 'sh', '-c', 'echo x > /f'])).code, 0);
  const kept = (await run(['run', ...cg, 'busybox', 'sh', '-c', 'head -c 300000 /dev/zero > /f'])).code;
  assert.equal(kept, 0);
  // dockerd's "Total reclaimed space" is the size of the writable layers removed.
  const pruned = await run(['container', 'prune', '-f']);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stdout, /Total reclaimed space: 3\d\d(\.\d+)?kB/);
  // Image prune waits for what removed containers left (and would take the layers no one uses).
  assert.equal((await run(['image', 'prune', '-f'])).code, 0);
  assert.equal(await snapshots(), imageOnly, 'nothing but the image layers: the removals are done');
  assert.deepEqual(await containerDirs(), []);
  assert.deepEqual(await bundles(), []);

  // A removal cut short after the record went: the next berthd removes the rest.
  const id = (await run(['run', '-d', ...cg, 'busybox', 'true'])).stdout.trim();
  assert.equal((await run(['wait', id])).stdout.trim(), '0');
  await berthd.stop('SIGKILL');
  await rm(join(sandbox.dataRoot, 'containers', id, 'config.v2.json'));
  const again = await startBerthd(t, sandbox);
  assert.deepEqual(await containerDirs(), []);
  assert.deepEqual(await bundles(again.execRoot), []);
  assert.equal(await snapshots(), imageOnly);

  // Like dockerd's rmi: the image's layers and blobs go with it.
  const removed = await run(['rmi', 'busybox']);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(await snapshots(), 1, 'only the links directory is left: the layers went with the image');
  assert.deepEqual(await readdir(join(sandbox.dataRoot, 'content', 'blobs', 'sha256')), []);
});

test('a start berthd did not record (killed before writing it) is undone when berthd comes back', async (t) => {
  const { sandbox, berthd, run } = await daemonWithBusybox(t);
  const id = (
    await run(['run', '-d', '--cgroup-parent', sandbox.cgroupParent, 'busybox', 'sleep', '300'])
  ).stdout.trim();
  const pid = Number((await run(['inspect', '-f', '{{.State.Pid}}', id])).stdout.trim());
  assert.ok(pid > 0);
  // Like dockerd, a --rm container that is not running is removed when the daemon starts.
  const pending = (
    await run(['create', '--rm', '--cgroup-parent', sandbox.cgroupParent, 'busybox', 'true'])
  ).stdout.trim();
  await berthd.stop('SIGKILL');
  // The record as it was before the start: created, never started.
  const recordPath = join(sandbox.dataRoot, 'containers', id, 'config.v2.json');
  const record = JSON.parse(await readFile(recordPath, 'utf8')) as { state: Record<string, unknown> };
  record.state = { ...record.state, Status: 'created', Running: false, Pid: 0 };
  await writeFile(recordPath, JSON.stringify(record));
  await startBerthd(t, sandbox);
  assert.equal(await processAlive(pid), false, 'the process nobody recorded is gone');
  assert.match((await run(['inspect', pending])).stderr, /No such object/);
  assert.equal((await run(['inspect', '-f', '{{.State.Status}}', id])).stdout.trim(), 'created');
  assert.equal((await run(['start', id])).code, 0, 'and the container starts again');
  assert.equal((await run(['inspect', '-f', '{{.State.Running}}', id])).stdout.trim(), 'true');
  assert.equal((await run(['rm', '-f', id])).code, 0);
});

async function processAlive(pid: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

test('run -d, ps, logs, inspect, stop, start, rename, rm', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const started = await run([
    'run',
    '-d',
    '--name',
    'web',
    '--cgroup-parent',
    sandbox.cgroupParent,
    '-e',
    'GREETING=hi',
    '--label',
    'tier=front',
    'busybox',
    'sh',
    '-c',
    'echo "$GREETING from $(id -u)"; trap "echo bye; exit 0" TERM; while true; do sleep 0.1; done',
  ]);
  assert.equal(started.code, 0, started.stderr);
  const id = started.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);

  const ps = await run(['ps', '--format', '{{.ID}} {{.Names}} {{.Image}} {{.Status}}']);
  assert.match(ps.stdout, new RegExp(`^${id.slice(0, 12)} web busybox Up `, 'm'));
  const filtered = await run(['ps', '-q', '--filter', 'label=tier=front']);
  assert.equal(filtered.stdout.trim(), id.slice(0, 12));

  let logs = await run(['logs', 'web']);
  for (let i = 0; i < 50 && logs.stdout === ''; i++) {
    await new Promise((r) => setTimeout(r, 100));
    logs = await run(['logs', 'web']);
  }
  assert.equal(logs.stdout, 'hi from 0\n');

  const inspect = JSON.parse((await run(['inspect', 'web'])).stdout) as Array<{
    Id: string;
    Name: string;
    State: { Status: string; Running: boolean; Pid: number };
    Config: { Env: string[]; Labels: Record<string, string>; Image: string };
  }>;
  assert.equal(inspect[0]?.Id, id);
  assert.equal(inspect[0]?.Name, '/web');
  assert.equal(inspect[0]?.State.Status, 'running');
  assert.ok((inspect[0]?.State.Pid ?? 0) > 0);
  assert.ok(inspect[0]?.Config.Env.includes('GREETING=hi'));
  assert.equal(inspect[0]?.Config.Labels.tier, 'front');
  assert.equal(
    (await run(['inspect', '-f', '{{.State.Running}}', id.slice(0, 8)])).stdout.trim(),
    'true',
    'short id prefix',
  );

  const refused = await run(['rm', 'web']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /container is running: stop the container before removing or force remove/);

  const stopped = await run(['stop', '-t', '5', 'web']);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal(
    (await run(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'web'])).stdout.trim(),
    'exited 0',
  );
  assert.match((await run(['logs', 'web'])).stdout, /bye\n$/);
  assert.match((await run(['ps', '-a', '--format', '{{.Status}}'])).stdout, /^Exited \(0\)/m);

  assert.equal((await run(['start', 'web'])).code, 0);
  assert.equal((await run(['inspect', '-f', '{{.State.Running}}', 'web'])).stdout.trim(), 'true');
  assert.equal((await run(['rename', 'web', 'api'])).code, 0);
  assert.equal((await run(['inspect', '-f', '{{.Name}}', 'api'])).stdout.trim(), '/api');
  const removed = await run(['rm', '-f', 'api']);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal((await run(['ps', '-aq'])).stdout, '');
  const gone = await run(['inspect', 'api']);
  assert.match(gone.stderr, /No such (container|object): api/);
});

test('kill, wait, pause and unpause, restart policy on-failure', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  const id = (await run(['run', '-d', ...cg, 'busybox', 'sleep', '1000'])).stdout.trim();
  assert.equal((await run(['pause', id])).code, 0);
  assert.equal(
    (await run(['inspect', '-f', '{{.State.Status}} {{.State.Paused}}', id])).stdout.trim(),
    'paused true',
  );
  assert.equal((await run(['unpause', id])).code, 0);
  assert.equal((await run(['inspect', '-f', '{{.State.Status}}', id])).stdout.trim(), 'running');
  const waiting = run(['wait', id]);
  assert.equal((await run(['kill', id])).code, 0);
  const waited = await waiting;
  assert.equal(waited.stdout.trim(), '137');
  const again = await run(['kill', id]);
  assert.match(again.stderr, /is not running/);

  const flaky = (
    await run(['run', '-d', ...cg, '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 1'])
  ).stdout.trim();
  let count = '';
  for (let i = 0; i < 100; i++) {
    count = (await run(['inspect', '-f', '{{.RestartCount}} {{.State.Status}}', flaky])).stdout.trim();
    if (count === '2 exited') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(count, '2 exited', 'restarted twice, then left exited');
});

test('images: pull from a registry, list, inspect, tag, rmi with a container using it', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const registry = await startRegistry();
  t.after(() => registry.stop());
  const layers = await ensureFixture('layers');
  await skopeoCopy(`oci:${layers.ociLayout}:latest`, `docker://${registry.host}/fixtures/layers:v1`);
  const pulled = await run(['pull', `${registry.host}/fixtures/layers:v1`]);
  assert.equal(pulled.code, 0, pulled.stderr);
  assert.match(pulled.stdout, /Status: Downloaded newer image for /);
  assert.match(pulled.stdout, /Digest: sha256:[0-9a-f]{64}/);
  const again = await run(['pull', `${registry.host}/fixtures/layers:v1`]);
  assert.match(again.stdout, /Status: Image is up to date for /);

  const images = await run(['images', '--format', '{{.Repository}}:{{.Tag}}']);
  assert.deepEqual(
    images.stdout.trim().split('\n').sort(),
    ['busybox:latest', `${registry.host}/fixtures/layers:v1`].sort(),
  );
  const config = (
    await run([
      'image',
      'inspect',
      '-f',
      '{{.Config.WorkingDir}} {{index .Config.Labels "org.berth.fixture"}}',
      `${registry.host}/fixtures/layers:v1`,
    ])
  ).stdout.trim();
  assert.equal(config, '/data layers');

  const content = await run([
    'run',
    '--rm',
    '--cgroup-parent',
    sandbox.cgroupParent,
    `${registry.host}/fixtures/layers:v1`,
    'sh',
    '-c',
    'cat a.txt; ls opaque',
  ]);
  assert.equal(content.stdout, 'second version of a\nnew.txt\n', content.stderr);

  assert.equal((await run(['tag', 'busybox', 'mybox:1'])).code, 0);
  const user = (
    await run(['create', '--cgroup-parent', sandbox.cgroupParent, 'mybox:1', 'true'])
  ).stdout.trim();
  const refused = await run(['rmi', 'busybox']);
  assert.equal(refused.code, 0, 'busybox:latest is only untagged while mybox:1 names the image');
  assert.match(refused.stdout, /Untagged: busybox:latest/);
  const conflict = await run(['rmi', 'mybox:1']);
  assert.notEqual(conflict.code, 0);
  assert.match(conflict.stderr, new RegExp(`container ${user.slice(0, 12)}`));
  assert.equal((await run(['rm', user])).code, 0);
  const removed = await run(['rmi', 'mybox:1']);
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, /Deleted: sha256:/);
});

test('docker exec: output, exit code, stdin, user, env, workdir, missing program', async (t) => {
  const { sandbox, berthd, run } = await daemonWithBusybox(t);
  const id = (
    await run(['run', '-d', '--cgroup-parent', sandbox.cgroupParent, 'busybox', 'sleep', '1000'])
  ).stdout.trim();
  const exec = await run(['exec', id, 'sh', '-c', 'echo in exec; echo oops >&2; exit 7']);
  assert.equal(exec.code, 7);
  assert.equal(exec.stdout, 'in exec\n');
  assert.equal(exec.stderr, 'oops\n');
  const user = await run([
    'exec',
    '-u',
    '1000',
    '-e',
    'A=b',
    '-w',
    '/tmp',
    id,
    'sh',
    '-c',
    'echo $(id -u) $A $(pwd)',
  ]);
  assert.equal(user.stdout, '1000 b /tmp\n', user.stderr);
  const { execProgram } = await import('../helpers/exec.js');
  const piped = await execProgram('docker', ['exec', '-i', id, 'cat'], {
    input: 'through stdin\n',
    env: { ...process.env, DOCKER_HOST: berthd.dockerHost, DOCKER_CONFIG: sandbox.root },
  });
  assert.equal(piped.stdout, 'through stdin\n', piped.stderr);
  const missing = await run(['exec', id, '/no/such/program']);
  assert.equal(missing.code, 127);
  const stopped = await run(['stop', '-t', '1', id]);
  assert.equal(stopped.code, 0);
  const refused = await run(['exec', id, 'true']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /is not running/);
});

test('volumes: named, read-only, in use, copy of the image content, anonymous removed with rm -v, bind mounts', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  assert.equal((await run(['volume', 'create', '--label', 'purpose=test', 'data'])).stdout.trim(), 'data');
  assert.equal(
    (await run(['run', '--rm', ...cg, '-v', 'data:/data', 'busybox', 'sh', '-c', 'echo persisted > /data/f']))
      .code,
    0,
  );
  assert.equal(
    (await run(['run', '--rm', ...cg, '-v', 'data:/data:ro', 'busybox', 'cat', '/data/f'])).stdout,
    'persisted\n',
  );
  const readOnly = await run(['run', '--rm', ...cg, '-v', 'data:/data:ro', 'busybox', 'touch', '/data/x']);
  assert.notEqual(readOnly.code, 0);
  assert.match(readOnly.stderr, /Read-only file system/);
  assert.match(
    (await run(['volume', 'ls', '--filter', 'label=purpose=test', '--format', '{{.Name}}'])).stdout,
    /^data$/m,
  );

  const holder = (
    await run(['run', '-d', ...cg, '-v', 'data:/data', 'busybox', 'sleep', '100'])
  ).stdout.trim();
  const inUse = await run(['volume', 'rm', 'data']);
  assert.match(inUse.stderr, /volume is in use/);
  assert.equal((await run(['rm', '-f', holder])).code, 0);
  assert.equal((await run(['volume', 'rm', 'data'])).code, 0);

  // A new volume takes what the image has at its destination.
  const copied = await run(['run', '--rm', ...cg, '-v', 'etc-copy:/etc', 'busybox', 'cat', '/etc/group']);
  assert.match(copied.stdout, /^root:x:0:$/m);

  // An anonymous volume goes with `rm -v`.
  const anonymous = (await run(['create', ...cg, '-v', '/scratch', 'busybox', 'true'])).stdout.trim();
  const name = (await run(['inspect', '-f', '{{range .Mounts}}{{.Name}}{{end}}', anonymous])).stdout.trim();
  assert.match(name, /^[0-9a-f]{64}$/);
  assert.equal((await run(['rm', '-v', anonymous])).code, 0);
  assert.notEqual((await run(['volume', 'inspect', name])).code, 0);

  const hostDir = `${sandbox.root}/bind-source`;
  assert.equal(
    (await run(['run', '--rm', ...cg, '-v', `${hostDir}:/h`, 'busybox', 'sh', '-c', 'echo bound > /h/file']))
      .code,
    0,
  );
  const { readFile } = await import('node:fs/promises');
  assert.equal(await readFile(`${hostDir}/file`, 'utf8'), 'bound\n');
});

test('live restore: berthd killed with SIGKILL, containers keep running and are found again', async (t) => {
  const { sandbox, berthd, run } = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  const long = (
    await run(['run', '-d', ...cg, 'busybox', 'sh', '-c', 'echo before; sleep 1000'])
  ).stdout.trim();
  const short = (await run(['run', '-d', ...cg, 'busybox', 'sh', '-c', 'sleep 2; exit 3'])).stdout.trim();
  const pid = Number((await run(['inspect', '-f', '{{.State.Pid}}', long])).stdout.trim());
  await berthd.stop('SIGKILL');
  const { access } = await import('node:fs/promises');
  await access(`/proc/${pid}`); // still running without the daemon
  await new Promise((r) => setTimeout(r, 2500)); // the short one ends while berthd is down
  const again = await startBerthd(t, sandbox);
  const run2 = (args: string[]): ReturnType<typeof docker> => docker(sandbox, again.dockerHost, args);
  assert.equal(
    (await run2(['inspect', '-f', '{{.State.Running}} {{.State.Pid}}', long])).stdout.trim(),
    `true ${pid}`,
  );
  let status = '';
  for (let i = 0; i < 50 && status !== 'exited 3'; i++) {
    status = (await run2(['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', short])).stdout.trim();
    if (status !== 'exited 3') await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 'exited 3', 'the exit that happened while berthd was down is reported');
  assert.match((await run2(['logs', long])).stdout, /^before$/m);
  assert.equal((await run2(['stop', '-t', '1', long])).code, 0);
  assert.equal((await run2(['inspect', '-f', '{{.State.Status}}', long])).stdout.trim(), 'exited');
});

test('top and stats --no-stream', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const id = (
    await run([
      'run',
      '-d',
      '--cgroup-parent',
      sandbox.cgroupParent,
      '--memory',
      '64m',
      'busybox',
      'sh',
      '-c',
      'sleep 1000 & sleep 1001',
    ])
  ).stdout.trim();
  let top = '';
  for (let i = 0; i < 100 && !(/sleep 1000$/m.test(top) && /sleep 1001$/m.test(top)); i++) {
    top = (await run(['top', id])).stdout;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(top, /^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD$/m);
  assert.match(top, /sleep 1000$/m);
  assert.match(top, /sleep 1001$/m);
  const stats = await run(['stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}} {{.PIDs}}', id]);
  assert.equal(stats.code, 0, stats.stderr);
  assert.match(stats.stdout, /^\S+ \d+(\.\d+)?[KM]iB \/ 64MiB 2$/m);
});

test('an OOM-killed container is reported with OOMKilled and 137; history and prune', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  const hog = await run([
    'run',
    '--name',
    'hog',
    ...cg,
    '--memory',
    '32m',
    '--memory-swap',
    '32m',
    'busybox',
    'sh',
    '-c',
    'head -c 300m /dev/zero | tail -n 1 > /dev/null',
  ]);
  assert.equal(hog.code, 137, hog.stderr);
  assert.equal(
    (await run(['inspect', '-f', '{{.State.OOMKilled}} {{.State.ExitCode}}', 'hog'])).stdout.trim(),
    'true 137',
  );

  const history = await run(['history', '--format', '{{.CreatedBy}}', 'busybox']);
  assert.match(history.stdout, /berth fixture: busybox-static root filesystem/);

  const pruned = await run(['container', 'prune', '-f']);
  assert.equal(pruned.code, 0, pruned.stderr);
  assert.match(pruned.stdout, /Deleted Containers:/);
  assert.equal((await run(['ps', '-aq'])).stdout, '');
});

test('docker update changes the limits of a running container', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const id = (
    await run([
      'run',
      '-d',
      '--cgroup-parent',
      sandbox.cgroupParent,
      '--memory',
      '64m',
      'busybox',
      'sleep',
      '1000',
    ])
  ).stdout.trim();
  const updated = await run([
    'update',
    '--memory',
    '96m',
    '--memory-swap',
    '128m',
    '--pids-limit',
    '50',
    '--restart',
    'always',
    id,
  ]);
  assert.equal(updated.code, 0, updated.stderr);
  const { readFile } = await import('node:fs/promises');
  const path = `/sys/fs/cgroup/memory/${sandbox.cgroupParent}/${id}/memory.limit_in_bytes`;
  assert.equal((await readFile(path, 'utf8')).trim(), String(96 * 1024 * 1024));
  assert.equal(
    (await readFile(`/sys/fs/cgroup/pids/${sandbox.cgroupParent}/${id}/pids.max`, 'utf8')).trim(),
    '50',
  );
  assert.equal(
    (
      await run(['inspect', '-f', '{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}', id])
    ).stdout.trim(),
    `${96 * 1024 * 1024} always`,
  );
  assert.equal((await run(['rm', '-f', id])).code, 0);
});

test('--privileged gets every capability and the host devices; --device; --rm of a container that cannot start', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  const privileged = await run([
    'run',
    '--rm',
    ...cg,
    '--privileged',
    'busybox',
    'sh',
    '-c',
    'grep CapEff /proc/self/status; ls /dev',
  ]);
  assert.equal(privileged.code, 0, privileged.stderr);
  // Every capability berthd itself may grant (this machine's bounding set can lack some).
  const bounding = /CapBnd:\s+([0-9a-f]+)/.exec(await readFile('/proc/self/status', 'utf8'))?.[1];
  assert.match(privileged.stdout, new RegExp(`CapEff:\\s+${bounding}\\n`));
  assert.match(privileged.stdout, /\bloop0\b|\btty0\b/, 'host devices are there');
  const plain = await run(['run', '--rm', ...cg, 'busybox', 'grep', 'CapEff', '/proc/self/status']);
  assert.match(plain.stdout, /CapEff:\s+00000000a80425fb/);
  const device = await run([
    'run',
    '--rm',
    ...cg,
    '--device',
    '/dev/null:/dev/mynull',
    'busybox',
    'sh',
    '-c',
    'echo x > /dev/mynull && echo wrote',
  ]);
  assert.equal(device.stdout, 'wrote\n', device.stderr);
  // A start that fails: the CLI must not wait forever for the --rm removal, and nothing is left.
  const failed = await run(['run', '--rm', ...cg, '--device', '/dev/no-such-device', 'busybox', 'true']);
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /no-such-device/);
  assert.equal((await run(['ps', '-aq'])).stdout, '');
});

test('concurrent creates get distinct generated names, and one explicit name goes to one of them', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  const created = await Promise.all(
    Array.from({ length: 24 }, () => run(['create', ...cg, 'busybox', 'true'])),
  );
  for (const result of created) assert.equal(result.code, 0, result.stderr);
  const names = (await run(['ps', '-a', '--format', '{{.Names}}'])).stdout.trim().split('\n');
  assert.equal(names.length, 24);
  assert.equal(new Set(names).size, 24, 'no generated name twice');
  const same = await Promise.all(
    Array.from({ length: 6 }, () => run(['create', ...cg, '--name', 'only-one', 'busybox', 'true'])),
  );
  assert.equal(same.filter((r) => r.code === 0).length, 1);
  for (const loser of same.filter((r) => r.code !== 0)) assert.match(loser.stderr, /already in use/);
});
