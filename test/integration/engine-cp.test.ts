/**
 * The container filesystem commands through the real docker CLI: cp both ways (files,
 * directories, tar on stdin and stdout, symlinks that point out of the container), export, diff
 * and commit.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { mkdir, readFile, readdir, writeFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox, listMounts, type Sandbox } from '../helpers/sandbox.js';
import { startBerthd, docker, type Berthd } from '../helpers/berthd.js';
import { ensureFixture } from '../../fixtures/index.js';
import { ByteSource } from '../../src/archive/byte-source.js';
import { readTar } from '../../src/archive/tar-reader.js';
import { tarArchive } from '../../src/archive/tar-writer.js';

type Run = (args: string[]) => ReturnType<typeof docker>;

async function daemonWithBusybox(t: TestContext): Promise<{ sandbox: Sandbox; berthd: Berthd; run: Run }> {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const run: Run = (args) => docker(sandbox, berthd.dockerHost, args);
  const busybox = await ensureFixture('busybox');
  const loaded = await run(['load', '-i', busybox.dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);
  return { sandbox, berthd, run };
}

/** The docker CLI with bytes in and out (tar on stdin and stdout), bounded in time. */
function dockerBytes(
  sandbox: Sandbox,
  berthd: Berthd,
  args: string[],
  input?: Buffer,
): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, {
      env: {
        ...process.env,
        DOCKER_HOST: berthd.dockerHost,
        DOCKER_CONFIG: join(sandbox.root, 'docker-config'),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err });
    });
    child.stdin.end(input);
  });
}

async function tarNames(tar: Buffer): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  for await (const { header, body } of readTar(new ByteSource(Readable.from([tar])))) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk);
    entries.set(header.path, header.type === 'file' ? Buffer.concat(chunks).toString() : header.type);
  }
  return entries;
}

