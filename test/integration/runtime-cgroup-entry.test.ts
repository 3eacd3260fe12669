/**
 * How init gets into its cgroup (docs/shim-plan.md, "Cgroups"): on v1 it writes "0" to each
 * hierarchy's tasks file itself, alone (a pids limit of 1 admits it); on v2 it is created there
 * with clone3(CLONE_INTO_CGROUP), and an exec into a cgroup namespace moves itself. This host is
 * hybrid: its cgroup2 mount (/sys/fs/cgroup/unified) is real, so the v2 path runs for real too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox, CGROUP_ROOT, type Sandbox } from '../helpers/sandbox.js';
import { makeBundle } from '../helpers/bundle.js';
import { Runtime, type CgroupHandle } from '../../src/runtime/runtime.js';
import { defaultRuntimeOptions } from '../../src/runtime/default-runtime.js';
import { shimPath } from '../../src/runtime/shim-process.js';
import { V2Manager } from '../../src/linux/cgroups/v2.js';
import { shimDeviceAttacher } from '../../src/linux/cgroups/device-attach.js';
import { parseProcCgroup } from '../../src/linux/cgroups/layout.js';

const UNIFIED = join(CGROUP_ROOT, 'unified');

async function cgroupsOf(pid: number): Promise<Record<string, string>> {
  return parseProcCgroup(await readFile(`/proc/${pid}/cgroup`, 'utf8'));
}

function runtimeFor(
  sandbox: Sandbox,
  options: Partial<ReturnType<typeof defaultRuntimeOptions>> = {},
): Runtime {
  return new Runtime({
    ...defaultRuntimeOptions(join(sandbox.runRoot, 'runtime'), false, false),
    ...options,
  });
}

test('cgroup v1: init alone enters every hierarchy, so a pids limit of 1 admits it', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['sleep', '1000'], 'c1');
  bundle.spec.linux!.resources = { ...bundle.spec.linux!.resources, pids: { limit: 1 } };
  await bundle.write();
  const runtime = runtimeFor(sandbox);
  const { record } = await runtime.create('c1', {
    bundle: bundle.dir,
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  t.after(() => runtime.delete('c1', true).catch(() => undefined));
  const own = await cgroupsOf(record.pid);
  for (const controller of ['pids', 'memory', 'devices', 'freezer', 'cpuset', 'name=systemd'])
    assert.equal(own[controller], `/${sandbox.cgroupParent}/c1`, controller);
  await runtime.start('c1');
  const procs = await readFile(join(CGROUP_ROOT, 'pids', sandbox.cgroupParent, 'c1', 'cgroup.procs'), 'utf8');
  assert.deepEqual(procs.trim().split('\n'), [String(record.pid)], 'nobody else ever entered');
});

test('cgroup v2: init is cloned into its cgroup, and an exec into the cgroup namespace moves itself', async (t) => {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['sleep', '1000'], 'c2');
  const path = `/${sandbox.cgroupParent}/c2`;
  const cgroups = async (): Promise<CgroupHandle> => {
    const manager = new V2Manager({
      mount: { mountPoint: UNIFIED, root: '/' },
      cgroupPath: { relative: false, path },
      attachDevices: shimDeviceAttacher(shimPath()),
      controllers: [],
    });
    return {
      path: manager.path,
      entry: manager.entry,
      create: () => manager.create(),
      apply: (resources) => (resources ? manager.apply(resources) : Promise.resolve()),
      freeze: () => manager.freeze(),
      thaw: () => manager.thaw(),
      frozen: async () => (await manager.state()) === 'frozen',
      pids: () => manager.pids(),
      stats: () => manager.stats(),
      oomKillCount: () => manager.oomKillCount(),
      update: (resources) => manager.update(resources),
      destroy: () => manager.destroy(),
    };
  };
  const runtime = runtimeFor(sandbox, { cgroups });
  const { record } = await runtime.create('c2', {
    bundle: bundle.dir,
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  t.after(() => runtime.delete('c2', true).catch(() => undefined));
  assert.equal((await cgroupsOf(record.pid))[''], path);
  await runtime.start('c2');
  const { pid, shim } = await runtime.exec(
    'c2',
    { ...bundle.spec.process!, args: ['sleep', '1000'], terminal: false },
    { detach: false, stdio: ['ignore', 'ignore', 'ignore'] },
  );
  try {
    assert.equal((await cgroupsOf(pid))[''], path, 'the exec moved itself into the cgroup');
    const procs = (await readFile(join(UNIFIED, path, 'cgroup.procs'), 'utf8')).trim().split('\n');
    assert.deepEqual(procs.map(Number).sort(), [record.pid, pid].sort());
  } finally {
    process.kill(pid, 'SIGKILL');
    await shim.exited;
  }
});
