/**
 * The soak of issue 8 ("Load and resource abuse"), short: bench/soak.ts's mixed workload for a
 * fixed number of iterations against a sandboxed berthd, then every count of what berthd holds
 * or made (fds, listeners, handles, processes, mounts, namespaces, cgroups, veths, bridges,
 * nftables objects, state directories, images, blobs, data-root files) must be back at its
 * baseline exactly, berthd's memory after a full GC within its bound (bench/soak-measure.ts),
 * and no command may have failed. bench/soak.ts is the 10-minute run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSandbox } from '../helpers/sandbox.js';
import { startSoakTarget } from '../../bench/soak-target.js';
import { SoakWorkload } from '../../bench/soak-workload.js';
import { compare, measure, settle, table } from '../../bench/soak-measure.js';

const ITERATIONS = 8;
/** Seconds of idle sampling for each side of the comparison. */
const WINDOW = 8;

test('a mixed workload leaves berthd and the host as they were', async (t) => {
  const sandbox = await createSandbox(t);
  const target = await startSoakTarget(t, sandbox);
  const workload = new SoakWorkload(target);
  await workload.start();
  t.after(() => workload.stop());

  // Warm-up: the build cache, the spare shim and the default network exist from here on.
  await workload.iteration(0);
  await workload.quiesce();
  const before = await settle(target, workload.owned, WINDOW);

  // The figures see a container's objects: one that publishes a port, while it runs.
  const probe = await target.docker([
    'run',
    '-d',
    '--cgroup-parent',
    target.cgroupParent,
    '-p',
    '127.0.0.1::80',
    'busybox',
    'sleep',
    '600',
  ]);
  assert.equal(probe.code, 0, probe.stderr);
  const running = await measure(target, workload.owned);
  for (const key of [
    'processes',
    'shims',
    'mounts',
    'netns',
    'cgroups',
    'veths',
    'nftRules',
    'containerDirs',
  ]) {
    assert.ok(
      (running[key] ?? NaN) > (before[key] ?? NaN),
      `${key}: ${running[key]} with a container running`,
    );
  }
  const removed = await target.docker(['rm', '-f', probe.stdout.trim()]);
  assert.equal(removed.code, 0, removed.stderr);

  for (let i = 1; i <= ITERATIONS; i++) await workload.iteration(i);
  await workload.quiesce();
  const after = await settle(target, workload.owned, WINDOW);
  const rows = compare(before, after);
  t.diagnostic(`${workload.counts.containers} containers, ${workload.counts.commands} docker commands`);
  for (const line of table(rows).trimEnd().split('\n')) t.diagnostic(line);

  assert.deepEqual(workload.errors, [], 'no command of the workload failed');
  assert.deepEqual(
    rows.filter((row) => !row.ok),
    [],
    `every count is back at its baseline and memory within its bound:\n${table(rows)}`,
  );
});
