import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, flagBool, flagValue, flagValues, type FlagSpec } from '../../../src/cli/args.js';
import { BerthError } from '../../../src/common/errors.js';

const specs: FlagSpec[] = [
  { name: 'interactive', short: 'i' },
  { name: 'tty', short: 't' },
  { name: 'env', short: 'e', value: true, multiple: true },
  { name: 'name', value: true },
  { name: 'root', value: true, aliases: ['-root'] },
];

test('docker-style flags: grouped shorts, repeated values, = and attached values', () => {
  const parsed = parseArgs(
    ['-it', '-e', 'A=1', '-eB=2', '--env=C=3', '--name', 'web', 'busybox', 'sh'],
    specs,
  );
  assert.equal(flagBool(parsed, 'interactive'), true);
  assert.equal(flagBool(parsed, 'tty'), true);
  assert.deepEqual(flagValues(parsed, 'env'), ['A=1', 'B=2', 'C=3']);
  assert.equal(flagValue(parsed, 'name'), 'web');
  assert.deepEqual(parsed.positional, ['busybox', 'sh']);
});

test('stopAtPositional leaves the command and its flags alone', () => {
  const parsed = parseArgs(['-t', 'ctr', 'ls', '-la', '--name', 'x'], specs, { stopAtPositional: true });
  assert.deepEqual(parsed.positional, ['ctr', 'ls', '-la', '--name', 'x']);
  assert.equal(flagValue(parsed, 'name'), undefined);
});

test('runc-style single-dash long aliases and -- end flags', () => {
  const parsed = parseArgs(['-root', '/r', '--', '-t'], specs);
  assert.equal(flagValue(parsed, 'root'), '/r');
  assert.deepEqual(parsed.positional, ['-t']);
});

test('unknown flags and missing values are clear invalid-argument errors', () => {
  assert.throws(
    () => parseArgs(['--nope'], specs),
    (err: unknown) =>
      err instanceof BerthError &&
      err.kind === 'invalid-argument' &&
      /unknown flag: --nope/.test(err.message),
  );
  assert.throws(() => parseArgs(['-ix'], specs), /unknown shorthand flag: 'x' in -ix/);
  assert.throws(() => parseArgs(['--name'], specs), /flag needs an argument: --name/);
  assert.throws(() => parseArgs(['--tty=maybe'], specs), /invalid boolean value "maybe" for --tty/);
});
