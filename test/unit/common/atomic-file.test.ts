import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../../../src/common/atomic-file.js';

test('writeFileAtomic replaces content and leaves no temporary file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'sub', 'record.json');
  await writeJsonAtomic(path, { a: 1 });
  await writeFileAtomic(path, 'second', { mode: 0o600 });
  assert.equal(await readFile(path, 'utf8'), 'second');
  assert.deepEqual(await readdir(join(dir, 'sub')), ['record.json']);
  // The mode of the new file is the one asked for (the rename replaced the old inode).
  assert.equal((await stat(path)).mode & 0o777, 0o600 & ~process.umask());
});

test('writeFileAtomic into a missing parent that cannot be created fails without leaving files', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-unit-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFileAtomic(join(dir, 'file'), 'x');
  await assert.rejects(writeFileAtomic(join(dir, 'file', 'child'), 'y'));
  assert.deepEqual(await readdir(dir), ['file']);
});
