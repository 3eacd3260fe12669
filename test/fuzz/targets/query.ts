/**
 * Engine API query strings: Query's Docker-style booleans and integers, and the `filters` JSON
 * (Filters.parse, validate and every matcher the routes use). Bad values are a BerthError (a
 * 400); the integers that parse are safe integers.
 */
import { Query } from '../../../src/api/query.js';
import { BerthError } from '../../../src/common/errors.js';
import { mutateJson } from '../json-mutate.js';
import type { Rng } from '../rng.js';
import { invariant, type FuzzTarget } from '../target.js';

const FILTER_KEYS = ['label', 'dangling', 'name', 'id', 'status', 'before', 'since', 'reference', 'until'];

/** Mutate the decoded `filters` JSON and put it back, encoded. */
function mutateFilters(input: Buffer, rng: Rng): Buffer | undefined {
  const params = new URLSearchParams(input.toString('utf8'));
  const filters = params.get('filters');
  if (filters === null) return undefined;
  const mutated = mutateJson(Buffer.from(filters, 'utf8'), rng, FILTER_KEYS);
  if (mutated === undefined) return undefined;
  params.set('filters', mutated.toString('utf8'));
  return Buffer.from(params.toString(), 'utf8');
}

export const target: FuzzTarget = {
  name: 'query',
  description: 'API query strings: Query.bool/int/strings and the filters parameter',
  maxLength: 8 * 1024,
  dictionary: [
    '&',
    '=',
    '%',
    '%7B',
    '%7D',
    '%22',
    '%00',
    '+',
    'filters=',
    'all=',
    'limit=',
    'size=',
    'force=',
    'true',
    'false',
    '-1',
    '9007199254740993',
    ...FILTER_KEYS.map((key) => `"${key}"`),
  ],
  mutate: mutateFilters,
  run(input) {
    const query = new Query(new URLSearchParams(input.toString('utf8')));
    for (const name of ['all', 'size', 'force', 'v', 'stream']) query.bool(name);
    for (const name of ['limit', 't', 'tail']) {
      const value = query.int(name, 0);
      invariant(Number.isSafeInteger(value), () => `int(${name}) gave ${value}`);
    }
    query.strings('platform');
    query.string('name');
    const filters = query.filters();
    for (const key of filters.keys()) {
      filters.get(key);
      filters.exactMatch(key, 'x');
      filters.fuzzyMatch(key, 'abc');
      filters.matchKVList(key, { a: 'b', constructor: 'c' });
      filters.matchKVList(key, undefined);
    }
    // Each of these may reject with a BerthError of its own; all of them run.
    for (const check of [() => filters.boolOrDefault('dangling', false), () => query.filters(FILTER_KEYS)]) {
      try {
        check();
      } catch (err) {
        if (!(err instanceof BerthError)) throw err;
      }
    }
  },
};
