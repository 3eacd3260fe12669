import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig } from '../../../src/daemon/config.js';
import { parseCommandLine, usage } from '../../../src/daemon/flags.js';

const FILE = '/etc/berth/daemon.json';
const fromFile = (values: Record<string, unknown>): ReturnType<typeof buildConfig> =>
  buildConfig(new Map(), { path: FILE, values });

test('init and init-path: dockerd keys and flags, checked like the others', () => {
  assert.equal(buildConfig(new Map()).init, undefined);
  assert.equal(buildConfig(new Map()).initPath, undefined);
  const file = fromFile({ init: true, 'init-path': '/usr/libexec/tini/' });
  assert.equal(file.init, true);
  assert.equal(file.initPath, '/usr/libexec/tini');
  const flags = buildConfig(parseCommandLine(['--init', '--init-path', '/opt/init']).flags);
  assert.equal(flags.init, true);
  assert.equal(flags.initPath, '/opt/init');
  assert.equal(buildConfig(parseCommandLine(['--init=false']).flags).init, false);

  const prefix = `unable to configure berthd with file ${FILE}: `;
  assert.throws(() => fromFile({ init: 'true' }), {
    message: `${prefix}init: expected true or false, got the string "true"`,
  });
  assert.throws(() => fromFile({ 'init-path': 'tini' }), {
    message: `${prefix}init-path: must be an absolute path, got "tini"`,
  });
  assert.throws(() => fromFile({ 'init-path': ['/a'] }), {
    message: `${prefix}init-path: expected a string, got a list`,
  });
  assert.throws(() => buildConfig(parseCommandLine(['--init-path', 'x']).flags), {
    message: '--init-path: must be an absolute path, got "x"',
  });
  assert.match(usage(), /--init-path value +Path to the init binary/);
});
