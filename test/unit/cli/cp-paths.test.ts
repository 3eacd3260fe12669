import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CopyError,
  getRebaseName,
  goBase,
  goClean,
  goDir,
  goJoin,
  prepareArchiveCopy,
  preserveTrailingDotOrSeparator,
  rebaseName,
  splitPathDirEntry,
} from '../../../src/cli/commands/cp-paths.js';

test('Go path semantics: Clean, Base, Dir, Join', () => {
  assert.deepEqual(['', '/', 'a/', 'a/./b/', '//a', 'a/..'].map(goClean), ['.', '/', 'a', 'a/b', '/a', '.']);
  assert.deepEqual(['', '/', '/etc/', 'etc', 'dir/.'].map(goBase), ['.', '/', 'etc', 'etc', '.']);
  assert.deepEqual(['/etc', 'etc', '/', '/a/b/'].map(goDir), ['/', '.', '/', '/a/b']);
  assert.equal(goJoin('/out', '/'), '/out');
  assert.equal(goJoin('/out', '/bin/busybox'), '/out/bin/busybox');
  assert.equal(goJoin('/out', '../x'), '/x');
});

test('docker cp path rules: split, trailing separators, rebase names', () => {
  assert.deepEqual(splitPathDirEntry('/'), { dir: '/', base: '/' });
  assert.deepEqual(splitPathDirEntry('/etc/'), { dir: '/', base: 'etc' });
  assert.deepEqual(splitPathDirEntry('/etc/.'), { dir: '/etc', base: '.' });
  assert.equal(preserveTrailingDotOrSeparator('/abs/dir', 'dir/'), '/abs/dir/');
  assert.equal(preserveTrailingDotOrSeparator('/abs/dir', 'dir/.'), '/abs/dir/.');
  assert.equal(preserveTrailingDotOrSeparator('/', './'), '/./');
  assert.deepEqual(getRebaseName('/link', '/target'), { path: '/target', rebaseName: 'link' });
  assert.deepEqual(getRebaseName('/link/', '/target'), { path: '/target/', rebaseName: 'link' });
  assert.deepEqual(getRebaseName('/same/.', '/other/same'), { path: '/other/same/.', rebaseName: '' });
  // The container's root is a prefix: `/etc` of `ctr:/` becomes `out/etc`.
  assert.equal(rebaseName('/', '/', 'out'), 'out/');
  assert.equal(rebaseName('/etc/passwd', '/', 'out'), 'out/etc/passwd');
  assert.equal(rebaseName('etc/passwd', 'etc', 'conf'), 'conf/passwd');
  assert.equal(rebaseName('./a', '.', 'new'), 'new/a');
});

test('docker cp destinations: into a directory, as a new name, or refused', () => {
  const dir = { path: '/work/ex', exists: true, isDir: true };
  const file = { path: '/work/file', exists: true, isDir: false };
  const missing = (path: string): { path: string; exists: boolean; isDir: boolean } => ({
    path,
    exists: false,
    isDir: false,
  });
  assert.deepEqual(prepareArchiveCopy({ path: '/', isDir: true }, dir), { dir: '/work/ex' });
  assert.deepEqual(prepareArchiveCopy({ path: '/', isDir: true }, missing('/work/out')), {
    dir: '/work',
    rename: { from: '/', to: 'out' },
  });
  assert.deepEqual(prepareArchiveCopy({ path: '/etc/.', isDir: true }, missing('/work/out/')), {
    dir: '/work',
    rename: { from: '.', to: 'out' },
  });
  assert.deepEqual(prepareArchiveCopy({ path: '/etc/hosts', isDir: false }, file), {
    dir: '/work',
    rename: { from: 'hosts', to: 'file' },
  });
  assert.deepEqual(
    prepareArchiveCopy({ path: '/data/a.txt', isDir: false, rebaseName: 'link' }, missing('/work/out')),
    { dir: '/work', rename: { from: 'link', to: 'out' } },
  );
  assert.throws(
    () => prepareArchiveCopy({ path: '/etc', isDir: true }, file),
    new CopyError('cannot copy directory'),
  );
  assert.throws(
    () => prepareArchiveCopy({ path: '/etc/hosts', isDir: false }, missing('/work/out/')),
    new CopyError('no such directory'),
  );
});
