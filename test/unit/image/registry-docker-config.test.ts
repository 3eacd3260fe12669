import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { BerthError } from '../../../src/common/errors.js';
import { helperGet } from '../../../src/image/auth/credential-helper.js';
import { hostOfServerAddress } from '../../../src/image/auth/credentials.js';
import { defaultDockerConfigPath, DockerConfigCredentials } from '../../../src/image/auth/docker-config.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-docker-config-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

test('auths: base64 auth, username/password, identity tokens, keys with scheme and path', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'config.json');
  await writeFile(
    path,
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hub:pass') },
        'http://localhost:5000': { auth: b64('local:pw') },
        'registry.example.com': { username: 'plain', password: 'text' },
        'token.example.com': { identitytoken: 'refresh-me' },
        'empty.example.com': {},
      },
    }),
  );
  const credentials = new DockerConfigCredentials({ path });
  assert.deepEqual(await credentials.get('docker.io'), { username: 'hubuser', password: 'hub:pass' });
  assert.deepEqual(await credentials.get('localhost:5000'), { username: 'local', password: 'pw' });
  assert.deepEqual(await credentials.get('registry.example.com'), { username: 'plain', password: 'text' });
  assert.deepEqual(await credentials.get('token.example.com'), { identityToken: 'refresh-me' });
  assert.equal(await credentials.get('empty.example.com'), undefined);
  assert.equal(await credentials.get('elsewhere.example.com'), undefined);
});

test('a missing file means no credentials; a broken one is a clear error', async (t) => {
  const dir = await tempDir(t);
  assert.equal(
    await new DockerConfigCredentials({ path: join(dir, 'absent.json') }).get('docker.io'),
    undefined,
  );
  await writeFile(join(dir, 'bad.json'), '{"auths": ');
  await assert.rejects(
    new DockerConfigCredentials({ path: join(dir, 'bad.json') }).get('docker.io'),
    (err: BerthError) =>
      err.kind === 'invalid-argument' && err.message.includes('bad.json is not valid JSON'),
  );
  await writeFile(
    join(dir, 'auth.json'),
    JSON.stringify({ auths: { 'r.example': { auth: b64('nocolon') } } }),
  );
  await assert.rejects(
    new DockerConfigCredentials({ path: join(dir, 'auth.json') }).get('r.example'),
    (err: BerthError) => err.kind === 'invalid-argument' && err.message.includes('auths["r.example"]'),
  );
});

test('the default path honours DOCKER_CONFIG and HOME', () => {
  assert.equal(defaultDockerConfigPath({ DOCKER_CONFIG: '/etc/dc' }), '/etc/dc/config.json');
  assert.equal(defaultDockerConfigPath({ HOME: '/home/u' }), '/home/u/.docker/config.json');
  assert.equal(hostOfServerAddress('https://index.docker.io/v1/'), 'index.docker.io');
  assert.equal(hostOfServerAddress('host:5000'), 'host:5000');
});

/**
 * A fake docker-credential-<name> on a private PATH: it records its arguments and stdin and
 * answers from a table, as the real helpers do.
 */
async function fakeHelper(dir: string, name: string): Promise<NodeJS.ProcessEnv> {
  const script = join(dir, `docker-credential-${name}`);
  await writeFile(
    script,
    [
      '#!/bin/sh',
      `log="${join(dir, 'calls.log')}"`,
      'read -r server',
      'printf "%s|%s\\n" "$*" "$server" >> "$log"',
      'case "$server" in',
      '  https://index.docker.io/v1/) echo \'{"ServerURL":"x","Username":"hubuser","Secret":"hubsecret"}\' ;;',
      '  tok.example) echo \'{"ServerURL":"x","Username":"<token>","Secret":"refresh"}\' ;;',
      '  broken.example) echo "helper exploded" >&2; exit 2 ;;',
      '  *) echo "credentials not found in native keychain"; exit 1 ;;',
      'esac',
      '',
    ].join('\n'),
  );
  await chmod(script, 0o755);
  return { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` };
}

test('credsStore and credHelpers run docker-credential-<name> get with the server on stdin', async (t) => {
  const dir = await tempDir(t);
  const env = await fakeHelper(dir, 'fake');
  await fakeHelper(dir, 'other');
  const path = join(dir, 'config.json');
  await writeFile(
    path,
    JSON.stringify({
      credsStore: 'fake',
      credHelpers: { 'special.example': 'other' },
      auths: { 'fallback.example': { auth: b64('file:user') } },
    }),
  );
  const credentials = new DockerConfigCredentials({ path, env });
  assert.deepEqual(await credentials.get('docker.io'), { username: 'hubuser', password: 'hubsecret' });
  assert.deepEqual(await credentials.get('tok.example'), { identityToken: 'refresh' });
  // Not in the helper: the auths entry is used.
  assert.deepEqual(await credentials.get('fallback.example'), { username: 'file', password: 'user' });
  assert.equal(await credentials.get('special.example'), undefined);
  await assert.rejects(
    credentials.get('broken.example'),
    (err: BerthError) => err.kind === 'unavailable' && /helper exploded/.test(err.message),
  );
  const calls = (await readFile(join(dir, 'calls.log'), 'utf8')).trim().split('\n');
  assert.deepEqual(calls, [
    'get|https://index.docker.io/v1/',
    'get|tok.example',
    'get|fallback.example',
    'get|special.example',
    'get|broken.example',
  ]);
});

test('helper names cannot reach outside docker-credential-*; a missing helper is reported', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(helperGet('../../bin/sh', 'x'), (err: BerthError) => err.kind === 'invalid-argument');
  await assert.rejects(
    helperGet('absent', 'x', { env: { PATH: dir } }),
    (err: BerthError) => err.kind === 'unavailable' && err.message.includes('docker-credential-absent'),
  );
});
