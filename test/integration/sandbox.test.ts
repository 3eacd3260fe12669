import { test } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, listMounts } from '../helpers/sandbox.js';
import { makeEveryResource, type MadeResources } from '../helpers/resources.js';
import { execOk, execProgram } from '../helpers/exec.js';

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

async function assertAllGone(root: string, made: MadeResources): Promise<void> {
  assert.equal(await exists(root), false, 'sandbox directory removed');
  const mounts = await listMounts();
  assert.ok(!mounts.some((m) => m.mountPoint.startsWith(root)), 'no mount left under the sandbox');
  assert.doesNotMatch(await execOk('ip', ['netns', 'list']), new RegExp(`^${made.netns}\\b`, 'm'));
  assert.equal((await execProgram('ip', ['link', 'show', made.link])).code !== 0, true, 'link removed');
  assert.equal(await exists(made.cgroup), false, 'cgroup removed');
  assert.doesNotMatch(await execOk('nft', ['list', 'tables']), new RegExp(made.nftTable));
  assert.equal(await exists(`/proc/${made.pid}`), false, 'process killed');
}

test('cleanup removes every kind of resource the test made', async () => {
  const sandbox = await createSandbox();
  let made: MadeResources | undefined;
  try {
    made = await makeEveryResource(sandbox);
  } finally {
    await sandbox.cleanup();
  }
  // SIGKILL is asynchronous: give the process a moment to be reaped by init.
  for (let i = 0; i < 50 && (await exists(`/proc/${made.pid}`)); i++)
    await new Promise((r) => setTimeout(r, 20));
  await assertAllGone(sandbox.root, made);
});

test('cleanup also runs when the test fails', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-leaky-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const report = join(dir, 'report.json');
  const leaky = fileURLToPath(new URL('../helpers/leaky-test.js', import.meta.url));
  // Without NODE_TEST_CONTEXT the child runs as a test run of its own, not as our subprocess.
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  const result = await execProgram(process.execPath, ['--test', leaky], {
    env: { ...env, BERTH_LEAKY_REPORT: report },
  });
  assert.notEqual(result.code, 0, 'the leaky test fails');
  assert.match(result.stdout, /deliberate failure/);
  const made = JSON.parse(await readFile(report, 'utf8')) as MadeResources & { root: string };
  for (let i = 0; i < 50 && (await exists(`/proc/${made.pid}`)); i++)
    await new Promise((r) => setTimeout(r, 20));
  await assertAllGone(made.root, made);
});
