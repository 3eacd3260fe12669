import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultRuntimeOptions } from '../../../src/runtime/default-runtime.js';
import { Runtime } from '../../../src/runtime/runtime.js';

test('a reservation left by a create that was cut short goes with a forced delete only', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-runtime-reservation-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const runtime = new Runtime(defaultRuntimeOptions(root, false, false));
  // What a caller killed between reserving the id and saving the record leaves: the directory.
  await mkdir(join(root, 'cut-short'), { mode: 0o711 });
  await assert.rejects(runtime.delete('cut-short'), { kind: 'not-found' });
  assert.ok(existsSync(join(root, 'cut-short')), 'kept without force');
  await runtime.delete('cut-short', true);
  assert.equal(existsSync(join(root, 'cut-short')), false);
  // An id that was never there is still not found, forced or not.
  await assert.rejects(runtime.delete('never', true), { kind: 'not-found' });
});
