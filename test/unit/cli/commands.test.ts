/**
 * berth's own behaviour against the fake Engine API: connection and version negotiation, exit
 * codes, attached streams, credentials, copies, and the pull progress on a terminal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ByteSource } from '../../../src/archive/byte-source.js';
import { readTar } from '../../../src/archive/tar-reader.js';
import { tarArchive } from '../../../src/archive/tar-writer.js';
import { API_VERSION } from '../../../src/common/version.js';
import { CONTAINER_ID, FakeDockerApi, frame } from '../../helpers/fake-docker-api.js';
import { PULL_MESSAGES, pulls } from './fixtures.js';
import { runBerth, tempDir, type RunOptions } from './harness.js';

async function startFake(t: { after: (fn: () => Promise<void>) => void }): Promise<FakeDockerApi> {
  const fake = await FakeDockerApi.start();
  t.after(() => fake.close());
  return fake;
}

const CANNOT_CONNECT = (host: string): string =>
  `Cannot connect to the berth daemon at ${host}. Is berthd running? Start it with: sudo berthd (or: systemctl start berthd)`;

test('a missing daemon socket gives the berthd hint, exit 1 (125 for run)', async (t) => {
  const dir = await tempDir(t);
  const host = `unix://${join(dir, 'nothing.sock')}`;
  const ps = await runBerth(host, ['ps']);
  assert.equal(ps.code, 1);
  assert.equal(ps.stderr, `${CANNOT_CONNECT(host)}\n`);
  const run = await runBerth(host, ['run', 'busybox']);
  assert.equal(run.code, 125);
  assert.equal(run.stderr, `berth: ${CANNOT_CONNECT(host)}\n\nRun 'berth run --help' for more information\n`);
});

test('the default host is berthd socket; -H wins over BERTH_HOST, which wins over DOCKER_HOST', async (t) => {
  const fake = await startFake(t);
  const dir = await tempDir(t);
  const bogus = `unix://${join(dir, 'bogus.sock')}`;
  const viaFlag = await runBerth(bogus, ['-H', fake.host, 'ps', '-q'], { env: { DOCKER_HOST: bogus } });
  assert.equal(viaFlag.code, 0, viaFlag.stderr);
  const viaBerthHost = await runBerth(fake.host, ['ps', '-q'], { env: { DOCKER_HOST: bogus } });
  assert.equal(viaBerthHost.code, 0, viaBerthHost.stderr);
  const viaDockerHost = await runBerth('', ['ps', '-q'], { env: { DOCKER_HOST: fake.host } });
  assert.equal(viaDockerHost.code, 0, viaDockerHost.stderr);
  const byDefault = await runBerth('', ['ps']);
  assert.equal(byDefault.stderr, `${CANNOT_CONNECT('unix:///run/berth/berth.sock')}\n`);
});

test('the API version is negotiated with /_ping like the docker CLI', async (t) => {
  const fake = await startFake(t);
  // Each daemon version is new to berth: nothing remembered from the run before.
  const fresh = async (): Promise<RunOptions> => ({ env: { XDG_RUNTIME_DIR: await tempDir(t) } });
  fake.apiVersion = '1.43';
  await runBerth(fake.host, ['ps'], await fresh());
  assert.equal(fake.requests[0]?.method, 'HEAD');
  assert.equal(fake.requests[0]?.path, '/_ping');
  assert.equal(fake.calls[0]?.url, '/v1.43/containers/json');

  fake.reset();
  fake.apiVersion = '9.99';
  await runBerth(fake.host, ['ps'], await fresh());
  assert.equal(fake.calls[0]?.version, API_VERSION, 'never newer than berth speaks');

  fake.reset();
  fake.apiVersion = '';
  await runBerth(fake.host, ['ps'], await fresh());
  assert.equal(fake.calls[0]?.version, '1.24', 'a daemon without Api-Version gets docker fallback');

  fake.reset();
  await runBerth(fake.host, ['ps'], { env: { DOCKER_API_VERSION: '1.44' } });
  assert.equal(fake.requests.length, 1, 'a fixed version needs no ping');
  assert.equal(fake.requests[0]?.url, '/v1.44/containers/json');
});

test("the daemon's version is remembered for its socket: later commands skip /_ping", async (t) => {
  const runtime: RunOptions = { env: { XDG_RUNTIME_DIR: await tempDir(t) } };
  const fake = await startFake(t);
  fake.apiVersion = '1.43';
  await runBerth(fake.host, ['ps'], runtime);
  assert.equal(fake.requests[0]?.path, '/_ping');
  fake.reset();
  await runBerth(fake.host, ['ps'], runtime);
  assert.deepEqual(
    fake.requests.map((r) => r.url),
    ['/v1.43/containers/json'],
    'no ping, and the version learned before',
  );

  // A daemon that never named its version is asked every time.
  const silent = await startFake(t);
  silent.apiVersion = '';
  await runBerth(silent.host, ['ps'], runtime);
  silent.reset();
  await runBerth(silent.host, ['ps'], runtime);
  assert.equal(silent.requests[0]?.path, '/_ping');
  assert.equal(silent.calls[0]?.version, '1.24');
});

test('daemon errors become "Error response from daemon: <message>" with exit 1', async (t) => {
  const fake = await startFake(t);
  fake.route('POST', /\/kill$/, () => ({ status: 409, json: { message: 'container web is not running' } }));
  const result = await runBerth(fake.host, ['kill', 'web']);
  assert.equal(result.code, 1);
  assert.equal(result.stdout, '');
  assert.equal(result.stderr, 'Error response from daemon: container web is not running\n');
  fake.route('GET', /^\/version$/, () => ({ status: 500, text: 'plain failure' }));
  const plain = await runBerth(fake.host, ['version', '--format', '{{.Server.Version}}']);
  assert.equal(plain.code, 1);
  assert.match(plain.stderr, /^Error response from daemon: plain failure$/m);
});

test('run exits with the container code; start failures map to 125, 126 and 127', async (t) => {
  const fake = await startFake(t);
  fake.route('POST', /\/wait$/, () => ({ json: { StatusCode: 3 } }));
  const exited = await runBerth(fake.host, ['run', 'busybox', 'sh', '-c', 'exit 3']);
  assert.equal(exited.code, 3);
  assert.equal(exited.stdout, 'hello\n');

  const failures: Array<[string, number]> = [
    ['failed to create task: exec: "nope": executable file not found in $PATH', 127],
    ['failed to create task: exec: "/etc": permission denied', 126],
    ['failed to create task: exec: "/etc": is a directory', 126],
    ['cannot allocate memory', 125],
  ];
  for (const [message, code] of failures) {
    fake.route('POST', /\/start$/, () => ({ status: 400, json: { message } }));
    const result = await runBerth(fake.host, ['run', 'busybox', 'x']);
    assert.equal(result.code, code, message);
    assert.equal(
      result.stderr,
      `berth: Error response from daemon: ${message}\n\nRun 'berth run --help' for more information\n`,
    );
  }
  const create = await runBerth(fake.host, ['create', '--nope', 'busybox']);
  assert.equal(create.code, 125);
  assert.match(
    create.stderr,
    /^unknown flag: --nope\n\nUsage: {2}berth create \[OPTIONS\] IMAGE \[COMMAND\] \[ARG\.\.\.\]\n\nRun 'berth create --help' for more information\n$/,
  );
});

test('attached output is demultiplexed into stdout and stderr; stdin reaches the container', async (t) => {
  const fake = await startFake(t);
  let received = '';
  fake.hijack('POST', /^\/containers\/([^/]+)\/attach$/, (_req, socket) => {
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    // Output only once berth has closed its side: stdin reached its end.
    socket.on('end', () => socket.end(Buffer.concat([frame(1, `got ${received}`), frame(2, 'warning\n')])));
  });
  const result = await runBerth(fake.host, ['run', '-i', 'busybox', 'cat'], { stdin: 'ping\n' });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(received, 'ping\n');
  assert.equal(result.stdout, 'got ping\n');
  assert.equal(result.stderr, 'warning\n');
  const attach = fake.calls.find((r) => r.path.endsWith('/attach'));
  assert.equal(attach?.query.toString(), 'stderr=1&stdin=1&stdout=1&stream=1');
});

test('a system-error frame from the daemon is reported', async (t) => {
  const fake = await startFake(t);
  fake.hijack('POST', /^\/exec\/([^/]+)\/start$/, (_req, socket) =>
    socket.end(frame(3, 'exec failed: no such file\n')),
  );
  const result = await runBerth(fake.host, ['exec', 'web', 'nope']);
  assert.equal(result.code, 1);
  assert.equal(result.stderr, 'exec failed: no such file\n');
});

test('start -a streams output and exits with the container code; wait prints codes', async (t) => {
  const fake = await startFake(t);
  fake.route('POST', /\/wait$/, (req) => ({
    json: { StatusCode: req.query.get('condition') === 'next-exit' ? 5 : 7 },
  }));
  const started = await runBerth(fake.host, ['start', '-a', 'web']);
  assert.equal(started.code, 5);
  assert.equal(started.stdout, 'hello\n');
  const waited = await runBerth(fake.host, ['wait', 'web', 'other']);
  assert.equal(waited.stdout, '7\n7\n');
  const multi = await runBerth(fake.host, ['start', '-a', 'a', 'b']);
  assert.equal(multi.code, 1);
  assert.equal(multi.stderr, 'you cannot start and attach multiple containers at once\n');
});

test('login stores base64 credentials in config.json (mode 0600) and never prints them; logout removes them', async (t) => {
  const fake = await startFake(t);
  pulls(fake);
  const configDir = await tempDir(t);
  let seen: unknown;
  fake.route('POST', /^\/auth$/, (req) => {
    seen = req.json;
    return { json: { Status: 'Login Succeeded', IdentityToken: '' } };
  });
  await writeFile(join(configDir, 'config.json'), JSON.stringify({ psFormat: 'table {{.Names}}' }));
  const login = await runBerth(
    fake.host,
    ['login', '-u', 'bob', '--password-stdin', 'http://localhost:5000/'],
    {
      configDir,
      stdin: 's3cret\n',
    },
  );
  assert.equal(login.code, 0, login.stderr);
  assert.equal(login.stdout, 'Login Succeeded\n');
  assert.doesNotMatch(login.stdout + login.stderr, /s3cret|czNjcmV0/);
  assert.deepEqual(seen, { username: 'bob', password: 's3cret', serveraddress: 'localhost:5000' });
  const file = join(configDir, 'config.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const config = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(config, {
    psFormat: 'table {{.Names}}',
    auths: { 'localhost:5000': { auth: Buffer.from('bob:s3cret').toString('base64') } },
  });

  const pull = await runBerth(fake.host, ['pull', '-q', 'localhost:5000/app'], { configDir });
  assert.equal(pull.code, 0, pull.stderr);
  const header = fake.calls.find((r) => r.path === '/images/create')?.headers['x-registry-auth'];
  assert.deepEqual(JSON.parse(Buffer.from(String(header), 'base64').toString()), {
    username: 'bob',
    password: 's3cret',
    serveraddress: 'localhost:5000',
  });

  const logout = await runBerth(fake.host, ['logout', 'localhost:5000'], { configDir });
  assert.equal(logout.stdout, 'Removing login credentials for localhost:5000\n');
  assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { psFormat: 'table {{.Names}}', auths: {} });

  const noTty = await runBerth(fake.host, ['login', 'localhost:5000'], { configDir });
  assert.equal(noTty.code, 1);
  assert.equal(noTty.stderr, 'Error: Cannot perform an interactive login from a non TTY device\n');
});

test('ps uses psFormat from config.json unless --format is given', async (t) => {
  const fake = await startFake(t);
  const configDir = await tempDir(t);
  await writeFile(join(configDir, 'config.json'), JSON.stringify({ psFormat: '{{.Names}}|{{.Status}}' }));
  assert.equal((await runBerth(fake.host, ['ps'], { configDir })).stdout, 'web|Up 5 minutes\n');
  assert.equal(
    (await runBerth(fake.host, ['ps', '--format', '{{.ID}}'], { configDir })).stdout,
    'c0ffee012345\n',
  );
});

function archiveRoute(fake: FakeDockerApi, body: Buffer, stat: Record<string, unknown>): void {
  const header = Buffer.from(JSON.stringify(stat)).toString('base64');
  fake.route('GET', /^\/containers\/([^/]+)\/archive$/, () => ({
    headers: { 'Content-Type': 'application/x-tar', 'X-Docker-Container-Path-Stat': header },
    text: body,
  }));
}

test('cp from a container extracts into a directory, under a new name, or to stdout as tar', async (t) => {
  const fake = await startFake(t);
  const dir = await tempDir(t);
  const tar = tarArchive([
    { path: 'conf', type: 'directory', mode: 0o750, mtime: 1700000000 },
    { path: 'conf/app.ini', type: 'file', mode: 0o640, mtime: 1700000000, content: Buffer.from('a=1\n') },
    { path: 'conf/link', type: 'symlink', mode: 0o777, linkTarget: 'app.ini' },
  ]);
  archiveRoute(fake, tar, {
    name: 'conf',
    size: 4096,
    mode: 2 ** 31 + 0o750,
    mtime: '2023-11-14T22:13:20Z',
    linkTarget: '',
  });

  const into = await runBerth(fake.host, ['cp', 'web:/etc/conf', dir]);
  assert.equal(into.code, 0, into.stderr);
  assert.equal(await readFile(join(dir, 'conf/app.ini'), 'utf8'), 'a=1\n');
  assert.equal((await stat(join(dir, 'conf/app.ini'))).mode & 0o777, 0o640);
  assert.equal((await stat(join(dir, 'conf'))).mode & 0o777, 0o750);
  assert.equal((await stat(join(dir, 'conf/app.ini'))).mtimeMs, 1700000000000);
  assert.equal(await readlink(join(dir, 'conf/link')), 'app.ini');
  assert.equal(fake.calls[0]?.query.get('path'), '/etc/conf');

  const renamed = await runBerth(fake.host, ['cp', 'web:/etc/conf', join(dir, 'copy')]);
  assert.equal(renamed.code, 0, renamed.stderr);
  assert.equal(await readFile(join(dir, 'copy/app.ini'), 'utf8'), 'a=1\n');

  const toStdout = await runBerth(fake.host, ['cp', 'web:/etc/conf', '-']);
  assert.equal(Buffer.from(toStdout.stdout, 'utf8').length > 0, true);
  assert.equal(toStdout.stdout, tar.toString('utf8'));

  await writeFile(join(dir, 'plain'), 'x');
  const dirOnFile = await runBerth(fake.host, ['cp', 'web:/etc/conf', join(dir, 'plain')]);
  assert.equal(dirOnFile.code, 1);
  assert.equal(dirOnFile.stderr, 'cannot copy directory\n');
});

test('cp never writes outside the destination', async (t) => {
  const fake = await startFake(t);
  const dir = await tempDir(t);
  await mkdir(join(dir, 'dest'));
  const evil = tarArchive([
    { path: 'x/../../escaped', type: 'file', mode: 0o644, content: Buffer.from('no') },
  ]);
  archiveRoute(fake, evil, {
    name: 'x',
    size: 0,
    mode: 2 ** 31 + 0o755,
    mtime: '2023-11-14T22:13:20Z',
    linkTarget: '',
  });
  const result = await runBerth(fake.host, ['cp', 'web:/x', join(dir, 'dest')]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /is outside of/);
  assert.equal(existsSync(join(dir, 'escaped')), false);
});

test('cp into a container sends a tar named for the destination', async (t) => {
  const fake = await startFake(t);
  const dir = await tempDir(t);
  await mkdir(join(dir, 'src/sub'), { recursive: true });
  await writeFile(join(dir, 'src/sub/data.txt'), 'payload');
  await symlink('sub/data.txt', join(dir, 'src/link'));
  const missing = Buffer.from(
    JSON.stringify({ message: 'Could not find the file /srv/new in container web' }),
  );
  fake.route('GET', /^\/containers\/([^/]+)\/archive$/, () => ({ status: 404, text: missing }));
  fake.route('PUT', /^\/containers\/([^/]+)\/archive$/, () => ({ status: 200, text: '' }));
  const result = await runBerth(fake.host, ['cp', join(dir, 'src'), 'web:/srv/new']);
  assert.equal(result.code, 0, result.stderr);
  const put = fake.calls.find((r) => r.method === 'PUT');
  assert.equal(put?.query.get('path'), '/srv');
  assert.equal(put?.query.get('noOverwriteDirNonDir'), 'true');
  const entries: Array<[string, string, string]> = [];
  for await (const entry of readTar(new ByteSource(Readable.from([put?.body ?? Buffer.alloc(0)])))) {
    let content = '';
    for await (const chunk of entry.body) content += chunk.toString();
    entries.push([
      entry.header.path,
      entry.header.type,
      entry.header.type === 'symlink' ? entry.header.linkTarget : content,
    ]);
  }
  assert.deepEqual(entries, [
    ['new/', 'directory', ''],
    ['new/link', 'symlink', 'sub/data.txt'],
    ['new/sub/', 'directory', ''],
    ['new/sub/data.txt', 'file', 'payload'],
  ]);
});

/** docker 28.2.2's bytes for PULL_MESSAGES on a 120-column terminal (captured through a pty). */
const DOCKER_TERMINAL_PULL =
  'Using default tag: latest\nlatest: Pulling from library/busybox\n\n\x1b[1A\x1b[2K\raaaaaaaaaaaa: Pulling fs layer \r\x1b[1B' +
  '\n\x1b[1A\x1b[2K\rbbbbbbbbbbbb: Pulling fs layer \r\x1b[1B\x1b[2A\x1b[2K\raaaaaaaaaaaa: Downloading ' +
  '[==============>                                    ]      1MB/3.4MB\r\x1b[2B\x1b[2A\x1b[2K\raaaaaaaaaaaa: Downloading ' +
  '[=============================>                     ]      2MB/3.4MB\r\x1b[2B\x1b[2A\x1b[2K\raaaaaaaaaaaa: Verifying Checksum ' +
  '\r\x1b[2B\x1b[2A\x1b[2K\raaaaaaaaaaaa: Download complete \r\x1b[2B\x1b[2A\x1b[2K\raaaaaaaaaaaa: Extracting ' +
  '[>                                                  ]  32.77kB/3.4MB\r\x1b[2B\x1b[2A\x1b[2K\raaaaaaaaaaaa: Pull complete \r' +
  '\x1b[2B\x1b[1A\x1b[2K\rbbbbbbbbbbbb: Already exists \r\x1b[1BDigest: ' +
  'sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7\n' +
  'Status: Downloaded newer image for busybox:latest\ndocker.io/library/busybox:latest\n';