async function ok(run: Run, args: string[]): Promise<string> {
  const result = await run(args);
  assert.equal(result.code, 0, `docker ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

test('docker cp both ways on a running container, tar on stdin and stdout', async (t) => {
  const { sandbox, berthd, run } = await daemonWithBusybox(t);
  const id = (
    await ok(run, ['run', '-d', '--cgroup-parent', sandbox.cgroupParent, 'busybox', 'sleep', '1000'])
  ).trim();
  const host = join(sandbox.root, 'host');
  await mkdir(join(host, 'tree', 'sub'), { recursive: true });
  await writeFile(join(host, 'hello.txt'), 'hello\n');
  await writeFile(join(host, 'tree', 'sub', 'deep.txt'), 'deep\n');
  await symlink('sub/deep.txt', join(host, 'tree', 'link'));

  await ok(run, ['cp', join(host, 'hello.txt'), `${id}:/tmp/`]);
  assert.equal(await ok(run, ['exec', id, 'cat', '/tmp/hello.txt']), 'hello\n');
  await ok(run, ['cp', join(host, 'hello.txt'), `${id}:/tmp/renamed.txt`]);
  assert.equal(await ok(run, ['exec', id, 'cat', '/tmp/renamed.txt']), 'hello\n');
  await ok(run, ['cp', join(host, 'tree'), `${id}:/copied`]);
  assert.equal(await ok(run, ['exec', id, 'cat', '/copied/sub/deep.txt']), 'deep\n');
  assert.equal(await ok(run, ['exec', id, 'readlink', '/copied/link']), 'sub/deep.txt\n');

  const out = join(sandbox.root, 'out');
  await mkdir(out);
  await ok(run, ['cp', `${id}:/etc/passwd`, join(out, 'passwd')]);
  assert.equal(
    await readFile(join(out, 'passwd'), 'utf8'),
    await ok(run, ['exec', id, 'cat', '/etc/passwd']),
  );
  await ok(run, ['cp', `${id}:/copied`, join(out, 'back')]);
  assert.equal(await readFile(join(out, 'back', 'sub', 'deep.txt'), 'utf8'), 'deep\n');
  await ok(run, ['cp', `${id}:/copied/.`, out]);
  assert.deepEqual((await readdir(out)).sort(), ['back', 'link', 'passwd', 'sub']);

  // A tar on stdout, named from the path's base name.
  const streamed = await dockerBytes(sandbox, berthd, ['cp', `${id}:/copied`, '-']);
  assert.equal(streamed.code, 0, streamed.stderr);
  const names = await tarNames(streamed.stdout);
  assert.equal(names.get('copied/sub/deep.txt'), 'deep\n');
  assert.equal(names.get('copied/link'), 'symlink');

  // A tar on stdin, extracted into a directory.
  const archive = tarArchive([
    { path: 'fromstdin', type: 'directory', mode: 0o755 },
    { path: 'fromstdin/a.txt', type: 'file', mode: 0o640, uid: 1000, gid: 1000, content: Buffer.from('A\n') },
  ]);
  const put = await dockerBytes(sandbox, berthd, ['cp', '-', `${id}:/tmp`], archive);
  assert.equal(put.code, 0, put.stderr);
  assert.equal(
    await ok(run, ['exec', id, 'stat', '-c', '%a %u:%g %s', '/tmp/fromstdin/a.txt']),
    '640 1000:1000 2\n',
  );

  // Missing paths are 404s the CLI reports as such.
  const missing = await run(['cp', `${id}:/no/such/file`, out]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /Could not find the file \/no\/such\/file in container/);
  const notDir = await dockerBytes(sandbox, berthd, ['cp', '-', `${id}:/etc/passwd`], archive);
  assert.notEqual(notDir.code, 0);
});

test('docker cp never follows a container symlink out of the container', async (t) => {
  const { sandbox, berthd, run } = await daemonWithBusybox(t);
  const id = (
    await ok(run, ['run', '-d', '--cgroup-parent', sandbox.cgroupParent, 'busybox', 'sleep', '1000'])
  ).trim();
  // A host directory, and the same absolute path made inside the container behind a symlink.
  const victim = join(sandbox.root, 'victim');
  await mkdir(victim);
  await writeFile(join(victim, 'host-secret'), 'secret\n');
  await ok(run, ['exec', id, 'mkdir', '-p', victim]);
  await ok(run, ['exec', id, 'sh', '-c', `echo inside > ${victim}/container-file`]);
  await ok(run, ['exec', id, 'ln', '-s', victim, '/tmp/abs']);
  await ok(run, ['exec', id, 'ln', '-s', `../../../../../../../..${victim}`, '/tmp/rel']);
  const source = join(sandbox.root, 'payload.txt');
  await writeFile(source, 'payload\n');

  for (const link of ['/tmp/abs', '/tmp/rel']) {
    await ok(run, ['cp', source, `${id}:${link}/`]);
    const stream = await dockerBytes(
      sandbox,
      berthd,
      ['cp', '-', `${id}:${link}`],
      tarArchive([{ path: 'streamed.txt', type: 'file', mode: 0o644, content: Buffer.from('streamed\n') }]),
    );
    assert.equal(stream.code, 0, stream.stderr);
  }
  assert.deepEqual((await readdir(victim)).sort(), ['host-secret'], 'nothing was written on the host');
  assert.equal(
    await ok(run, ['exec', id, 'ls', victim]),
    'container-file\npayload.txt\nstreamed.txt\n',
    'the copies landed inside the container',
  );
  // Reading through the link reads the container's directory, not the host's.
  const read = await dockerBytes(sandbox, berthd, ['cp', `${id}:/tmp/abs/.`, '-']);
  assert.equal(read.code, 0, read.stderr);
  const names = [...(await tarNames(read.stdout)).keys()];
  assert.ok(names.includes('./container-file'), names.join(' '));
  assert.ok(!names.some((name) => name.includes('host-secret')));
  // An archive entry climbing out of the target is refused.
  const climbing = await dockerBytes(
    sandbox,
    berthd,
    ['cp', '-', `${id}:/tmp`],
    tarArchive([{ path: '../../../../escape.txt', type: 'file', mode: 0o644, content: Buffer.from('x') }]),
  );
  assert.notEqual(climbing.code, 0);
  assert.match(climbing.stderr, /refused|climbs/);
});

test('cp on a stopped container, volumes and read-only mounts', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const bind = join(sandbox.root, 'bind');
  await mkdir(bind);
  await writeFile(join(bind, 'in-bind.txt'), 'bound\n');
  const ro = join(sandbox.root, 'ro');
  await mkdir(ro);
  const name = `cp-${sandbox.id}`;
  await ok(run, [
    'run',
    '--name',
    name,
    '--cgroup-parent',
    sandbox.cgroupParent,
    '-v',
    `${bind}:/bind`,
    '-v',
    `${ro}:/ro:ro`,
    '-v',
    '/vol',
    'busybox',
    'sh',
    '-c',
    'echo made > /made.txt; echo invol > /vol/v.txt',
  ]);
  const out = join(sandbox.root, 'out');
  await mkdir(out);
  await ok(run, ['cp', `${name}:/made.txt`, join(out, 'made.txt')]);
  assert.equal(await readFile(join(out, 'made.txt'), 'utf8'), 'made\n');
  await ok(run, ['cp', `${name}:/bind/in-bind.txt`, join(out, 'bound.txt')]);
  assert.equal(await readFile(join(out, 'bound.txt'), 'utf8'), 'bound\n');
  await ok(run, ['cp', `${name}:/vol/v.txt`, join(out, 'v.txt')]);
  assert.equal(await readFile(join(out, 'v.txt'), 'utf8'), 'invol\n');
  await ok(run, ['cp', join(out, 'made.txt'), `${name}:/bind/from-cp.txt`]);
  assert.equal(await readFile(join(bind, 'from-cp.txt'), 'utf8'), 'made\n', 'written into the bind mount');
  const refused = await run(['cp', join(out, 'made.txt'), `${name}:/ro/x.txt`]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /read-only/);
  assert.deepEqual(await readdir(ro), []);
  // The snapshot mounted for each call is gone again (unmounted once the response is sent, so
  // allow it a moment).
  const ours = async (): Promise<string[]> =>
    (await listMounts())
      .map((m) => m.mountPoint)
      .filter((point) => point.startsWith(sandbox.root) && point.includes('/fs-'));
  for (let attempt = 0; attempt < 50 && (await ours()).length > 0; attempt++)
    await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(await ours(), []);
});

test('docker export, docker diff, docker commit and a container of the new image', async (t) => {
  const { sandbox, berthd, run } = await daemonWithBusybox(t);
  const name = `c-${sandbox.id}`;
  await ok(run, [
    'run',
    '-d',
    '--name',
    name,
    '--cgroup-parent',
    sandbox.cgroupParent,
    'busybox',
    'sh',
    '-c',
    'echo new > /added.txt; echo more >> /etc/passwd; rm /etc/group; mkdir -p /d/e; touch /d/e/f; sleep 1000',
  ]);
  let diff = '';
  for (let i = 0; i < 100 && !diff.includes('/d/e/f'); i++) {
    diff = await ok(run, ['diff', name]);
    if (!diff.includes('/d/e/f')) await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(diff.trim().split('\n'), [
    'A /added.txt',
    'A /d',
    'A /d/e',
    'A /d/e/f',
    'C /etc',
    'D /etc/group',
    'C /etc/passwd',
  ]);

  const exported = await dockerBytes(sandbox, berthd, ['export', name]);
  assert.equal(exported.code, 0, exported.stderr);
  const entries = await tarNames(exported.stdout);
  assert.equal(entries.get('added.txt'), 'new\n');
  assert.equal(entries.get('bin/busybox') !== undefined, true);
  assert.equal(entries.has('etc/group'), false);

  const imageId = (
    await ok(run, [
      'commit',
      '-c',
      'CMD ["cat", "/added.txt"]',
      '-c',
      'ENV COMMITTED=yes',
      '-m',
      'a note',
      name,
      `committed-${sandbox.id}:v1`,
    ])
  ).trim();
  assert.match(imageId, /^sha256:[0-9a-f]{64}$/);
  const image = `committed-${sandbox.id}:v1`;
  assert.equal(await ok(run, ['run', '--rm', '--cgroup-parent', sandbox.cgroupParent, image]), 'new\n');
  const check = await ok(run, [
    'run',
    '--rm',
    '--cgroup-parent',
    sandbox.cgroupParent,
    image,
    'sh',
    '-c',
    'echo $COMMITTED; tail -n 1 /etc/passwd; test -e /etc/group || echo no-group',
  ]);
  assert.equal(check, 'yes\nmore\nno-group\n');
  assert.equal((await ok(run, ['image', 'inspect', '-f', '{{.Comment}}', image])).trim(), 'a note');
  assert.equal(
    (await ok(run, ['inspect', '-f', '{{.State.Status}}', name])).trim(),
    'running',
    'the container is unpaused after the commit',
  );
});
