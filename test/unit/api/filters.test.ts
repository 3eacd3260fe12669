import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import { Filters } from '../../../src/api/filters.js';

const invalid = (message: string) => (err: unknown) =>
  err instanceof BerthError && err.kind === 'invalid-argument' && err.message === message;

test('both the map-of-bools and the list form parse to the same filters', () => {
  const map = Filters.parse('{"label":{"a=b":true,"c":true},"type":{"container":true}}');
  const list = Filters.parse('{"label":["a=b","c"],"type":["container"]}');
  for (const filters of [map, list]) {
    assert.deepEqual(filters.keys().sort(), ['label', 'type']);
    assert.deepEqual(filters.get('label').sort(), ['a=b', 'c']);
    assert.deepEqual(filters.get('type'), ['container']);
  }
});

test('absent or empty filters match everything', () => {
  for (const text of [undefined, '', '  ', '{}']) {
    const filters = Filters.parse(text);
    assert.equal(filters.size, 0);
    assert.ok(filters.exactMatch('type', 'anything'));
    assert.ok(filters.fuzzyMatch('id', 'anything'));
    assert.ok(filters.matchKVList('label', {}));
  }
});

test('malformed filters are 400s that say what is wrong', () => {
  assert.throws(() => Filters.parse('{'), invalid('invalid filters: "{" is not JSON'));
  assert.throws(
    () => Filters.parse('[]'),
    invalid('invalid filters: expected a JSON object mapping each filter to its values'),
  );
  assert.throws(
    () => Filters.parse('{"a":"b"}'),
    invalid('invalid filters: the value of a must be a list or a map of strings'),
  );
  assert.throws(
    () => Filters.parse('{"a":[1]}'),
    invalid('invalid filters: the values of a must be strings'),
  );
  assert.throws(
    () => Filters.parse('{"a":{"b":"yes"}}'),
    invalid('invalid filters: a.b must be true or false'),
  );
});

test('validate rejects unknown keys with Docker message', () => {
  const filters = Filters.parse('{"type":["x"],"bogus":["y"]}');
  assert.throws(() => filters.validate(['type', 'label']), invalid("invalid filter 'bogus'"));
  assert.equal(Filters.parse('{"type":["x"]}').validate(['type']).size, 1);
});

test('exact, fuzzy (prefix) and label matching follow Docker', () => {
  const filters = Filters.parse('{"id":["abc"],"name":["web"],"label":["env=prod","tier"]}');
  assert.ok(filters.exactMatch('name', 'web'));
  assert.ok(!filters.exactMatch('name', 'web1'));
  assert.ok(filters.fuzzyMatch('id', 'abcdef'));
  assert.ok(!filters.fuzzyMatch('id', 'xabc'));
  assert.ok(filters.matchKVList('label', { env: 'prod', tier: 'front' }));
  assert.ok(!filters.matchKVList('label', { env: 'dev', tier: 'front' }), 'value must match');
  assert.ok(!filters.matchKVList('label', { env: 'prod' }), 'every label filter must match');
  assert.ok(!filters.matchKVList('label', undefined));
  assert.ok(!filters.matchKVList('label', { env: 'prod=x', tier: '' }));
});

test('boolean filters take true/1 or false/0 and reject both or neither', () => {
  assert.equal(Filters.parse('{"dangling":["true"]}').boolOrDefault('dangling', false), true);
  assert.equal(Filters.parse('{"dangling":["0"]}').boolOrDefault('dangling', true), false);
  assert.equal(Filters.parse('{}').boolOrDefault('dangling', true), true);
  assert.throws(
    () => Filters.parse('{"dangling":["maybe"]}').boolOrDefault('dangling', false),
    invalid("invalid filter 'dangling=maybe'"),
  );
  assert.throws(
    () => Filters.parse('{"dangling":["true","false"]}').boolOrDefault('dangling', false),
    invalid("invalid filter 'dangling=true,false'"),
  );
});