test('pull on a terminal redraws per-layer progress lines exactly as docker does', async (t) => {
  const fake = await startFake(t);
  pulls(fake);
  const result = await runBerth(fake.host, ['pull', 'busybox'], { terminalWidth: 120 });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, DOCKER_TERMINAL_PULL);
  // Off a terminal every status line is printed once and progress updates are dropped.
  const plain = await runBerth(fake.host, ['pull', 'busybox']);
  const statusLines = PULL_MESSAGES.filter((m) => !('progress' in m)).length;
  assert.equal(plain.stdout.split('\n').length - 1, statusLines + 2);
  assert.doesNotMatch(plain.stdout, /Downloading/);
  assert.equal(plain.stdout.includes('\x1b'), false);
});

test('errors inside a progress stream fail the command with their message', async (t) => {
  const fake = await startFake(t);
  pulls(fake);
  const result = await runBerth(fake.host, ['push', 'foo/bar:v1']);
  assert.equal(result.code, 1);
  assert.equal(result.stdout, 'The push refers to repository [docker.io/foo/bar]\naaaaaaaaaaaa: Preparing\n');
  assert.equal(result.stderr, 'denied: requested access to the resource is denied\n');
});

test('build against a classic builder without aux IDs (dockerd) finds the image ID in the stream', async (t) => {
  const fake = await startFake(t);
  const id = `sha256:${'ab'.repeat(32)}`;
  const json = (messages: object[]) => ({
    headers: { 'Content-Type': 'application/json' },
    chunks: messages.map((m) => JSON.stringify(m) + '\r\n'),
  });
  fake.route('POST', /^\/build$/, (req) =>
    req.query.get('q') === '1'
      ? json([{ stream: `${id}\n` }])
      : json([{ stream: 'Step 1/1 : FROM busybox\n' }, { stream: 'Successfully built abababababab\n' }]),
  );
  const dir = await tempDir(t);
  await writeFile(join(dir, 'Dockerfile'), 'FROM busybox\n');
  const quiet = await runBerth(fake.host, ['build', '-q', dir]);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(quiet.stdout, `${id}\n`);
  const iidfile = join(dir, 'iid');
  const plain = await runBerth(fake.host, ['build', '--iidfile', iidfile, dir]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(await readFile(iidfile, 'utf8'), 'abababababab');
  // Neither: the missing ID is an error, as before.
  fake.route('POST', /^\/build$/, () => json([{ stream: 'Step 1/1 : FROM busybox\n' }]));
  const none = await runBerth(fake.host, ['build', dir]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /did not report the built image/);
});

test('buildx is refused with a clear error and no request', async (t) => {
  const fake = await startFake(t);
  const result = await runBerth(fake.host, ['buildx', 'ls']);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^berth buildx is not available/);
  assert.equal(fake.requests.length, 0);
});

