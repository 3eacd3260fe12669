import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapArgument, planIdmappedMounts } from '../../../src/snapshot/idmap.js';

test('every lower layer of an overlay goes through an idmapped mount; the upper is owned', () => {
  const plan = planIdmappedMounts(
    [
      {
        type: 'overlay',
        source: 'overlay',
        options: ['index=off', 'lowerdir=/s/l/AAA:/s/l/BBB', 'upperdir=/s/1/fs', 'workdir=/s/1/work'],
      },
    ],
    '/run/idmap/c1',
    '/c/rootfs',
  );
  assert.deepEqual(plan.idmapped, [
    ['/s/l/AAA', '/run/idmap/c1/0'],
    ['/s/l/BBB', '/run/idmap/c1/1'],
  ]);
  assert.deepEqual(plan.mounts[0]?.options, [
    'index=off',
    'lowerdir=/run/idmap/c1/0:/run/idmap/c1/1',
    'upperdir=/s/1/fs',
    'workdir=/s/1/work',
  ]);
  assert.deepEqual(plan.owned, ['/s/1/fs']);
});

test('a read-only single layer is idmapped onto the target; a writable bind is owned', () => {
  const view = planIdmappedMounts(
    [{ type: 'bind', source: '/s/2/fs', options: ['rbind', 'ro'] }],
    '/x',
    '/t',
  );
  assert.deepEqual(view, { idmapped: [['/s/2/fs', '/t']], mounts: [], owned: [] });
  const scratch = planIdmappedMounts(
    [{ type: 'bind', source: '/s/3/fs', options: ['rbind', 'rw'] }],
    '/x',
    '/t',
  );
  assert.deepEqual(scratch.idmapped, []);
  assert.deepEqual(scratch.owned, ['/s/3/fs']);
  assert.throws(
    () => planIdmappedMounts([{ type: 'tmpfs', source: 'tmpfs', options: [] }], '/x', '/t'),
    /tmpfs/,
  );
});

test('mapArgument writes berth-idmap maps', () => {
  assert.equal(
    mapArgument([
      { containerID: 0, hostID: 100000, size: 1000 },
      { containerID: 1000, hostID: 300000, size: 10 },
    ]),
    '0:100000:1000,1000:300000:10',
  );
  assert.throws(() => mapArgument([]), /at least one/);
});
