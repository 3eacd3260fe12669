import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants, openSync, writeSync, closeSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForStartByte } from '../../../src/runtime/start-fifo.js';

async function fifo(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-start-fifo-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'exec.fifo');
  execFileSync('mkfifo', ['-m', '0622', path]);
  return path;
}

test('start returns once init has opened the fifo and written its byte', async (t) => {
  const path = await fifo(t);
  const waiting = waitForStartByte(path, 'c1', () => true);
  // What init does: its open blocks until start is a reader, then it writes one byte.
  const writer = await open(path, constants.O_WRONLY);
  await writer.write('0');
  await writer.close();
  await waiting;
});

test('init that ended without writing fails the start with a clear message', async (t) => {
  const path = await fifo(t);
  await assert.rejects(
    waitForStartByte(path, 'c2', () => false),
    /container c2 exited before it was started/,
  );
});

test('a byte written just before init ended still starts the container', async (t) => {
  const path = await fifo(t);
  let alive = true;
  const waiting = waitForStartByte(path, 'c3', () => alive);
  const fd = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  writeSync(fd, '0');
  closeSync(fd);
  alive = false;
  await waiting;
});
