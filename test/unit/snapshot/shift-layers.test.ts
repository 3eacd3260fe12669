import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShiftCache } from '../../../src/snapshot/shift-cache.js';
import { lowerDirsOf, planShiftedMounts, snapshotChain } from '../../../src/snapshot/shift-layers.js';
import type { SnapshotInfo, Snapshotter } from '../../../src/snapshot/snapshotter.js';

const maps = {
  uids: [{ containerID: 0, hostID: 100000, size: 65536 }],
  gids: [{ containerID: 0, hostID: 100000, size: 65536 }],
};

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-shift-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const overlay = {
  type: 'overlay',
  source: 'overlay',
  options: ['index=off', 'lowerdir=/s/l/AAA:/s/l/BBB', 'upperdir=/s/1/fs', 'workdir=/s/1/work'],
};

test('the lower directories are replaced by their copies in order; the upper is owned', () => {
  assert.deepEqual(lowerDirsOf([overlay]), ['/s/l/AAA', '/s/l/BBB']);
  const plan = planShiftedMounts([overlay], ['/r/layers/AAA', '/r/layers/BBB']);
  assert.deepEqual(plan.mounts[0]?.options, [
    'index=off',
    'lowerdir=/r/layers/AAA:/r/layers/BBB',
    'upperdir=/s/1/fs',
    'workdir=/s/1/work',
  ]);
  assert.deepEqual(plan.owned, ['/s/1/fs']);
  // A writable snapshot without layers is a bind mount: only owned.
  const scratch = planShiftedMounts([{ type: 'bind', source: '/s/2/fs', options: ['rbind', 'rw'] }], []);
  assert.deepEqual(scratch, {
    mounts: [{ type: 'bind', source: '/s/2/fs', options: ['rbind', 'rw'] }],
    owned: ['/s/2/fs'],
  });
  assert.throws(() => planShiftedMounts([overlay], ['/r/layers/AAA']), /2 lower layers, 1 shifted/);
  assert.throws(
    () => planShiftedMounts([{ type: 'bind', source: '/s/3/fs', options: ['rbind', 'ro'] }], []),
    /bind snapshot mount/,
  );
});

test('snapshotChain lists the committed parents nearest first', async () => {
  const infos = new Map<string, SnapshotInfo>(
    [
      { name: 'ctr', kind: 'active', parent: 'top' },
      { name: 'top', kind: 'committed', parent: 'base' },
      { name: 'base', kind: 'committed' },
    ].map((info) => [info.name, { ...info, created: '', updated: '' } as SnapshotInfo]),
  );
  const snapshotter = {
    stat: async (name: string) => infos.get(name) as SnapshotInfo,
  } as unknown as Snapshotter;
  assert.deepEqual(await snapshotChain(snapshotter, 'ctr'), ['top', 'base']);
  assert.deepEqual(await snapshotChain(snapshotter, 'base'), []);
});

test('a sweep keeps the copies of layers in use and removes the rest and what a crash left', async (t) => {
  const root = await tempDir(t);
  const sources = join(root, 'snapshots');
  await mkdir(join(sources, 'KEEP'), { recursive: true });
  await mkdir(join(sources, 'UNUSED'));
  const cache = await ShiftCache.open(join(root, 'range'), maps);
  const copy = async (name: string, chainId: string, source: string): Promise<void> => {
    await mkdir(join(cache.dir, name, 'bin'), { recursive: true });
    await writeFile(join(cache.dir, `${name}.json`), JSON.stringify({ chainId, source }));
  };
  await copy('KEEP', 'sha256:keep', join(sources, 'KEEP'));
  await copy('UNUSED', 'sha256:unused', join(sources, 'UNUSED'));
  // Still named by an image, but its layer's directory is gone (the snapshot was made again).
  await copy('GONE', 'sha256:keep', join(sources, 'GONE'));
  // A record whose copy never completed, a copy without record, a half-made copy.
  await writeFile(
    join(cache.dir, 'NOCOPY.json'),
    JSON.stringify({ chainId: 'sha256:keep', source: sources }),
  );
  await mkdir(join(cache.dir, 'NORECORD'));
  await mkdir(join(cache.dir, '.tmp-KEEP-0011'));

  const removed = await cache.sweep(new Set(['sha256:keep']));
  assert.deepEqual(removed.sort(), ['sha256:keep', 'sha256:keep', 'sha256:unused']);
  assert.deepEqual((await readdir(cache.dir)).sort(), ['KEEP', 'KEEP.json']);
  assert.deepEqual(await readdir(join(cache.dir, 'KEEP')), ['bin'], 'a kept copy is left alone');
  assert.deepEqual(await cache.sweep(new Set()), ['sha256:keep']);
  assert.deepEqual(await readdir(cache.dir), []);
});
