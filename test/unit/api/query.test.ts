import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import { Query } from '../../../src/api/query.js';

const q = (text: string): Query => new Query(new URLSearchParams(text));

test('booleans read like Docker BoolValue', () => {
  for (const value of ['1', 'true', 'True', 'TRUE', 'yes', 'on', 'anything'])
    assert.equal(q(`all=${value}`).bool('all'), true, value);
  for (const value of ['', '0', 'false', 'False', 'no', 'none', ' 0 '])
    assert.equal(q(`all=${encodeURIComponent(value)}`).bool('all'), false, value);
  assert.equal(q('').bool('all'), false);
  assert.equal(q('').bool('stdout', true), true, 'absent takes the fallback');
  assert.equal(q('stdout=0').bool('stdout', true), false);
});

test('integers are strict base 10; absent or empty give the fallback', () => {
  assert.equal(q('t=10').int('t'), 10);
  assert.equal(q('t=-1').int('t'), -1);
  assert.equal(q('').int('t'), undefined);
  assert.equal(q('t=').int('t', 5), 5);
  for (const bad of ['1.5', 'abc', '0x10', '1e3', '10s']) {
    assert.throws(
      () => q(`t=${bad}`).int('t'),
      (err: unknown) =>
        err instanceof BerthError &&
        err.kind === 'invalid-argument' &&
        err.message.includes(`invalid value for t: "${bad}"`),
    );
  }
  assert.throws(() => q('t=99999999999999999999').int('t'), /out of range/);
});

test('strings, repeated values and presence', () => {
  const query = q('name=a&platform=x&platform=y&flag');
  assert.equal(query.string('name'), 'a');
  assert.equal(query.string('missing'), undefined);
  assert.deepEqual(query.strings('platform'), ['x', 'y']);
  assert.ok(query.has('flag'));
  assert.equal(query.bool('flag'), false, 'a bare key is an empty value, like Go');
});

test('filters are parsed from the query and validated when asked', () => {
  const query = q(`filters=${encodeURIComponent('{"label":{"a":true}}')}`);
  assert.deepEqual(query.filters().get('label'), ['a']);
  assert.deepEqual(query.filters(['label']).get('label'), ['a']);
  assert.throws(() => query.filters(['status']), /invalid filter 'label'/);
  assert.equal(q('').filters(['x']).size, 0);
});
