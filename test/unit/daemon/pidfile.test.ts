import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import { removePidFile, writePidFile } from '../../../src/daemon/pidfile.js';

test('the PID file is written, replaced when stale, and removed only by its owner', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-pid-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'berthd.pid');
  await writePidFile(path);
  assert.equal(await readFile(path, 'utf8'), String(process.pid));
  // A dead process's file is taken over.
  const dead = spawn(process.execPath, ['-e', '0']);
  await once(dead, 'exit');
  await writeFile(path, String(dead.pid));
  await writePidFile(path);
  assert.equal(await readFile(path, 'utf8'), String(process.pid));
  // A live process that is not berthd does not count (a recycled pid).
  await writeFile(path, '1');
  await writePidFile(path);
  assert.equal(await readFile(path, 'utf8'), String(process.pid));
  // Someone else's file stays.
  await writeFile(path, '1');
  await removePidFile(path);
  assert.equal(await readFile(path, 'utf8'), '1');
  await writeFile(path, String(process.pid));
  await removePidFile(path);
  await assert.rejects(readFile(path), { code: 'ENOENT' });
});

test('a running berthd keeps its PID file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-pid-'));
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'berthd'], { stdio: 'ignore' });
  t.after(async () => {
    other.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  const path = join(dir, 'berthd.pid');
  await writeFile(path, String(other.pid));
  await assert.rejects(
    writePidFile(path),
    (err: unknown) =>
      err instanceof BerthError &&
      err.kind === 'conflict' &&
      err.message ===
        `pid file found, ensure berthd is not running or delete ${path} (berthd ${other.pid} holds it)`,
  );
});
