import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsMessage } from './assert-message.js';
import {
  containerEnv,
  mergeImageConfig,
  processArgs,
  replaceOrAppendEnv,
  workingDir,
} from '../../../src/engine/container-config.js';
import type { ContainerConfig } from '../../../src/engine/docker-types.js';
import type { ContainerConfig as ImageConfig } from '../../../src/oci/image-spec.js';
import { BerthError } from '../../../src/common/errors.js';

const image: ImageConfig = {
  User: 'app',
  Env: ['PATH=/opt/bin:/usr/bin', 'LANG=C.UTF-8'],
  Entrypoint: ['/entry.sh'],
  Cmd: ['serve', '--port', '80'],
  WorkingDir: '/srv',
  Labels: { a: 'image', b: 'image' },
  ExposedPorts: { '80/tcp': {} },
  Volumes: { '/data': {} },
  StopSignal: 'SIGQUIT',
  Healthcheck: { Test: ['CMD', 'true'], Interval: 5, Retries: 3 },
};

// [name, create body Config, expected Entrypoint + Cmd], per Docker's merge (daemon/create.go).
const argCases: Array<[string, ContainerConfig, string[] | RegExp]> = [
  ['image defaults', {}, ['/entry.sh', 'serve', '--port', '80']],
  ['Cmd replaces the image Cmd, keeps the entrypoint', { Cmd: ['sh'] }, ['/entry.sh', 'sh']],
  ['an Entrypoint drops the image Cmd', { Entrypoint: ['/bin/echo'] }, ['/bin/echo']],
  ['Entrypoint and Cmd', { Entrypoint: ['/bin/echo'], Cmd: ['hi'] }, ['/bin/echo', 'hi']],
  ['--entrypoint "" clears it and drops the image Cmd', { Entrypoint: [''], Cmd: ['ls'] }, ['ls']],
  ['--entrypoint "" without a command', { Entrypoint: [''] }, /No command specified/],
  ['an empty Entrypoint keeps the image Cmd', { Entrypoint: [] }, ['serve', '--port', '80']],
  [
    'null Entrypoint and empty Cmd take both',
    { Entrypoint: null, Cmd: [] },
    ['/entry.sh', 'serve', '--port', '80'],
  ],
];

for (const [name, config, expected] of argCases) {
  test(`args: ${name}`, () => {
    const merged = mergeImageConfig(config, image);
    if (expected instanceof RegExp) throwsMessage(() => processArgs(merged), expected);
    else assert.deepEqual(processArgs(merged), expected);
  });
}

test('args: scratch image without a command is refused with Docker message', () => {
  throwsMessage(
    () => processArgs(mergeImageConfig({}, undefined)),
    (err: unknown) =>
      err instanceof BerthError && err.kind === 'invalid-argument' && err.message === 'No command specified',
  );
});

test('merge is idempotent, also for a cleared entrypoint', () => {
  for (const [, config] of argCases) {
    const once = mergeImageConfig(config, image);
    assert.deepEqual(mergeImageConfig(once, image), once);
  }
});

test('merge: user values win, sets are unions', () => {
  const merged = mergeImageConfig(
    {
      User: '1000',
      Env: ['LANG=de_DE', 'FOO=1'],
      Labels: { a: 'user' },
      ExposedPorts: { '443/tcp': {} },
      WorkingDir: '/work',
      Healthcheck: { Interval: 9 },
    },
    image,
  );
  assert.equal(merged.User, '1000');
  assert.deepEqual(merged.Env, ['LANG=de_DE', 'FOO=1', 'PATH=/opt/bin:/usr/bin']);
  assert.deepEqual(merged.Labels, { a: 'user', b: 'image' });
  assert.deepEqual(merged.ExposedPorts, { '80/tcp': {}, '443/tcp': {} });
  assert.deepEqual(merged.Volumes, { '/data': {} });
  assert.equal(merged.WorkingDir, '/work');
  assert.equal(merged.StopSignal, 'SIGQUIT');
  assert.deepEqual(merged.Healthcheck?.Test, ['CMD', 'true']);
  assert.equal(merged.Healthcheck?.Interval, 9);
  assert.equal(merged.Healthcheck?.Retries, 3);
  assert.equal(mergeImageConfig({}, image).User, 'app');
});

test('env: Docker order PATH, HOSTNAME, TERM, then the Config env; image PATH replaces the default', () => {
  const merged = mergeImageConfig({ Env: ['FOO=bar'], Tty: true }, image);
  assert.deepEqual(containerEnv(merged, 'abc'), [
    'PATH=/opt/bin:/usr/bin',
    'HOSTNAME=abc',
    'TERM=xterm',
    'FOO=bar',
    'LANG=C.UTF-8',
  ]);
});

test('env: default PATH when the image has none, no TERM without a tty, link env before the Config env', () => {
  assert.deepEqual(containerEnv({ Env: ['A=1'] }, 'h', ['DB_PORT=tcp://x']), [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'HOSTNAME=h',
    'DB_PORT=tcp://x',
    'A=1',
  ]);
});

test('env: a bare KEY unsets, a Config HOSTNAME or TERM overrides the default', () => {
  assert.deepEqual(
    replaceOrAppendEnv(['PATH=/bin', 'HOSTNAME=h', 'TERM=xterm'], ['TERM', 'HOSTNAME=x', 'NEW=1']),
    ['PATH=/bin', 'HOSTNAME=x', 'NEW=1'],
  );
});

test('env: an entry without a name is refused', () => {
  throwsMessage(() => containerEnv({ Env: ['=oops'] }, 'h'), /invalid environment variable: =oops/);
});

test('working dir: default /, cleaned, relative refused with Docker message', () => {
  assert.equal(workingDir({}), '/');
  assert.equal(workingDir({ WorkingDir: '/a/b/../c/' }), '/a/c');
  throwsMessage(
    () => workingDir({ WorkingDir: 'rel' }),
    /the working directory 'rel' is invalid, it needs to be an absolute path/,
  );
});
