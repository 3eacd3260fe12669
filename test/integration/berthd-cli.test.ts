import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { API_VERSION, BERTH_VERSION } from '../../src/common/version.js';
import { createSandbox } from '../helpers/sandbox.js';
import { apiRequest, docker, freePort, runBerthd, startBerthd } from '../helpers/berthd.js';

test('docker version shows the client and berthd as the server', async (t) => {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const result = await docker(sandbox, berthd.dockerHost, ['version']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, '');
  assert.match(result.stdout, /^Client:/m);
  assert.match(result.stdout, /^Server: Berth Engine$/m);
  assert.match(result.stdout, new RegExp(`^  Version:\\s+${BERTH_VERSION.replace(/\./g, '\\.')}$`, 'm'));
  assert.match(
    result.stdout,
    new RegExp(`^  API version:\\s+${API_VERSION} \\(minimum version 1\\.41\\)$`, 'm'),
  );
  assert.match(result.stdout, /^ API version:\s+1\.50$/m, 'the client does not downgrade');
  assert.match(result.stdout, /^ {2}Go version:\s+node v\d+/m);
  const json = JSON.parse(
    (await docker(sandbox, berthd.dockerHost, ['version', '--format', '{{json .Server}}'])).stdout,
  );
  assert.equal(json.ApiVersion, API_VERSION);
  assert.equal(json.Components[0].Name, 'Engine');
});

test('docker info shows berth values and only the warnings berthd reports', async (t) => {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const result = await docker(sandbox, berthd.dockerHost, ['info']);
  assert.equal(result.code, 0, result.stderr);
  const info = JSON.parse((await apiRequest({ socketPath: berthd.socket }, '/v1.50/info')).body);
  const id = (await readFile(join(sandbox.dataRoot, 'engine-id'), 'utf8')).trim();
  for (const line of [
    ' Containers: 0',
    ' Images: 0',
    ` Server Version: ${BERTH_VERSION}`,
    ' Storage Driver: overlayfs',
    ' Cgroup Driver: cgroupfs',
    ` Cgroup Version: ${info.CgroupVersion}`,
    ' Runtimes: berth',
    ' Default Runtime: berth',
    ` Docker Root Dir: ${sandbox.dataRoot}`,
    ` Name: ${hostname()}`,
    ` ID: ${id}`,
    ' OSType: linux',
    ` Kernel Version: ${info.KernelVersion}`,
  ]) {
    assert.ok(
      result.stdout.split('\n').includes(line),
      `missing ${JSON.stringify(line)} in:\n${result.stdout}`,
    );
  }
  assert.equal(
    result.stderr.trim(),
    (info.Warnings ?? []).join('\n'),
    'the CLI prints exactly the daemon warnings',
  );
  assert.ok(!result.stderr.includes('API is accessible'));
});

