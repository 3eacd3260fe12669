import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Query } from '../../../src/api/query.js';
import { BerthError } from '../../../src/common/errors.js';
import type { CacheRecord } from '../../../src/build/cache-usage.js';
import { parsePruneQuery, selectForPrune, type PruneOptions } from '../../../src/build/prune.js';

const NOW = Date.parse('2024-05-01T12:00:00Z');
const query = (params: Record<string, string>): Query => new Query(new URLSearchParams(params));
const filters = (value: Record<string, string[]>): string => JSON.stringify(value);
const options = (extra: Partial<PruneOptions> = {}): PruneOptions => ({
  all: false,
  reservedSpace: 0,
  maxUsedSpace: 0,
  minFreeSpace: 0,
  ...extra,
});

function record(id: string, extra: Partial<CacheRecord> = {}): CacheRecord {
  return {
    id,
    kind: 'step',
    key: id,
    type: 'regular',
    description: `/bin/sh -c echo ${id}`,
    parents: [],
    inUse: false,
    shared: false,
    size: 100,
    createdAt: '2024-04-01T00:00:00.000Z',
    lastUsedAt: '2024-04-01T00:00:00.000Z',
    usageCount: 1,
    ...extra,
  };
}

function rejects(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BerthError, String(err));
    assert.equal(err.kind, 'invalid-argument');
    assert.match(err.message, message);
    return true;
  });
}

test('prune query: all, filters, sizes, and the errors dockerd answers with 400', () => {
  assert.deepEqual(parsePruneQuery(query({ filters: '' }), NOW), options());
  assert.deepEqual(
    parsePruneQuery(
      query({
        all: '1',
        filters: filters({ until: ['24h'], type: ['regular'] }),
        'keep-storage': '10485760',
      }),
      NOW,
    ),
    options({ all: true, unusedSince: NOW - 24 * 3_600_000, type: 'regular', reservedSpace: 10485760 }),
  );
  // The old name of until, timestamps, and the other fields.
  assert.equal(
    parsePruneQuery(query({ filters: filters({ 'unused-for': ['90m'] }) }), NOW).unusedSince,
    NOW - 5_400_000,
  );
  assert.equal(
    parsePruneQuery(query({ filters: filters({ until: ['2024-04-30T12:00:00Z'] }) }), NOW).unusedSince,
    Date.parse('2024-04-30T12:00:00Z'),
  );
  assert.equal(
    parsePruneQuery(query({ filters: filters({ until: ['1714000000'] }) }), NOW).unusedSince,
    1714000000000,
  );
  assert.deepEqual(
    parsePruneQuery(query({ filters: filters({ id: ['abc'], inuse: ['false'], private: ['true'] }) }), NOW),
    options({ id: 'abc', inUse: false, shared: false }),
  );
  assert.equal(parsePruneQuery(query({ 'max-used-space': '5', 'min-free-space': '7' }), NOW).maxUsedSpace, 5);
  // What docker system prune --filter label=... passes on.
  assert.equal(parsePruneQuery(query({ filters: filters({ label: ['keep'] }) }), NOW).labelled, true);
  assert.equal(parsePruneQuery(query({ filters: filters({ 'label!': ['keep'] }) }), NOW).labelled, undefined);

  rejects(
    () => parsePruneQuery(query({ filters: filters({ dangling: ['true'] }) }), NOW),
    /^invalid filter 'dangling'$/,
  );
  rejects(
    () => parsePruneQuery(query({ filters: filters({ until: ['soon'] }) }), NOW),
    /"until" filter expects a duration/,
  );
  rejects(() => parsePruneQuery(query({ filters: filters({ until: ['1h', '2h'] }) }), NOW), /only one value/);
  rejects(
    () => parsePruneQuery(query({ filters: filters({ until: ['1h'], 'unused-for': ['2h'] }) }), NOW),
    /conflicting filters: "until" and "unused-for"/,
  );
  rejects(() => parsePruneQuery(query({ filters: filters({ shared: ['maybe'] }) }), NOW), /shared=maybe/);
  rejects(() => parsePruneQuery(query({ 'keep-storage': '10MB' }), NOW), /keep-storage is in bytes/);
});

test('prune selection: dangling or all, never in use, filters, least recently used first', () => {
  const records = [
    record('old', { lastUsedAt: '2024-01-01T00:00:00.000Z' }),
    record('shared', { shared: true, lastUsedAt: '2024-02-01T00:00:00.000Z' }),
    record('busy', { inUse: true }),
    record('recent', { lastUsedAt: '2024-04-30T23:00:00.000Z' }),
    record('mount', { kind: 'mount', type: 'exec.cachemount', lastUsedAt: '2024-03-01T00:00:00.000Z' }),
  ];
  const ids = (chosen: CacheRecord[]): string[] => chosen.map((r) => r.id);
  assert.deepEqual(ids(selectForPrune(records, options(), 0)), ['old', 'mount', 'recent']);
  assert.deepEqual(ids(selectForPrune(records, options({ all: true }), 0)), [
    'old',
    'shared',
    'mount',
    'recent',
  ]);
  // until: only what was not used since then.
  assert.deepEqual(
    ids(selectForPrune(records, options({ unusedSince: Date.parse('2024-04-01T00:00:00Z') }), 0)),
    ['old', 'mount'],
  );
  assert.deepEqual(ids(selectForPrune(records, options({ type: 'exec.cachemount' }), 0)), ['mount']);
  assert.deepEqual(ids(selectForPrune(records, options({ id: 'ecen' }), 0)), ['recent']);
  assert.deepEqual(ids(selectForPrune(records, options({ all: true, shared: true }), 0)), ['shared']);
  assert.deepEqual(ids(selectForPrune(records, options({ inUse: true, all: true }), 0)), []);
  assert.deepEqual(ids(selectForPrune(records, options({ labelled: true, all: true }), 0)), []);
  assert.deepEqual(
    ids(selectForPrune([record('child', { parents: ['old'] }), ...records], options({ parent: 'old' }), 0)),
    ['child'],
  );
  // keep-storage: 4 unshared records of 100 bytes; keeping 250 takes the two oldest.
  assert.deepEqual(ids(selectForPrune(records, options({ reservedSpace: 250 }), 0)), ['old', 'mount']);
  // max-used-space bounds the cache; reserved-space keeps at least that much.
  assert.deepEqual(ids(selectForPrune(records, options({ maxUsedSpace: 100 }), 0)), [
    'old',
    'mount',
    'recent',
  ]);
  assert.deepEqual(ids(selectForPrune(records, options({ maxUsedSpace: 100, reservedSpace: 300 }), 0)), [
    'old',
  ]);
  // min-free-space: pruned only as far as the disk needs (150 more free bytes: two records).
  assert.deepEqual(ids(selectForPrune(records, options({ minFreeSpace: 1150 }), 1000)), ['old', 'mount']);
  assert.deepEqual(ids(selectForPrune(records, options({ minFreeSpace: 500 }), 1000)), []);
});
