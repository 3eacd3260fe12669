import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { lstat, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import {
  activatedSockets,
  openListeners,
  removeStaleSocket,
  resolveGroup,
  selectActivated,
  type ListenOptions,
} from '../../../src/daemon/listeners.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-listen-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const options = (extra: Partial<ListenOptions> = {}): ListenOptions => ({
  group: { name: 'berth-test-no-such-group', explicit: false },
  insecureTcpForce: false,
  attach: (server) => server.on('request', (_req, res) => res.end('pong')),
  log: { info: () => undefined, warn: () => undefined },
  ...extra,
});

function get(target: { socketPath: string } | { port: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ ...target, path: '/', agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** A socket file left behind by a process killed before it could remove it. */
async function staleSocket(path: string): Promise<void> {
  const child = spawn(
    process.execPath,
    ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await once(child.stdout, 'data');
  child.kill('SIGKILL');
  await once(child, 'exit');
}

test('groups resolve from /etc/group text or as a number', () => {
  const groups = 'root:x:0:\ndocker:x:998:alice\nberth:x:1001:\n';
  assert.equal(resolveGroup('berth', groups), 1001);
  assert.equal(resolveGroup('docker', groups), 998);
  assert.equal(resolveGroup('4242', groups), 4242);
  assert.equal(resolveGroup('missing', groups), undefined);
});

test('socket activation variables are honoured only for this process', () => {
  const env = { LISTEN_PID: '42', LISTEN_FDS: '2', LISTEN_FDNAMES: 'berth.socket:metrics' };
  assert.deepEqual(activatedSockets(env, 42), [
    { fd: 3, name: 'berth.socket' },
    { fd: 4, name: 'metrics' },
  ]);
  assert.deepEqual(activatedSockets(env, 43), []);
  assert.deepEqual(activatedSockets({ LISTEN_PID: '42', LISTEN_FDS: '1' }, 42), [{ fd: 3, name: 'unknown' }]);
  assert.deepEqual(activatedSockets({ LISTEN_PID: '42', LISTEN_FDS: 'x' }, 42), []);
  const sockets = activatedSockets(env, 42);
  assert.deepEqual(selectActivated('', sockets), [3, 4]);
  assert.deepEqual(selectActivated('4', sockets), [4]);
  assert.deepEqual(selectActivated('berth.socket', sockets), [3]);
  assert.throws(
    () => selectActivated('nope', sockets),
    /fd:\/\/nope: no such activated socket \(have 3=berth\.socket, 4=metrics\)/,
  );
  assert.throws(() => selectActivated('', []), /no sockets were passed by systemd/);
});

test('a stale socket is removed; a live one or a non-socket is left alone', async (t) => {
  const dir = await tempDir(t);
  const stale = join(dir, 'stale.sock');
  await staleSocket(stale);
  assert.ok((await lstat(stale)).isSocket());
  await removeStaleSocket(stale);
  await assert.rejects(lstat(stale), { code: 'ENOENT' });
  await removeStaleSocket(join(dir, 'absent.sock'));

  const live = join(dir, 'live.sock');
  const server = net.createServer().listen(live);
  await once(server, 'listening');
  t.after(() => server.close());
  await assert.rejects(
    removeStaleSocket(live),
    (err: unknown) =>
      err instanceof BerthError &&
      err.kind === 'conflict' &&
      /another daemon is already listening on/.test(err.message),
  );
  assert.ok((await lstat(live)).isSocket());

  const file = join(dir, 'file.sock');
  await writeFile(file, 'data');
  await assert.rejects(removeStaleSocket(file), /exists and is not a socket/);
});

test('a unix socket is 0600 without a group and 0660 with one; close removes it', async (t) => {
  const dir = await tempDir(t);
  const plain = join(dir, 'sub', 'plain.sock');
  const notes: string[] = [];
  const [listener] = await openListeners(
    [{ kind: 'unix', path: plain }],
    options({ log: { info: (message) => notes.push(message), warn: () => undefined } }),
  );
  assert.deepEqual(notes, [
    `There is no group berth-test-no-such-group: only root can use ${plain} (mode 0600)`,
  ]);
  assert.equal(listener?.address, `unix://${plain}`);
  assert.equal((await lstat(plain)).mode & 0o777, 0o600);
  assert.equal(await get({ socketPath: plain }), 'pong');
  await listener?.close();
  await assert.rejects(lstat(plain), { code: 'ENOENT' });

  const grouped = join(dir, 'grouped.sock');
  const gid = process.getgid?.() ?? 0;
  const [second] = await openListeners(
    [{ kind: 'unix', path: grouped }],
    options({ group: { name: String(gid), explicit: true } }),
  );
  const stats = await lstat(grouped);
  assert.equal(stats.mode & 0o777, 0o660);
  assert.equal(stats.gid, gid);
  await second?.close();

  await assert.rejects(
    openListeners(
      [{ kind: 'unix', path: grouped }],
      options({ group: { name: 'berth-test-no-such-group', explicit: true } }),
    ),
    /group: no group named "berth-test-no-such-group"/,
  );
});

test('a stale socket is replaced when listening', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'api.sock');
  await staleSocket(path);
  const [listener] = await openListeners([{ kind: 'unix', path }], options());
  assert.equal(await get({ socketPath: path }), 'pong');
  // A second daemon on the same path is refused while the first answers.
  await assert.rejects(
    openListeners([{ kind: 'unix', path }], options()),
    /another daemon is already listening/,
  );
  await listener?.close();
});

test('plain TCP is refused unless forced, and then it warns', async (t) => {
  await assert.rejects(
    openListeners([{ kind: 'tcp', host: '127.0.0.1', port: 0 }], options()),
    (err: unknown) =>
      err instanceof BerthError &&
      err.kind === 'invalid-argument' &&
      err.message.startsWith('refusing to listen on tcp://127.0.0.1:0 without TLS client verification') &&
      err.message.includes('--insecure-tcp-force'),
  );
  const warnings: string[] = [];
  const [listener] = await openListeners(
    [{ kind: 'tcp', host: '127.0.0.1', port: 0 }],
    options({
      insecureTcpForce: true,
      log: { info: () => undefined, warn: (message) => warnings.push(message) },
    }),
  );
  t.after(() => listener?.close());
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0] ?? '',
    /^WARNING: API is accessible on http:\/\/127\.0\.0\.1:0 without encryption\./,
  );
  assert.equal(listener?.warning, warnings[0]);
  const port = (listener?.server.address() as net.AddressInfo).port;
  assert.equal(await get({ port }), 'pong');
});

test('a failure closes the listeners already opened', async (t) => {
  const dir = await tempDir(t);
  const first = join(dir, 'first.sock');
  await assert.rejects(
    openListeners(
      [
        { kind: 'unix', path: first },
        { kind: 'tcp', host: '127.0.0.1', port: 0 },
      ],
      options(),
    ),
    /refusing to listen/,
  );
  await assert.rejects(lstat(first), { code: 'ENOENT' });
});

test('fd:// without activation is an error, and the variables are consumed', async () => {
  const env: NodeJS.ProcessEnv = { LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1' };
  await assert.rejects(
    openListeners([{ kind: 'fd', name: '' }], options({ env })),
    /no sockets were passed by systemd/,
  );
  assert.equal(env.LISTEN_FDS, undefined);
});
