import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spreadSubdirectories } from '../../../src/linux/spread-dirs.js';

const run = promisify(execFile);

async function attributes(path: string): Promise<string> {
  const { stdout } = await run('lsattr', ['-d', path]);
  return stdout.split(' ')[0] ?? '';
}

test('an ext4 directory gets the top-of-hierarchy flag; elsewhere nothing changes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-spread-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const ext = (await statfs(dir)).type === 0xef53;
  if (ext) assert.doesNotMatch(await attributes(dir), /T/);
  await spreadSubdirectories(dir);
  if (ext) assert.match(await attributes(dir), /T/);
  // Idempotent, and a relative path is never handed to chattr (it could read as an option).
  await spreadSubdirectories(dir);
  await spreadSubdirectories('-R');
});
