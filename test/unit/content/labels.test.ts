import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsContentStore } from '../../../src/content/fs-store.js';

test('a labels file torn by a crash reads as no labels, and labels can be set again', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-labels-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const store = new FsContentStore(root);
  const info = await store.writeBlob(Buffer.from('blob'), {}, { source: 'registry.test' });
  assert.deepEqual(info.labels, { source: 'registry.test' });
  const labelsDir = join(root, 'content', 'labels', 'sha256');
  const [name] = await readdir(labelsDir);
  await writeFile(join(labelsDir, name as string), '{"source": "regis');
  assert.deepEqual((await store.info(info.digest))?.labels, {});
  await store.setLabels(info.digest, { size: '4' });
  assert.deepEqual((await store.info(info.digest))?.labels, { size: '4' });
});
