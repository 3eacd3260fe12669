import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsHelper } from '../../../src/archive/fs-helper.js';
import { RefusedEntry, TreeView, cleanEntryPath } from '../../../src/archive/tree-view.js';

test('entry names are cleaned lexically; climbing above the root is refused', () => {
  assert.deepEqual(cleanEntryPath('a/b/c'), ['a', 'b', 'c']);
  assert.deepEqual(cleanEntryPath('/etc/passwd'), ['etc', 'passwd']);
  assert.deepEqual(cleanEntryPath('./a/./b//'), ['a', 'b']);
  assert.deepEqual(cleanEntryPath('a/../b'), ['b']);
  assert.deepEqual(cleanEntryPath('./'), []);
  assert.throws(() => cleanEntryPath('../etc/passwd'), RefusedEntry);
  assert.throws(() => cleanEntryPath('a/../../etc'), RefusedEntry);
  assert.throws(() => cleanEntryPath('/../etc'), RefusedEntry);
  assert.throws(() => cleanEntryPath('a\0b'), RefusedEntry);
});

test('symlinks inside a path resolve inside the root, the final one is never followed', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'berth-resolve-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  await mkdir(join(root, 'usr/lib'), { recursive: true });
  await mkdir(join(root, 'd'), { recursive: true });
  await symlink('/etc', join(root, 'abs'));
  await symlink('../../..', join(root, 'up'));
  await symlink('usr/lib', join(root, 'lib'));
  await symlink('../usr', join(root, 'd/rel'));
  await symlink('loop-b', join(root, 'loop-a'));
  await symlink('loop-a', join(root, 'loop-b'));
  await symlink(join(base, 'outside'), join(root, 'host'));
  await writeFile(join(root, 'usr/lib/file'), '');

  const helper = new FsHelper();
  t.after(() => helper.close());
  const view = new TreeView(root, [], false, helper);
  assert.deepEqual(await view.resolve(['abs', 'passwd'], false), ['etc', 'passwd']);
  assert.deepEqual(await view.resolve(['up', 'etc', 'shadow'], false), ['etc', 'shadow']);
  assert.deepEqual(await view.resolve(['lib', 'x86_64', 'libc.so'], false), [
    'usr',
    'lib',
    'x86_64',
    'libc.so',
  ]);
  assert.deepEqual(await view.resolve(['d', 'rel', 'lib', 'file'], false), ['usr', 'lib', 'file']);
  assert.deepEqual(await view.resolve(['host', 'secret'], false), [
    ...base.split('/').filter(Boolean),
    'outside',
    'secret',
  ]);
  // The final component stays as it is, symlink or not.
  assert.deepEqual(await view.resolve(['abs'], false), ['abs']);
  assert.deepEqual(await view.resolve(['lib'], true), ['usr', 'lib']);
  assert.deepEqual(await view.resolve(['up'], true), []);
  await assert.rejects(view.resolve(['loop-a', 'x'], false), RefusedEntry);
});
