import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import { DEFAULT_CONFIG_FILE } from '../../../src/daemon/config.js';
import { parseCommandLine, usage } from '../../../src/daemon/flags.js';

test('flags are collected by their daemon.json key', () => {
  const cmd = parseCommandLine([
    '-H',
    'unix:///a.sock',
    '--host=tcp://127.0.0.1:2376',
    '-Hfd://',
    '--data-root',
    '/d',
    '-D',
    '--live-restore=false',
    '--log-opt',
    'max-size=10m',
    '--log-opt=max-file=3',
    '-G',
    'docker',
    '--insecure-registry',
    'r:5000',
  ]);
  assert.deepEqual(Object.fromEntries(cmd.flags), {
    hosts: ['unix:///a.sock', 'tcp://127.0.0.1:2376', 'fd://'],
    'data-root': ['/d'],
    debug: ['true'],
    'live-restore': ['false'],
    'log-opts': ['max-size=10m', 'max-file=3'],
    group: ['docker'],
    'insecure-registries': ['r:5000'],
  });
  assert.equal(cmd.configFile, DEFAULT_CONFIG_FILE);
  assert.equal(cmd.configFileExplicit, false);
});

test('a repeated single-value flag keeps the last value', () => {
  assert.deepEqual(parseCommandLine(['--data-root', '/a', '--data-root=/b']).flags.get('data-root'), ['/b']);
});

test('meta flags', () => {
  const cmd = parseCommandLine(['--config-file', '/etc/x.json', '--insecure-tcp-force', '--validate']);
  assert.equal(cmd.configFile, '/etc/x.json');
  assert.equal(cmd.configFileExplicit, true);
  assert.equal(cmd.insecureTcpForce, true);
  assert.equal(cmd.validate, true);
  assert.equal(cmd.flags.size, 0);
  assert.equal(parseCommandLine(['-h']).help, true);
  assert.equal(parseCommandLine(['--version']).version, true);
});

test('command-line mistakes are invalid-argument errors', () => {
  const cases: Array<[string[], string]> = [
    [['--bogus'], 'unknown flag: --bogus'],
    [['-x'], "unknown shorthand flag: 'x' in -x"],
    [['--data-root'], 'flag needs an argument: --data-root'],
    [['-H'], 'flag needs an argument: -H'],
    [['--debug=yes'], 'invalid argument "yes" for --debug: expected true or false'],
    [['-Dtrue'], 'flag -D takes no value (in -Dtrue)'],
    [['start'], 'berthd takes no arguments, got "start"'],
  ];
  for (const [args, message] of cases) {
    assert.throws(
      () => parseCommandLine(args),
      (err: unknown) =>
        err instanceof BerthError && err.kind === 'invalid-argument' && err.message === message,
      args.join(' '),
    );
  }
});

test('usage lists every flag', () => {
  const text = usage();
  for (const flag of [
    '--host',
    '--data-root',
    '--exec-root',
    '--config-file',
    '--tlsverify',
    '--group',
    '--insecure-tcp-force',
    '--metrics-addr',
  ]) {
    assert.ok(text.includes(flag), flag);
  }
  assert.match(text, /-H, --host value/);
});
