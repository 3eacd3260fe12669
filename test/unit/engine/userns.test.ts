import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Spec } from '../../../src/oci/runtime-spec.js';
import type { ImageService } from '../../../src/image/image-service.js';
import type { SnapshotInfo, Snapshotter } from '../../../src/snapshot/snapshotter.js';
import {
  checkRemappedContainer,
  containerIdMap,
  idmapSetting,
  layersInUse,
  nextRangeStart,
  parseRemapSetting,
  parseSubordinateFile,
  rangesToMappings,
  remappedMounts,
  resolveRemap,
  takeOutsideSettings,
  toContainerId,
  toHostId,
  type Account,
  type UsernsHost,
} from '../../../src/engine/userns.js';

test('parseRemapSetting takes dockerd forms and refuses others', () => {
  assert.deepEqual(parseRemapSetting('default'), { user: 'berth', group: 'berth', isDefault: true });
  assert.deepEqual(parseRemapSetting('alice'), { user: 'alice', isDefault: false });
  assert.deepEqual(parseRemapSetting('alice:staff'), { user: 'alice', group: 'staff', isDefault: false });
  assert.deepEqual(parseRemapSetting('1000:1000'), { user: '1000', group: '1000', isDefault: false });
  for (const bad of ['', 'a:b:c', 'al ice', ':x', '-x'])
    assert.throws(() => parseRemapSetting(bad), /userns-remap/, bad);
});

test('subordinate files: ranges by name or id, in file order, as consecutive container ids', () => {
  const text =
    '# comment\nbob:100000:65536\nalice:200000:1000\n1001:300000:10\nalice:400000:500\nalice:x:1\n';
  const ranges = parseSubordinateFile(text, ['alice', '1001']);
  assert.deepEqual(ranges, [
    { start: 200000, size: 1000 },
    { start: 300000, size: 10 },
    { start: 400000, size: 500 },
  ]);
  const mappings = rangesToMappings(ranges);
  assert.deepEqual(mappings, [
    { containerID: 0, hostID: 200000, size: 1000 },
    { containerID: 1000, hostID: 300000, size: 10 },
    { containerID: 1010, hostID: 400000, size: 500 },
  ]);
  assert.equal(toHostId(mappings, 0), 200000);
  assert.equal(toHostId(mappings, 1005), 300005);
  assert.equal(toHostId(mappings, 1510), undefined);
  assert.equal(toContainerId(mappings, 400001), 1011);
  assert.equal(toContainerId(mappings, 0), undefined);
  assert.equal(nextRangeStart(''), 100000);
  assert.equal(nextRangeStart(text), 400500);
});

function fakeHost(dir: string, users: Account[], groups: Account[]): UsernsHost & { created: string[] } {
  const created: string[] = [];
  const find = (list: Account[], key: string): Account | undefined =>
    list.find((a) => a.name === key || String(a.id) === key);
  return {
    created,
    subuidPath: join(dir, 'subuid'),
    subgidPath: join(dir, 'subgid'),
    lookupUser: (key) => Promise.resolve(find(users, key)),
    lookupGroup: (key) => Promise.resolve(find(groups, key)),
    createUser: (name) => {
      created.push(name);
      users.push({ name, id: 999 });
      groups.push({ name, id: 999 });
      return Promise.resolve();
    },
  };
}

test('resolveRemap default creates the berth user and the next free ranges', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'userns-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'subuid'), 'bob:100000:65536');
  const host = fakeHost(dir, [], []);
  const remap = await resolveRemap('default', host);
  assert.deepEqual(host.created, ['berth']);
  assert.equal(await readFile(join(dir, 'subuid'), 'utf8'), 'bob:100000:65536\nberth:165536:65536\n');
  assert.equal(await readFile(join(dir, 'subgid'), 'utf8'), 'berth:100000:65536\n');
  assert.deepEqual([remap.rootUid, remap.rootGid], [165536, 100000]);
  assert.deepEqual(remap.map.uids, [{ containerID: 0, hostID: 165536, size: 65536 }]);
  // A second start finds the user and its ranges and adds nothing.
  await resolveRemap('default', host);
  assert.deepEqual(host.created, ['berth']);
  assert.equal(await readFile(join(dir, 'subuid'), 'utf8'), 'bob:100000:65536\nberth:165536:65536\n');
});