test('help is printed for commands and groups, in docker layout', async (t) => {
  const fake = await startFake(t);
  const run = await runBerth(fake.host, ['run', '--help']);
  assert.equal(run.code, 0);
  assert.match(
    run.stdout,
    /^Usage: {2}berth run \[OPTIONS\] IMAGE \[COMMAND\] \[ARG\.\.\.\]\n\nCreate and run a new container from an image\n/,
  );
  assert.match(run.stdout, /\n {2}-m, --memory bytes +Memory limit\n/);
  assert.match(run.stdout, /\n {6}--mount mount +Attach a filesystem mount to the container\n/);
  const group = await runBerth(fake.host, ['image']);
  assert.match(
    group.stdout,
    /^Usage: {2}berth image COMMAND\n\nManage images\n\nCommands:\n {2}build {7}Build an image/,
  );
  const top = await runBerth(fake.host, ['--help']);
  assert.match(top.stdout, /\n {2}container {3}Manage containers\n/);
  assert.equal(fake.requests.length, 0);
});

async function tlsFiles(dir: string): Promise<boolean> {
  const openssl = (args: string[]): Promise<void> =>
    new Promise((resolve, reject) =>
      execFile('openssl', args, { cwd: dir }, (err) => (err ? reject(err) : resolve())),
    );
  try {
    await openssl([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca-key.pem',
      '-out',
      'ca.pem',
      '-days',
      '1',
      '-subj',
      '/CN=test-ca',
    ]);
    await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    for (const name of ['server', 'client']) {
      await openssl([
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        `${name}-key.pem`,
        '-out',
        `${name}.csr`,
        '-subj',
        `/CN=${name}`,
      ]);
      await openssl([
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca-key.pem',
        '-CAcreateserial',
        '-out',
        `${name}.pem`,
        '-days',
        '1',
        '-extfile',
        'ext.cnf',
      ]);
    }
    return true;
  } catch {
    return false;
  }
}