test('docker system events replays a time window and terminates; filters apply', async (t) => {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const since = Math.floor(Date.now() / 1000) - 1;
  // A configuration reload publishes a daemon event.
  for (let i = 0; i < 2; i++) {
    const before = berthd.output().split('Reloaded the configuration').length;
    berthd.child.kill('SIGHUP');
    for (
      let wait = 0;
      wait < 100 && berthd.output().split('Reloaded the configuration').length === before;
      wait++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const until = Math.floor(Date.now() / 1000) + 1;
  const past = await docker(sandbox, berthd.dockerHost, [
    'system',
    'events',
    '--since',
    String(since),
    '--until',
    String(until),
    '--format',
    '{{json .}}',
  ]);
  assert.equal(past.code, 0, past.stderr);
  const events = past.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
  assert.equal(events.length, 2);
  for (const event of events) {
    assert.equal(event.Type, 'daemon');
    assert.equal(event.Action, 'reload');
    assert.equal(event.Actor.Attributes.name, hostname());
  }
  const filtered = await docker(sandbox, berthd.dockerHost, [
    'events',
    '--since',
    String(since),
    '--until',
    String(until),
    '--filter',
    'type=container',
  ]);
  assert.equal(filtered.code, 0, filtered.stderr);
  assert.equal(filtered.stdout, '');
  const bad = await docker(sandbox, berthd.dockerHost, [
    'events',
    '--since',
    String(since),
    '--until',
    String(until),
    '--filter',
    'colour=red',
  ]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /invalid filter 'colour'/);
});

test('a bad configuration stops start-up with one message naming the key', async (t) => {
  const sandbox = await createSandbox(t);
  const cases: Array<[Parameters<typeof runBerthd>[1], RegExp]> = [
    [{ config: { debug: 'yes' } }, /daemon\.json: debug: expected true or false, got the string "yes"$/],
    [
      { config: { 'storage-driver': 'overlay2' } },
      /the following directives don't match any configuration option: storage-driver$/,
    ],
    [
      { config: { hosts: ['unix:///tmp/x.sock'] }, args: ['-H', 'unix:///tmp/y.sock'], socket: false },
      /specified both as a flag and in the configuration file: hosts: /,
    ],
    [
      { config: { 'log-level': 'loud' } },
      /log-level: unknown log level "loud" \(expected debug, info, warn, error, fatal\)$/,
    ],
    [{ args: ['--bogus'] }, /^berthd: unknown flag: --bogus$/],
  ];
  for (const [options, message] of cases) {
    const result = await runBerthd(sandbox, options);
    assert.equal(result.code, 1, JSON.stringify(options));
    const lines = result.stderr.trim().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0] ?? '', message);
    assert.ok(!result.stderr.includes('    at '), 'no stack trace');
  }
  // Invalid JSON is reported with its line and column.
  const file = join(sandbox.root, 'broken.json');
  await writeFile(file, '{\n  "debug": true,\n}\n');
  const broken = await runBerthd(sandbox, { args: ['--config-file', file] });
  assert.equal(broken.code, 1);
  assert.equal(
    broken.stderr,
    `berthd: unable to configure berthd with file ${file}: invalid JSON at line 3, column 1: expected a property name in double quotes, found "}"\n`,
  );
  const validated = await runBerthd(sandbox, { config: { debug: true }, args: ['--validate'] });
  assert.equal(validated.code, 0, validated.stderr);
  assert.equal(validated.stdout, 'configuration OK\n');
});

