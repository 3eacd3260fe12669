import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CAPABILITY_XATTR,
  idShift,
  shiftCapability,
  shiftEntry,
  toContainerId,
  toHostId,
  type IdMaps,
} from '../../../src/snapshot/shift-ids.js';

const maps: IdMaps = {
  uids: [
    { containerID: 0, hostID: 100000, size: 1000 },
    { containerID: 1000, hostID: 300000, size: 10 },
  ],
  gids: [{ containerID: 0, hostID: 200000, size: 65536 }],
};

function capability(version: 2 | 3, permitted: number, rootid?: number): Buffer {
  const value = Buffer.alloc(version === 2 ? 20 : 24);
  value.writeUInt32LE((version === 2 ? 0x02000001 : 0x03000001) >>> 0, 0);
  value.writeUInt32LE(permitted, 4);
  if (rootid !== undefined) value.writeUInt32LE(rootid, 20);
  return value;
}

test('ids through several ranges, both ways; unmapped ids are undefined', () => {
  assert.equal(toHostId(maps.uids, 0), 100000);
  assert.equal(toHostId(maps.uids, 1005), 300005);
  assert.equal(toHostId(maps.uids, 1010), undefined);
  assert.equal(toContainerId(maps.uids, 300009), 1009);
  assert.equal(toContainerId(maps.uids, 0), undefined);
  const back = idShift(maps, 'to-container');
  assert.equal(back.uid(100999), 999);
  assert.equal(back.gid(200000), 0);
  assert.equal(back.gid(100000), undefined);
});

test('a version 2 capability becomes version 3 for the container root on the way to the host', () => {
  const shifted = shiftCapability(capability(2, 1 << 13), idShift(maps, 'to-host'));
  assert.deepEqual(shifted, capability(3, 1 << 13, 100000));
  // From the host's view to the container's a v2 capability stays as it is.
  assert.deepEqual(shiftCapability(capability(2, 7), idShift(maps, 'to-container')), capability(2, 7));
});

test('a version 3 root id is mapped; one that becomes 0 is written as version 2; unmapped ones are dropped', () => {
  assert.deepEqual(
    shiftCapability(capability(3, 5, 1001), idShift(maps, 'to-host')),
    capability(3, 5, 300001),
  );
  assert.deepEqual(
    shiftCapability(capability(3, 5, 300001), idShift(maps, 'to-container')),
    capability(3, 5, 1001),
  );
  assert.deepEqual(
    shiftCapability(capability(3, 5, 100000), idShift(maps, 'to-container')),
    capability(2, 5),
  );
  assert.equal(shiftCapability(capability(3, 5, 42), idShift(maps, 'to-container')), undefined);
  assert.equal(shiftCapability(capability(3, 5, 5000), idShift(maps, 'to-host')), undefined);
  // Not a v2 or v3 value (a v1 one, or garbage): kept.
  const v1 = Buffer.from([0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(shiftCapability(v1, idShift(maps, 'to-host')), v1);
});

test('shiftEntry maps owners and the file capability, drops names, and refuses or overflows unmapped ids', () => {
  const toContainer = shiftEntry(idShift(maps, 'to-container'), 'overflow');
  const entry = toContainer({
    path: 'bin/ping',
    type: 'file',
    mode: 0o4755,
    uid: 300002,
    gid: 200005,
    uname: 'host-user',
    xattrs: { [CAPABILITY_XATTR]: capability(3, 1, 100000), 'user.x': 'y' },
  });
  assert.equal(entry.uid, 1002);
  assert.equal(entry.gid, 5);
  assert.equal(entry.mode, 0o4755);
  assert.equal(entry.uname, undefined);
  assert.deepEqual(entry.xattrs?.[CAPABILITY_XATTR], capability(2, 1));
  assert.equal(entry.xattrs?.['user.x'], 'y');
  const outside = toContainer({ path: 'bind/f', type: 'file', mode: 0o644, uid: 0, gid: 0 });
  assert.deepEqual([outside.uid, outside.gid], [65534, 65534]);
  const dropped = toContainer({
    path: 'f',
    type: 'file',
    mode: 0o755,
    uid: 100000,
    gid: 200000,
    xattrs: { [CAPABILITY_XATTR]: capability(3, 1, 7) },
  });
  assert.deepEqual(dropped.xattrs, {});

  const toHost = shiftEntry(idShift(maps, 'to-host'), 'refuse');
  const inward = toHost({ path: 'f', type: 'file', mode: 0o644, uid: 1000, gid: 1000 });
  assert.deepEqual([inward.uid, inward.gid], [300000, 201000]);
  assert.throws(
    () => toHost({ path: 'etc/x', type: 'file', mode: 0o644, uid: 2000, gid: 0 }),
    /etc\/x: uid 2000 has no mapping in the container's user namespace/,
  );
});
