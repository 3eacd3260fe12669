import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanUpSteps, StepRecords } from '../../../src/build/step-records.js';
import type { CgroupFactory, CgroupHandle, Runtime } from '../../../src/runtime/runtime.js';

test('step records: noted, listed, and what they name removed after a crash', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-steps-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const records = new StepRecords(join(dir, 'steps'));
  assert.deepEqual(await records.list(), []);
  await records.add({ id: 'a1', cgroupsPath: '/parent/a1' });
  await records.add({ id: 'b2', cgroupsPath: '/parent/b2' });
  await records.remove('b2');
  // A record the crash cut short names nothing.
  await writeFile(join(dir, 'steps', 'c3.json'), '{"id":"c3","cgr');
  assert.deepEqual(await records.list(), [{ id: 'a1', cgroupsPath: '/parent/a1' }]);

  const calls: string[] = [];
  const runtime = {
    delete: async (id: string) => {
      calls.push(`runtime delete ${id}`);
      throw new Error(`container ${id} does not exist`);
    },
    store: { remove: async (id: string) => void calls.push(`state remove ${id}`) },
  } as unknown as Runtime;
  const cgroups: CgroupFactory = async (path, id) => {
    calls.push(`cgroup ${path} ${id}`);
    return {
      pids: async () => [],
      destroy: async () => void calls.push(`cgroup destroy ${path}`),
    } as unknown as CgroupHandle;
  };
  const warnings: string[] = [];
  await cleanUpSteps(records, runtime, cgroups, (message) => warnings.push(message));
  assert.deepEqual(calls, [
    'runtime delete a1',
    'cgroup /parent/a1 a1',
    'cgroup destroy /parent/a1',
    'state remove a1',
  ]);
  assert.deepEqual(warnings, []);
  assert.deepEqual(await readdir(join(dir, 'steps')), ['c3.json']);
});

test('step records: a cgroup that cannot go is reported and its record kept for the next start', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-steps-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const records = new StepRecords(dir);
  await records.add({ id: 'stuck', cgroupsPath: '/parent/stuck' });
  const runtime = {
    delete: async () => undefined,
    store: { remove: async () => undefined },
  } as unknown as Runtime;
  const cgroups: CgroupFactory = async () =>
    ({
      pids: async () => [],
      destroy: async () => {
        throw new Error('cannot remove cgroup /parent/stuck: it still has processes');
      },
    }) as unknown as CgroupHandle;
  const warnings: string[] = [];
  await cleanUpSteps(records, runtime, cgroups, (message) => warnings.push(message));
  assert.deepEqual(warnings, [
    'build step stuck: cannot remove cgroup /parent/stuck: it still has processes',
  ]);
  assert.deepEqual(await records.list(), [{ id: 'stuck', cgroupsPath: '/parent/stuck' }]);
});
