// Run by sandbox.test.ts as a separate `node --test` process: it makes one resource of every
// kind in a sandbox and then fails, to prove the sandbox cleans up after a failing test.
import { test } from 'node:test';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox } from './sandbox.js';
import { makeEveryResource } from './resources.js';

test('leaks everything, then fails', async (t) => {
  const sandbox = await createSandbox(t);
  const report = process.env.BERTH_LEAKY_REPORT;
  if (report === undefined) throw new Error('BERTH_LEAKY_REPORT is not set');
  await mkdir(join(sandbox.root, 'x'), { recursive: true });
  const made = await makeEveryResource(sandbox);
  await writeFile(report, JSON.stringify({ root: sandbox.root, ...made }));
  throw new Error('deliberate failure');
});
