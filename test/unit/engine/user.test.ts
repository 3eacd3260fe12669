import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsMessage, rejectsMessage } from './assert-message.js';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileInRoot, resolveUser, resolveUserFromFiles } from '../../../src/engine/user.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'user:x:1000:1000:user:/home/user:/bin/sh',
  'web:x:33:33::/var/www:/bin/false',
  '',
].join('\n');
const GROUP = [
  'root:x:0:',
  'daemon:x:1:',
  'staff:x:50:user,web',
  'user:x:1000:',
  'audio:x:29:user',
  'www-data:x:33:',
  '',
].join('\n');

// [spec, groupAdd, expected uid, gid, additional gids] or an error: moby/sys/user GetExecUser plus
// Docker's getUser (primary gid first in the additional gids).
const cases: Array<[string, string[], [number, number, number[]] | RegExp]> = [
  ['', [], [0, 0, [0]]],
  ['root', [], [0, 0, [0]]],
  ['user', [], [1000, 1000, [1000, 50, 29]]],
  ['1000', [], [1000, 1000, [1000, 50, 29]]],
  ['user:staff', [], [1000, 50, [50]]],
  ['user:29', [], [1000, 29, [29]]],
  ['1000:1000', [], [1000, 1000, [1000]]],
  ['1000:4242', [], [1000, 4242, [4242]]],
  ['4242', [], [4242, 0, [0]]],
  ['4242:33', [], [4242, 33, [33]]],
  ['4242:www-data', [], [4242, 33, [33]]],
  ['web', ['audio', '1000', '777'], [33, 33, [33, 50, 29, 1000, 777]]],
  ['root', ['root'], [0, 0, [0]]],
  ['nobody', [], /^unable to find user nobody: no matching entries in passwd file$/],
  ['user:nogroup', [], /^unable to find group nogroup: no matching entries in group file$/],
  ['user', ['nogroup'], /^Unable to find group nogroup: no matching entries in group file$/],
  ['2147483648', [], /uids and gids must be in range 0-2147483647/],
  ['1000:-1', [], /uids and gids must be in range 0-2147483647/],
  ['user', ['2147483648'], /uids and gids must be in range 0-2147483647/],
];

for (const [spec, groupAdd, expected] of cases) {
  test(`user ${JSON.stringify(spec)} with --group-add ${JSON.stringify(groupAdd)}`, () => {
    if (expected instanceof RegExp) {
      throwsMessage(() => resolveUserFromFiles(PASSWD, GROUP, spec, groupAdd), expected);
      return;
    }
    const [uid, gid, additionalGids] = expected;
    assert.deepEqual(resolveUserFromFiles(PASSWD, GROUP, spec, groupAdd), { uid, gid, additionalGids });
  });
}

test('without /etc/passwd and /etc/group: numbers work, names do not', () => {
  assert.deepEqual(resolveUserFromFiles(undefined, undefined, '', []), {
    uid: 0,
    gid: 0,
    additionalGids: [0],
  });
  assert.deepEqual(resolveUserFromFiles(undefined, undefined, '1000:1000', ['5']), {
    uid: 1000,
    gid: 1000,
    additionalGids: [1000, 5],
  });
  throwsMessage(() => resolveUserFromFiles(undefined, undefined, 'user', []), /unable to find user user/);
});

async function rootfs(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-user-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'rootfs', 'etc'), { recursive: true });
  return join(dir, 'rootfs');
}

test('resolveUser reads the rootfs files', async (t) => {
  const root = await rootfs(t);
  await writeFile(join(root, 'etc', 'passwd'), PASSWD);
  await writeFile(join(root, 'etc', 'group'), GROUP);
  assert.deepEqual(await resolveUser(root, 'user', ['1000']), {
    uid: 1000,
    gid: 1000,
    additionalGids: [1000, 50, 29],
  });
});

test('resolveUser follows symlinks inside the rootfs, absolute ones from its root', async (t) => {
  const root = await rootfs(t);
  await mkdir(join(root, 'usr', 'lib'), { recursive: true });
  await writeFile(join(root, 'usr', 'lib', 'passwd'), 'app:x:77:88::/:/bin/sh\n');
  await symlink('/usr/lib/passwd', join(root, 'etc', 'passwd'));
  await symlink('../usr/lib/../lib/passwd-missing', join(root, 'etc', 'group'));
  assert.deepEqual(await resolveUser(root, 'app', []), { uid: 77, gid: 88, additionalGids: [88] });
});

test('a symlink pointing out of the rootfs is read inside it, never on the host', async (t) => {
  const root = await rootfs(t);
  const outside = join(root, '..', 'host-secret');
  await writeFile(outside, 'secret:x:5:5::/:/bin/sh\n');
  // Absolute and relative escapes: both resolve below the rootfs, where nothing exists.
  await symlink(outside, join(root, 'etc', 'passwd'));
  await symlink('../../../../../host-secret', join(root, 'etc', 'group'));
  assert.equal(await readFileInRoot(root, '/etc/passwd'), undefined);
  assert.equal(await readFileInRoot(root, '/etc/group'), undefined);
  await rejectsMessage(resolveUser(root, 'secret', []), /unable to find user secret/);
  // The same link target inside the rootfs is what gets read.
  await mkdir(join(root, root, '..'), { recursive: true });
  await writeFile(join(root, outside), 'inner:x:6:6::/:/bin/sh\n');
  assert.equal(await readFileInRoot(root, '/etc/passwd'), 'inner:x:6:6::/:/bin/sh\n');
});

test('an /etc directory symlinked to the host is not followed out', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-user-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const root = join(dir, 'rootfs');
  await mkdir(root);
  await mkdir(join(dir, 'hostetc'));
  await writeFile(join(dir, 'hostetc', 'passwd'), 'host:x:9:9::/:/bin/sh\n');
  await symlink(join(dir, 'hostetc'), join(root, 'etc'));
  assert.equal(await readFileInRoot(root, '/etc/passwd'), undefined);
});

test('symlink loops and non-files are errors', async (t) => {
  const root = await rootfs(t);
  await symlink('/etc/group', join(root, 'etc', 'passwd'));
  await symlink('/etc/passwd', join(root, 'etc', 'group'));
  await rejectsMessage(readFileInRoot(root, '/etc/passwd'), /too many levels of symbolic links/);
  await rm(join(root, 'etc', 'passwd'));
  await mkdir(join(root, 'etc', 'passwd'));
  await rejectsMessage(readFileInRoot(root, '/etc/passwd'), /not a regular file/);
});