test('SIGTERM shuts down cleanly; a daemon killed hard leaves a socket the next one replaces', async (t) => {
  const sandbox = await createSandbox(t);
  const pidFile = (execRoot: string): string => join(execRoot, 'berthd.pid');
  const first = await startBerthd(t, sandbox);
  assert.ok((await lstat(first.socket)).isSocket());
  assert.equal((await lstat(first.socket)).mode & 0o777, 0o600, 'no berth group here: root only');
  assert.equal(await readFile(pidFile(first.execRoot), 'utf8'), String(first.child.pid));
  // While it runs, another berthd on the same socket is refused.
  const rival = await runBerthd(sandbox, { args: ['--exec-root', join(sandbox.runRoot, 'other')] });
  assert.equal(rival.code, 1);
  assert.match(rival.stderr, /another daemon is already listening on .*berth\.sock/);
  const sameRoot = await runBerthd(sandbox);
  assert.equal(sameRoot.code, 1);
  assert.match(sameRoot.stderr, /pid file found, ensure berthd is not running/);
  assert.deepEqual(await first.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
  assert.ok((await lstat(first.socket)).isSocket(), 'the killed daemon left its socket');

  const second = await startBerthd(t, sandbox);
  const version = await docker(sandbox, second.dockerHost, ['version', '--format', '{{.Server.Version}}']);
  assert.equal(version.stdout.trim(), BERTH_VERSION);
  assert.deepEqual(await second.stop('SIGTERM'), { code: 0, signal: null });
  await assert.rejects(lstat(second.socket), { code: 'ENOENT' });
  await assert.rejects(lstat(pidFile(second.execRoot)), { code: 'ENOENT' });
  assert.match(second.output(), /Processing signal SIGTERM: shutting down/);
});

test('plain TCP is refused without --insecure-tcp-force; with it berthd and docker info warn', async (t) => {
  const sandbox = await createSandbox(t);
  const port = await freePort();
  const refused = await runBerthd(sandbox, { args: ['-H', `tcp://127.0.0.1:${port}`] });
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /refusing to listen on tcp:\/\/127\.0\.0\.1:\d+ without TLS client verification/,
  );
  const tlsOnly = await runBerthd(sandbox, {
    args: ['-H', `tcp://127.0.0.1:${port}`, '--tls', '--tlscert', '/x', '--tlskey', '/y'],
  });
  assert.equal(tlsOnly.code, 1, 'TLS without client verification is refused too');

  const berthd = await startBerthd(t, sandbox, {
    args: ['-H', `tcp://127.0.0.1:${port}`, '--insecure-tcp-force'],
  });
  // The ping can be answered before the warning's bytes have reached this process's pipe.
  for (let i = 0; i < 100 && !/API is accessible/.test(berthd.output()); i++) await sleep(50);
  assert.match(
    berthd.output(),
    /level=warn msg="WARNING: API is accessible on http:\/\/127\.0\.0\.1:\d+ without encryption\./,
  );
  const info = await docker(sandbox, `tcp://127.0.0.1:${port}`, ['info']);
  assert.equal(info.code, 0, info.stderr);
  assert.match(
    info.stderr,
    new RegExp(`WARNING: API is accessible on http://127\\.0\\.0\\.1:${port} without encryption\\.`),
  );
  // The unix socket serves the same daemon.
  assert.equal((await docker(sandbox, berthd.dockerHost, ['version'])).code, 0);
});

test('fd:// serves a socket passed by systemd socket activation', async (t) => {
  const sandbox = await createSandbox(t);
  const socket = join(sandbox.root, 'activated.sock');
  const berthd = await startBerthd(t, sandbox, {
    socket: false,
    args: ['-H', 'fd://'],
    // systemd-socket-activate passes on only the variables named with -E: the test's firewall table.
    wrapper: ['systemd-socket-activate', '-l', socket, '-E', 'BERTH_FIREWALL_TABLE'],
    ping: { socketPath: socket },
  });
  const result = await docker(sandbox, `unix://${socket}`, ['version', '--format', '{{.Server.Version}}']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout.trim(), BERTH_VERSION);
  assert.match(berthd.output(), /API listen on fd:\/\/3/);
  assert.deepEqual(await berthd.stop(), { code: 0, signal: null });
});

test('metrics-addr serves Prometheus metrics on its own listener', async (t) => {
  const sandbox = await createSandbox(t);
  const port = await freePort();
  const berthd = await startBerthd(t, sandbox, { config: { 'metrics-addr': `127.0.0.1:${port}` } });
  const metrics = await apiRequest({ host: '127.0.0.1', port }, '/metrics');
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers['content-type'] ?? '', /^text\/plain; version=0\.0\.4/);
  assert.match(metrics.body, /^process_resident_memory_bytes \d+$/m);
  assert.match(
    metrics.body,
    new RegExp(
      `^berth_engine_info\\{version="${BERTH_VERSION.replace(/\./g, '\\.')}",api_version="${API_VERSION.replace(/\./g, '\\.')}",kernel="[^"]+"\\} 1$`,
      'm',
    ),
  );
  assert.equal(
    (await apiRequest({ host: '127.0.0.1', port }, '/info')).status,
    404,
    'the API is not on the metrics listener',
  );
  assert.equal(
    (await apiRequest({ socketPath: berthd.socket }, '/metrics')).status,
    404,
    'nor metrics on the API',
  );
});
