/**
 * Leaks after a crash under load: 20 running containers, berthd killed with SIGKILL, a new
 * berthd removes them all; then nothing of theirs may remain: no mount, cgroup, network
 * namespace, veth, nftables rule or process beyond what the daemon had before the containers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CGROUP_ROOT, createSandbox, listMounts, type Sandbox } from '../helpers/sandbox.js';
import { docker, firewallTable, startBerthd } from '../helpers/berthd.js';
import { execProgram } from '../helpers/exec.js';
import { ensureFixture } from '../../fixtures/index.js';

const CONTAINERS = 20;

/** Every cgroup directory below the sandbox's parent, in every hierarchy. */
async function cgroupsBelow(sandbox: Sandbox): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory()) continue;
      found.push(join(dir, entry.name));
      await walk(join(dir, entry.name));
    }
  };
  for (const hierarchy of await readdir(CGROUP_ROOT))
    await walk(join(CGROUP_ROOT, hierarchy, sandbox.cgroupParent));
  return found.sort();
}

/** Processes other than berthd and its helpers that belong to the sandbox. */
async function sandboxProcesses(sandbox: Sandbox, daemonPid: number): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === daemonPid || Number(entry) === process.pid) continue;
    const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    if (new RegExp(`^PPid:\\s+${daemonPid}$`, 'm').test(status) && /^Name:\s+berth-netlink$/m.test(status))
      continue;
    const root = await readlink(`/proc/${entry}/root`).catch(() => '');
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).replace(/\0/g, ' ');
    const cgroup = await readFile(`/proc/${entry}/cgroup`, 'utf8').catch(() => '');
    if (
      root.startsWith(sandbox.root) ||
      cmdline.includes(sandbox.root) ||
      cgroup.includes(sandbox.cgroupParent)
    )
      found.push(`${entry} ${cmdline.trim()}`);
  }
  return found;
}

interface Snapshot {
  mounts: string[];
  cgroups: string[];
  netns: string[];
  veths: string[];
  rules: number;
}

async function snapshot(sandbox: Sandbox): Promise<Snapshot> {
  const mounts = (await listMounts()).map((m) => m.mountPoint).filter((p) => p.startsWith(sandbox.root));
  const netns = (await execProgram('ip', ['netns', 'list'])).stdout
    .split('\n')
    .filter((line) => line.includes(sandbox.id));
  const veths = (await execProgram('ip', ['-o', 'link', 'show', 'master', sandbox.name('br')])).stdout
    .split('\n')
    .filter(Boolean);
  const table = await execProgram('nft', ['-a', 'list', 'table', 'inet', firewallTable(sandbox)]);
  const rules = table.stdout
    .split('\n')
    .filter((line) => /# handle \d+$/.test(line) && !/^\s*(table|chain)/.test(line.trim()));
  return { mounts: mounts.sort(), cgroups: await cgroupsBelow(sandbox), netns, veths, rules: rules.length };
}

test('20 containers, berthd SIGKILLed, a new berthd removes them: nothing leaks', async (t) => {
  const sandbox = await createSandbox(t);
  const busybox = await ensureFixture('busybox');
  const first = await startBerthd(t, sandbox);
  const run = (host: string, args: string[]): ReturnType<typeof docker> => docker(sandbox, host, args);
  const loaded = await run(first.dockerHost, ['load', '-i', busybox.dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);
  const before = await snapshot(sandbox);

  for (let i = 0; i < CONTAINERS; i++) {
    const started = await run(first.dockerHost, [
      'run',
      '-d',
      '--cgroup-parent',
      sandbox.cgroupParent,
      '-v',
      `leak-${i}:/data`,
      'busybox',
      'sleep',
      '1000',
    ]);
    assert.equal(started.code, 0, started.stderr);
  }
  const loadedState = await snapshot(sandbox);
  assert.ok(loadedState.cgroups.length >= CONTAINERS, 'the containers have cgroups');
  assert.ok(loadedState.mounts.length > before.mounts.length, 'the containers have mounts');
  assert.ok(loadedState.veths.length >= CONTAINERS, 'the containers have veths on the bridge');

  assert.deepEqual(await first.stop('SIGKILL'), { code: null, signal: 'SIGKILL' });
  const second = await startBerthd(t, sandbox);
  const ids = (await run(second.dockerHost, ['ps', '-aq'])).stdout.split('\n').filter(Boolean);
  assert.equal(ids.length, CONTAINERS, 'the new berthd found every container');
  const removed = await run(second.dockerHost, ['rm', '-f', '-v', ...ids]);
  assert.equal(removed.code, 0, removed.stderr);
  const volumes = await run(second.dockerHost, ['volume', 'prune', '-a', '-f']);
  assert.equal(volumes.code, 0, volumes.stderr);

  const after = await snapshot(sandbox);
  assert.deepEqual(
    after,
    before,
    'mounts, cgroups, netns, veths and nft rules are back to where they started',
  );
  assert.deepEqual(
    await sandboxProcesses(sandbox, second.child.pid ?? 0),
    [],
    'no container process is left',
  );
});
