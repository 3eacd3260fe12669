import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createSandbox } from '../helpers/sandbox.js';
import { makeBundle, runtime, runtimeOk } from '../helpers/bundle.js';
import { validateSpec } from '../../src/oci/validate.js';

test('features describes what the runtime supports', async (t) => {
  const sandbox = await createSandbox(t);
  const features = JSON.parse(await runtimeOk(sandbox, ['features'])) as {
    ociVersionMax: string;
    hooks: string[];
    linux: { namespaces: string[]; capabilities: string[]; seccomp: { enabled: boolean; actions: string[] } };
  };
  assert.equal(features.ociVersionMax, '1.2.0');
  assert.ok(features.hooks.includes('createRuntime'));
  assert.ok(features.linux.namespaces.includes('user'));
  assert.ok(features.linux.capabilities.includes('CAP_SYS_ADMIN'));
  assert.equal(features.linux.seccomp.enabled, true);
  assert.ok(features.linux.seccomp.actions.includes('SCMP_ACT_NOTIFY'));
});

test('spec writes a valid default config.json and refuses to overwrite one', async (t) => {
  const sandbox = await createSandbox(t);
  const dir = join(sandbox.root, 'fresh');
  await mkdir(dir);
  await runtimeOk(sandbox, ['spec', '--bundle', dir]);
  const spec = validateSpec(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')));
  assert.equal(spec.process?.noNewPrivileges, true);
  assert.equal(spec.linux?.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
  const again = await runtime(sandbox, ['spec', '--bundle', dir]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /config\.json already exists/);
});

test('errors go to --log in json for containerd, and to stderr', async (t) => {
  const sandbox = await createSandbox(t);
  const log = join(sandbox.root, 'runtime.log');
  const result = await runtime(sandbox, ['--log', log, '--log-format', 'json', 'state', 'ghost']);
  assert.equal(result.code, 1);
  assert.equal(result.stderr, 'berth-runtime: container ghost does not exist\n');
  const entry = JSON.parse((await readFile(log, 'utf8')).trim()) as {
    level: string;
    msg: string;
    time: string;
  };
  assert.equal(entry.level, 'error');
  assert.equal(entry.msg, 'container ghost does not exist');
  assert.ok(!Number.isNaN(Date.parse(entry.time)));
  const badFlag = await runtime(sandbox, ['create', '--bogus', 'x']);
  assert.equal(badFlag.code, 1);
  assert.match(badFlag.stderr, /unknown flag: --bogus/);
  const badId = await runtime(sandbox, ['state', '../etc']);
  assert.match(badId.stderr, /invalid container id/);
});

const CONSOLE_RECEIVER = `
import os, socket, sys
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1])
server.listen(1)
print('ready', flush=True)
conn, _ = server.accept()
msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
output = b''
while True:
    try:
        chunk = os.read(fds[0], 4096)
    except OSError:
        break
    if not chunk:
        break
    output += chunk
sys.stdout.write(output.decode(errors='replace').replace('\\r', ''))
`;

test('create --console-socket hands the pty master to the caller (terminal: true)', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['sh', '-c', '[ -t 0 ] && echo stdin-is-a-tty; tty; stty size']);
  bundle.spec.process!.terminal = true;
  bundle.spec.process!.consoleSize = { height: 33, width: 111 };
  await bundle.write();
  const helper = join(sandbox.root, 'console.py');
  const socketPath = join(sandbox.root, 'console.sock');
  await writeFile(helper, CONSOLE_RECEIVER);
  const receiver = spawn('python3', [helper, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
  if (receiver.pid) sandbox.trackProcess(receiver.pid);
  let received = '';
  const ready = new Promise<void>((resolve) => {
    (receiver.stdout as Readable).setEncoding('utf8').on('data', (chunk: string) => {
      received += chunk;
      if (received.startsWith('ready\n')) resolve();
    });
  });
  const done = new Promise<void>((resolve) => receiver.on('close', () => resolve()));
  await ready;
  await runtimeOk(sandbox, ['create', '--bundle', bundle.dir, '--console-socket', socketPath, 'tty1']);
  await runtimeOk(sandbox, ['start', 'tty1']);
  await done;
  assert.match(received, /^stdin-is-a-tty$/m);
  assert.match(received, /^\/dev\/pts\/0$/m);
  assert.match(received, /^33 111$/m);
  await runtimeOk(sandbox, ['delete', '--force', 'tty1']);
});

test('--systemd-cgroup without a running systemd fails create clearly and leaves nothing', async (t) => {
  const { existsSync } = await import('node:fs');
  if (existsSync('/run/systemd/system')) return t.skip('systemd runs on this host');
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['true']);
  bundle.spec.linux!.cgroupsPath = 'system.slice:berth:sd1';
  await bundle.write();
  const result = await runtime(sandbox, ['--systemd-cgroup', 'create', '--bundle', bundle.dir, 'sd1']);
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr,
    "berth-runtime: --systemd-cgroup: systemd is not running on this host (/run/systemd/system does not exist), so it cannot manage the container's cgroup; leave the flag out to use cgroupfs\n",
  );
  assert.match((await runtime(sandbox, ['state', 'sd1'])).stderr, /does not exist/);
  assert.equal(existsSync('/sys/fs/cgroup/memory/system.slice/berth-sd1.scope'), false);
});
