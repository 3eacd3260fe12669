import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mutex, SharedLock } from '../../../src/image/store/lock.js';

/** A promise and the function that settles it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

test('the mutex runs tasks one at a time in call order, past failures', async () => {
  const mutex = new Mutex();
  const log: string[] = [];
  const first = gate();
  const a = mutex.run(async () => {
    log.push('a start');
    await first.promise;
    log.push('a end');
  });
  const b = mutex.run(async () => {
    log.push('b');
    throw new Error('b failed');
  });
  const c = mutex.run(async () => {
    log.push('c');
    return 3;
  });
  first.open();
  await a;
  await assert.rejects(b, /b failed/);
  assert.equal(await c, 3);
  assert.deepEqual(log, ['a start', 'a end', 'b', 'c']);
});

test('an exclusive holder waits for shared holders, and shared ones queue behind a waiting exclusive', async () => {
  const lock = new SharedLock();
  const log: string[] = [];
  const reader = gate();
  const first = lock.withShared(async () => {
    log.push('shared 1 start');
    await reader.promise;
    log.push('shared 1 end');
  });
  const exclusive = lock.withExclusive(async () => {
    log.push('exclusive');
  });
  const second = lock.withShared(async () => {
    log.push('shared 2');
  });
  const held = lock.holdShared();
  reader.open();
  await Promise.all([first, exclusive, second]);
  (await held)();
  assert.deepEqual(log, ['shared 1 start', 'shared 1 end', 'exclusive', 'shared 2']);

  // A released hold lets an exclusive holder in; releasing twice is harmless.
  const release = await lock.holdShared();
  let ran = false;
  const gc = lock.withExclusive(async () => {
    ran = true;
  });
  release();
  release();
  await gc;
  assert.equal(ran, true);
});
