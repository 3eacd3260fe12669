/**
 * What a berthd killed while the runtime creates a RUN step's container leaves behind (issue 8's
 * crash loop found it): the step's cgroup, made before the runtime writes its state file, perhaps
 * with the container's init in it, and the runtime's reserved state directory. The step's record
 * (build/step-records.ts) names them, so the next berthd removes exactly those — and leaves a
 * cgroup no record names (another daemon's) alone. The crash window itself is too short to hit
 * on purpose; the leftovers are laid out here as the crash leaves them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cgroupManager } from '../../src/linux/cgroups/index.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { defaultRuntimeOptions } from '../../src/runtime/default-runtime.js';
import { createSandbox } from '../helpers/sandbox.js';
import { berthdArgs, startBerthd } from '../helpers/berthd.js';

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

test('berthd start removes the cgroup and state of a step container a crash left half created', async (t) => {
  const sandbox = await createSandbox(t);
  const { execRoot } = await berthdArgs(sandbox);
  const stepId = 'a'.repeat(64);
  const otherId = 'b'.repeat(64);
  const step = await cgroupManager(`/${sandbox.cgroupParent}/${stepId}`, stepId);
  const other = await cgroupManager(`/${sandbox.cgroupParent}/${otherId}`, otherId);
  await step.create();
  await other.create();

  // The container's init, waiting in the step's cgroup.
  const init = spawn('sleep', ['600'], { stdio: 'ignore' });
  await once(init, 'spawn');
  const pid = init.pid as number;
  sandbox.trackProcess(pid);
  t.after(() => void init.kill('SIGKILL'));
  const exited = once(init, 'exit');
  await step.addProcess(pid);

  // The runtime had reserved its state directory but not written state.json yet.
  const runtime = new Runtime(defaultRuntimeOptions(join(execRoot, 'runtime')));
  const stateDir = await runtime.store.reserve(stepId);
  const records = join(sandbox.dataRoot, 'build-tmp', 'steps');
  await mkdir(records, { recursive: true });
  await writeFile(
    join(records, `${stepId}.json`),
    JSON.stringify({ id: stepId, cgroupsPath: `/${sandbox.cgroupParent}/${stepId}` }),
  );
  assert.ok((await step.pids()).includes(pid));

  await startBerthd(t, sandbox);
  // Recovery runs before berthd answers: the init is killed by now; its exit is reported soon.
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, 10_000).unref());
  await Promise.race([exited, timeout]);
  assert.equal(init.signalCode, 'SIGKILL', 'the init in the step cgroup was killed');
  for (const directory of step.directories) assert.equal(await exists(directory), false, directory);
  for (const directory of other.directories) assert.equal(await exists(directory), true, directory);
  assert.equal(await exists(stateDir), false, 'the reserved state directory');
  assert.equal(await exists(join(records, `${stepId}.json`)), false, 'the record');
});
