import { mkdir, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Sandbox } from './sandbox.js';
import { CGROUP_ROOT } from './sandbox.js';
import { execOk } from './exec.js';

export interface MadeResources {
  mount: string;
  netns: string;
  link: string;
  cgroup: string;
  nftTable: string;
  pid: number;
}

/**
 * Make one resource of each kind the sandbox must clean up, without telling it about any of them:
 * the sweep has to find them by the sandbox's root and id.
 */
export async function makeEveryResource(sandbox: Sandbox): Promise<MadeResources> {
  const mount = join(sandbox.root, 'mnt');
  await mkdir(mount);
  await execOk('mount', ['-t', 'tmpfs', 'tmpfs', mount]);
  await mkdir(join(mount, 'inner'));
  await execOk('mount', ['-t', 'tmpfs', 'tmpfs', join(mount, 'inner')]);
  const netns = sandbox.name('ns');
  await execOk('ip', ['netns', 'add', netns]);
  const link = sandbox.name('va');
  await execOk('ip', ['link', 'add', link, 'type', 'veth', 'peer', 'name', sandbox.name('vb')]);
  const cgroup = join(CGROUP_ROOT, 'pids', sandbox.cgroupParent, 'child');
  await mkdir(cgroup, { recursive: true });
  const nftTable = `berth-test-${sandbox.id}`;
  await execOk('nft', ['add', 'table', 'inet', nftTable]);
  // A process running inside the sandbox directory and inside the cgroup.
  const child = spawn('sleep', ['600'], { cwd: mount, detached: true, stdio: 'ignore' });
  child.unref();
  const pid = child.pid ?? 0;
  await writeFile(join(cgroup, 'cgroup.procs'), String(pid));
  return { mount, netns, link, cgroup, nftTable, pid };
}
