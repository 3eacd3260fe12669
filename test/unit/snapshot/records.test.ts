import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import { OverlaySnapshotter } from '../../../src/snapshot/overlay.js';

test('an active snapshot whose record a crash tore is dropped on open; committed ones stay', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-records-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const first = await OverlaySnapshotter.open(root);
  await first.prepare('layer');
  await first.commit('base', 'layer');
  await first.prepare('container', 'base');
  const snapshots = join(root, 'snapshots');
  const ids = (await readdir(snapshots)).filter((name) => /^[0-9a-f]{16}$/.test(name));
  assert.equal(ids.length, 2);
  // Tear the active snapshot's record (written without fsync) as a power loss could.
  let torn = 0;
  for (const id of ids) {
    const record = join(snapshots, id, 'info.json');
    const text = await readFile(record, 'utf8');
    if ((JSON.parse(text) as { kind: string }).kind !== 'active') continue;
    await writeFile(record, text.slice(0, 10));
    torn++;
  }
  assert.equal(torn, 1);
  const reopened = await OverlaySnapshotter.open(root);
  assert.equal((await reopened.stat('base')).kind, 'committed');
  await assert.rejects(
    reopened.stat('container'),
    (err: unknown) => err instanceof BerthError && err.kind === 'not-found',
  );
  assert.equal((await readdir(snapshots)).filter((name) => /^[0-9a-f]{16}$/.test(name)).length, 1);
});
