/**
 * Daemon access (issue 8): the API socket is root's only, and registry credentials given to
 * `docker login` / `berth login` are stored 0600 and never appear in berthd's log, `inspect` or
 * events. TCP without TLS and TLS client verification are proved in berthd-cli.test.ts and
 * berthd-tls.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { startBerthd, type Berthd } from '../helpers/berthd.js';
import { execProgram, type ExecResult } from '../helpers/exec.js';
import { startBasicAuthRegistry } from '../helpers/registry-auth.js';
import { ensureFixture } from '../../fixtures/index.js';

const BERTH_SCRIPT =
  process.env.BERTH_SCRIPT ?? fileURLToPath(new URL('../../../bin/berth.js', import.meta.url));

test('the API socket belongs to root and is not world-accessible', async (t) => {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const info = await lstat(berthd.socket);
  assert.ok(info.isSocket());
  assert.equal(info.uid, 0, 'owned by root');
  assert.equal(info.mode & 0o007, 0, `no access for others (mode ${(info.mode & 0o777).toString(8)})`);
  assert.ok([0o600, 0o660].includes(info.mode & 0o777), (info.mode & 0o777).toString(8));
  // Without a `berth` group the socket is root's alone, as berthd says.
  if (info.mode & 0o070) assert.notEqual(info.gid, 0, 'group access only for a dedicated group');
  else assert.match(berthd.output(), /only root can use .*berth\.sock \(mode 0600\)/);
});

/** A command with the password on stdin, the docker config directory of the sandbox. */
function withStdin(
  sandbox: Sandbox,
  berthd: Berthd,
  file: string,
  args: string[],
  input: string,
): Promise<ExecResult> {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('DOCKER_') && !name.startsWith('BERTH_')),
  );
  return execProgram(file, args, {
    input,
    timeoutMs: 30_000,
    env: { ...clean, DOCKER_CONFIG: join(sandbox.root, 'docker-config'), DOCKER_HOST: berthd.dockerHost },
  });
}

test('registry credentials are stored 0600 and never printed, logged or inspected', async (t) => {
  const sandbox = await createSandbox(t);
  const password = `pw-${sandbox.id}-Secret!`;
  const registry = await startBasicAuthRegistry({ alice: password });
  if (!registry) {
    t.skip('this machine has no bcrypt crypt(): no htpasswd registry');
    return;
  }
  t.after(() => registry.stop());
  const busybox = await ensureFixture('busybox');
  await execProgram('skopeo', [
    '--insecure-policy',
    'copy',
    '--quiet',
    '--dest-tls-verify=false',
    '--dest-creds',
    `alice:${password}`,
    `oci:${busybox.ociLayout}:latest`,
    `docker://${registry.host}/secret/busybox:latest`,
  ]).then((result) => assert.equal(result.code, 0, result.stderr));
  const berthd = await startBerthd(t, sandbox, { config: { 'insecure-registries': [registry.host] } });
  const secrets = [password, Buffer.from(`alice:${password}`).toString('base64')];
  const assertClean = (what: string, text: string): void => {
    for (const secret of secrets) assert.ok(!text.includes(secret), `${what} shows the credentials`);
  };

  const since = String(Math.floor(Date.now() / 1000) - 1);
  const wrong = await withStdin(
    sandbox,
    berthd,
    'docker',
    ['login', '-u', 'alice', '--password-stdin', registry.host],
    'not-the-password\n',
  );
  assert.notEqual(wrong.code, 0);
  assert.ok(!wrong.stderr.includes('not-the-password'), wrong.stderr);

  const login = await withStdin(
    sandbox,
    berthd,
    'docker',
    ['login', '-u', 'alice', '--password-stdin', registry.host],
    `${password}\n`,
  );
  assert.equal(login.code, 0, login.stderr);
  assertClean('docker login', login.stdout + login.stderr);
  const config = join(sandbox.root, 'docker-config', 'config.json');
  assert.equal((await stat(config)).mode & 0o777, 0o600, 'docker stores config.json 0600');

  // The credentials reach berthd with the pull and nowhere else.
  const image = `${registry.host}/secret/busybox:latest`;
  const pull = await withStdin(sandbox, berthd, 'docker', ['pull', image], '');
  assert.equal(pull.code, 0, pull.stderr);
  const inspect = await withStdin(sandbox, berthd, 'docker', ['image', 'inspect', image], '');
  assert.equal(inspect.code, 0, inspect.stderr);
  assertClean('docker image inspect', inspect.stdout);
  const tagged = await withStdin(
    sandbox,
    berthd,
    'docker',
    ['create', '--name', `c-${sandbox.id}`, image, 'true'],
    '',
  );
  assert.equal(tagged.code, 0, tagged.stderr);
  const events = await withStdin(
    sandbox,
    berthd,
    'docker',
    [
      'events',
      '--since',
      since,
      '--until',
      String(Math.ceil(Date.now() / 1000) + 1),
      '--format',
      '{{json .}}',
    ],
    '',
  );
  assert.equal(events.code, 0, events.stderr);
  assert.match(events.stdout, /"create"/, 'the window holds events');
  assertClean('docker events', events.stdout);

  // berth's own login writes its config.json 0600 too.
  await withStdin(sandbox, berthd, 'docker', ['logout', registry.host], '');
  const berthLogin = await withStdin(
    sandbox,
    berthd,
    process.execPath,
    [BERTH_SCRIPT, 'login', '-u', 'alice', '--password-stdin', registry.host],
    `${password}\n`,
  );
  assert.equal(berthLogin.code, 0, berthLogin.stderr);
  assertClean('berth login', berthLogin.stdout + berthLogin.stderr);
  assert.equal((await stat(config)).mode & 0o777, 0o600, 'berth stores config.json 0600');
  assertClean("berthd's log", berthd.output());
});
