import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dockerRecord, type CacheRecord } from '../../../src/build/cache-usage.js';
import { diskUsageReport, parseDfTypes, type DfSources } from '../../../src/engine/system-df.js';

const record: CacheRecord = {
  id: '0123456789abcdef012345678',
  kind: 'step',
  key: '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  type: 'regular',
  description: '/bin/sh -c make',
  parents: ['fedcba9876543210fedcba987'],
  inUse: false,
  shared: true,
  size: 4096,
  createdAt: '2024-01-01T00:00:00.000Z',
  lastUsedAt: '2024-01-02T00:00:00.000Z',
  usageCount: 3,
};

test('system df: the build cache section is the builder records in the API shape', async () => {
  const asked: boolean[] = [];
  const sources: DfSources = {
    containers: () => [],
    summary: () => ({}),
    images: async () => [],
    snapshotSize: async () => 0,
    volumes: () => [],
    volumeUsers: () => [],
    directorySize: async () => 0,
    buildCache: async (legacyParent) => {
      asked.push(legacyParent);
      return [dockerRecord(record, legacyParent)];
    },
  };
  const current = await diskUsageReport(sources, parseDfTypes(['build-cache']));
  assert.deepEqual(current, {
    BuildCache: [
      {
        ID: '0123456789abcdef012345678',
        Parents: ['fedcba9876543210fedcba987'],
        Type: 'regular',
        Description: '/bin/sh -c make',
        InUse: false,
        Shared: true,
        Size: 4096,
        CreatedAt: '2024-01-01T00:00:00.000Z',
        LastUsedAt: '2024-01-02T00:00:00.000Z',
        UsageCount: 3,
      },
    ],
  });
  // API 1.41 clients read a single Parent.
  const legacy = (await diskUsageReport(sources, parseDfTypes(['build-cache']), true)) as {
    BuildCache: Array<Record<string, unknown>>;
  };
  assert.equal(legacy.BuildCache[0]?.Parent, 'fedcba9876543210fedcba987');
  assert.equal('Parents' in (legacy.BuildCache[0] ?? {}), false);
  assert.deepEqual(asked, [false, true]);
});