test('tcp with --tlsverify presents the client certificate and verifies the daemon', async (t) => {
  const dir = await tempDir(t);
  if (!(await tlsFiles(dir))) return t.skip('openssl is not available');
  const read = (name: string): Promise<Buffer> => readFile(join(dir, name));
  const server = createServer(
    {
      key: await read('server-key.pem'),
      cert: await read('server.pem'),
      ca: await read('ca.pem'),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      res.writeHead(200, { 'Api-Version': '1.45', 'Content-Type': 'application/json' });
      res.end(
        req.method === 'HEAD'
          ? undefined
          : JSON.stringify([{ Id: CONTAINER_ID, Names: ['/tls'], Created: 1 }]),
      );
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  const host = `tcp://127.0.0.1:${port}`;
  const files = [
    '--tlscacert',
    join(dir, 'ca.pem'),
    '--tlscert',
    join(dir, 'client.pem'),
    '--tlskey',
    join(dir, 'client-key.pem'),
  ];
  const ok = await runBerth(host, ['--tlsverify', ...files, 'ps', '--format', '{{.Names}}']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, 'tls\n');
  // The same files through DOCKER_CERT_PATH and DOCKER_TLS_VERIFY.
  await writeFile(join(dir, 'cert.pem'), await read('client.pem'));
  await writeFile(join(dir, 'key.pem'), await read('client-key.pem'));
  const viaEnv = await runBerth(host, ['ps', '-q'], {
    env: { DOCKER_CERT_PATH: dir, DOCKER_TLS_VERIFY: '1' },
  });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);
  // Without a client certificate the daemon refuses the connection.
  const refused = await runBerth(host, ['--tlsverify', '--tlscacert', join(dir, 'ca.pem'), 'ps'], {
    env: { DOCKER_CERT_PATH: join(dir, 'none') },
  });
  assert.equal(refused.code, 1);
});

test('stats streams redraw the table in place and show "--" once a container stops', async (t) => {
  const fake = await startFake(t);
  const sample = (total: number) =>
    JSON.stringify({
      id: CONTAINER_ID,
      name: '/web',
      pids_stats: { current: 2 },
      cpu_stats: { cpu_usage: { total_usage: total }, system_cpu_usage: total * 10, online_cpus: 1 },
      precpu_stats: { cpu_usage: { total_usage: 0 }, system_cpu_usage: 0 },
      memory_stats: { usage: 1048576, limit: 2097152, stats: {} },
    }) + '\n';
  fake.route('GET', /\/stats$/, () => ({ chunks: [sample(100), sample(200)] }));
  const result = await runBerth(fake.host, ['stats', 'web']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(fake.calls.find((r) => r.path.endsWith('/stats'))?.query.get('stream'), '1');
  assert.ok(result.stdout.startsWith('\x1b[2J\x1b[H'));
  const lastDraw = result.stdout.slice(result.stdout.lastIndexOf('\x1b[H') + 3);
  assert.equal(
    lastDraw,
    'CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS\x1b[K\n' +
      'c0ffee012345   web       --        -- / --             --        --        --          --\x1b[K\n' +
      '\x1b[K\x1b[J',
  );
});

test('version prints the client part and then the daemon error when berthd is down', async (t) => {
  const dir = await tempDir(t);
  const host = `unix://${join(dir, 'none.sock')}`;
  const result = await runBerth(host, ['version']);
  assert.equal(result.code, 1);
  assert.match(result.stdout, /^Client:\n Version: {11}\d+\.\d+\.\d+\n API version: {7}\d+\.\d+\n/);
  assert.doesNotMatch(result.stdout, /Server:/);
  assert.equal(result.stderr, `${CANNOT_CONNECT(host)}\n`);
});
