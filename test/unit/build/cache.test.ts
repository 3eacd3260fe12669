import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildCache } from '../../../src/build/cache.js';

test('build cache index: entries and cache mounts with their times, written whole', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-cache-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const cache = await BuildCache.open(root);
  await cache.set('k1', { id: 'sha256:1', manifest: 'sha256:m1', parent: '', description: 'RUN one' });
  await cache.set('k2', {
    id: 'sha256:2',
    manifest: 'sha256:m2',
    parent: 'sha256:1',
    description: 'RUN two',
  });
  const first = cache.get('k1');
  assert.equal(first?.usageCount, 1);
  assert.equal(first?.created, first?.lastUsed);

  cache.touch('k1');
  const dir = cache.useMount('/root/.cache', 'cached mount /root/.cache from exec /bin/sh -c make');
  assert.equal(dir.startsWith(cache.mountsDir), true);
  assert.equal(cache.useMount('/root/.cache', 'again'), dir, 'the same id, the same directory');
  // Hits and mounts are written by flush(), not at once.
  const before = JSON.parse(await readFile(join(cache.dir, 'index.json'), 'utf8')) as {
    entries: Record<string, { usageCount: number }>;
    mounts: Record<string, unknown>;
  };
  assert.equal(before.entries.k1?.usageCount, 1);
  assert.deepEqual(before.mounts, {});
  await cache.flush();

  const reopened = await BuildCache.open(root);
  assert.equal(reopened.get('k1')?.usageCount, 2);
  assert.equal(reopened.get('k2')?.parent, 'sha256:1');
  const [[name, mount] = ['', undefined]] = reopened.listMounts();
  assert.equal(join(reopened.mountsDir, name), dir);
  assert.equal(mount?.id, '/root/.cache');
  assert.equal(mount?.usageCount, 2);
  assert.equal(mount?.description, 'again');

  await reopened.remove(['k1'], [name]);
  const last = await BuildCache.open(root);
  assert.deepEqual(
    last.list().map(([key]) => key),
    ['k2'],
  );
  assert.deepEqual(last.listMounts(), []);
});

test('build cache index: an index from before the times were kept still opens', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-cache-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'build-cache'), { recursive: true });
  await writeFile(
    join(root, 'build-cache', 'index.json'),
    JSON.stringify({ version: 1, entries: { old: { id: 'sha256:1', manifest: 'sha256:m' } } }),
  );
  const cache = await BuildCache.open(root);
  assert.deepEqual(cache.get('old'), { id: 'sha256:1', manifest: 'sha256:m' });
  assert.match(cache.indexTime, /^\d{4}-\d\d-\d\dT/);
  cache.delete('old');
  await cache.flush();
  assert.equal((await BuildCache.open(root)).get('old'), undefined);
});