test('resolveRemap uid:gid looks the names up; missing users, groups and ranges are clear errors', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'userns-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'subuid'), 'alice:500000:65536\n');
  await writeFile(join(dir, 'subgid'), '2000:600000:65536\n');
  const host = fakeHost(dir, [{ name: 'alice', id: 1000 }], [{ name: 'staff', id: 2000 }]);
  const remap = await resolveRemap('1000:2000', host);
  assert.deepEqual(
    [remap.user, remap.group, remap.rootUid, remap.rootGid],
    ['alice', 'staff', 500000, 600000],
  );
  await assert.rejects(resolveRemap('carol', host), /no user "carol"/);
  await assert.rejects(resolveRemap('alice:nogroup', host), /no group "nogroup"/);
  // Without a group the user's name is looked up in subgid: alice has no gid range.
  await assert.rejects(resolveRemap('alice', host), /no subordinate gid range for group "alice"/);
  assert.deepEqual(host.created, [], 'only default creates users');
});

test('--userns=host opts out; --privileged needs it', () => {
  const remap = {
    user: 'a',
    group: 'a',
    map: {
      uids: [{ containerID: 0, hostID: 1e6, size: 10 }],
      gids: [{ containerID: 0, hostID: 1e6, size: 10 }],
    },
    rootUid: 1e6,
    rootGid: 1e6,
  };
  assert.equal(containerIdMap(remap, {}), remap.map);
  assert.equal(containerIdMap(remap, { UsernsMode: 'host' }), undefined);
  assert.equal(containerIdMap(undefined, {}), undefined);
  assert.throws(() => checkRemappedContainer(remap, { Privileged: true }), /--userns=host/);
  checkRemappedContainer(remap, { Privileged: true, UsernsMode: 'host' });
  checkRemappedContainer(undefined, { Privileged: true });
});

test('sysfs becomes a read-only bind of /sys unless the container owns its network namespace', () => {
  const mounts = [
    { destination: '/proc', type: 'proc', source: 'proc' },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
  ];
  assert.deepEqual(remappedMounts(mounts, true), mounts);
  assert.deepEqual(remappedMounts(mounts, false)[1], {
    destination: '/sys',
    type: 'bind',
    source: '/sys',
    options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'],
  });
});

test('takeOutsideSettings moves network sysctls and oom_score_adj out of a new user namespace', () => {
  const spec = (user: boolean, netPath?: string): Spec => ({
    ociVersion: '1.2.0',
    process: { cwd: '/', args: ['sh'], user: { uid: 0, gid: 0 }, oomScoreAdj: 5 },
    linux: {
      namespaces: [
        ...(user ? [{ type: 'user' as const }] : []),
        netPath === undefined ? { type: 'network' as const } : { type: 'network' as const, path: netPath },
      ],
      sysctl: { 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.msgmax': '8192' },
    },
  });
  const joined = spec(true, '/run/netns/x');
  assert.deepEqual(takeOutsideSettings(joined), {
    oomScoreAdj: 5,
    network: { path: '/run/netns/x', sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' } },
  });
  assert.deepEqual(joined.linux?.sysctl, { 'kernel.msgmax': '8192' });
  assert.equal(joined.process?.oomScoreAdj, undefined);
  const owned = spec(true);
  assert.deepEqual(takeOutsideSettings(owned), { oomScoreAdj: 5 });
  assert.equal(Object.keys(owned.linux?.sysctl ?? {}).length, 2);
  const plain = spec(false, '/run/netns/x');
  assert.deepEqual(takeOutsideSettings(plain), {});
  assert.equal(plain.process?.oomScoreAdj, 5);
});

test('BERTH_USERNS_IDMAP: off forces shifted copies, unset or auto probes, anything else is refused', () => {
  assert.equal(idmapSetting(undefined), 'auto');
  assert.equal(idmapSetting(''), 'auto');
  assert.equal(idmapSetting('auto'), 'auto');
  assert.equal(idmapSetting('off'), 'off');
  assert.throws(() => idmapSetting('no'), /BERTH_USERNS_IDMAP: expected "off" or "auto", got "no"/);
});

test('layersInUse: the layers of images and every layer below a writable snapshot', async () => {
  const snapshots: SnapshotInfo[] = [
    { name: 'image-top', kind: 'committed', parent: 'base' },
    { name: 'base', kind: 'committed' },
    { name: 'removed-image-top', kind: 'committed', parent: 'removed-image-base' },
    { name: 'removed-image-base', kind: 'committed' },
    { name: 'container', kind: 'active', parent: 'removed-image-top' },
    { name: 'unused-top', kind: 'committed', parent: 'base' },
  ].map((info) => ({ ...info, created: '', updated: '' }) as SnapshotInfo);
  const snapshotter = {
    walk: async (fn: (info: SnapshotInfo) => void) => snapshots.forEach(fn),
  } as unknown as Snapshotter;
  const images = {
    images: { chainIdsInUse: async () => new Set(['base', 'image-top']) },
  } as unknown as ImageService;
  assert.deepEqual([...(await layersInUse(images, snapshotter))].sort(), [
    'base',
    'image-top',
    'removed-image-base',
    'removed-image-top',
  ]);
});
