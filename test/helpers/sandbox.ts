/**
 * Every integration test gets a sandbox: its own temporary data root and run root, a unique id
 * to name what it creates, and a cleanup that removes every mount, process, network namespace,
 * link, cgroup and nftables table the test made — tracked ones and any found by the id —
 * also when the test fails.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, readlink, rm, rmdir, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { execProgram } from './exec.js';

export const CGROUP_ROOT = '/sys/fs/cgroup';

export interface Sandbox {
  /** Short unique id (letters and digits) used in every name the test creates. */
  id: string;
  root: string;
  dataRoot: string;
  runRoot: string;
  /** A name for a link or network namespace, at most 15 characters, that the sweep recognises. */
  name(suffix: string): string;
  /** The parent cgroup (relative to each hierarchy) under which the test must place its cgroups. */
  cgroupParent: string;
  trackMount(path: string): void;
  trackProcess(pid: number): void;
  trackNetns(name: string): void;
  trackLink(name: string): void;
  trackCgroup(absolutePath: string): void;
  trackNftTable(family: string, name: string): void;
  cleanup(): Promise<void>;
}

interface MountInfo {
  mountPoint: string;
}

/** Mount points from /proc/self/mountinfo, with octal escapes decoded. */
export async function listMounts(): Promise<MountInfo[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => ({
      mountPoint: (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, oct: string) =>
        String.fromCharCode(parseInt(oct, 8)),
      ),
    }));
}

const isUnder = (path: string, root: string): boolean => path === root || path.startsWith(root + '/');

async function processesRootedUnder(root: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const procRoot = await readlink(`/proc/${entry}/root`).catch(() => '');
    const cwd = await readlink(`/proc/${entry}/cwd`).catch(() => '');
    if ((procRoot !== '' && isUnder(procRoot, root)) || (cwd !== '' && isUnder(cwd, root)))
      pids.push(Number(entry));
  }
  return pids.filter((pid) => pid !== process.pid);
}

/** Remove a cgroup directory tree bottom-up, killing what is left inside first. */
async function removeCgroupTree(path: string): Promise<void> {
  const children = await readdir(path, { withFileTypes: true }).catch(() => []);
  for (const child of children) if (child.isDirectory()) await removeCgroupTree(join(path, child.name));
  const procs = await readFile(join(path, 'cgroup.procs'), 'utf8').catch(() => '');
  for (const pid of procs.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // already gone
    }
  }
  // Thaw a frozen v1 cgroup so its processes can die.
  await writeFile(join(path, 'freezer.state'), 'THAWED').catch(() => undefined);
  await writeFile(join(path, 'cgroup.freeze'), '0').catch(() => undefined);
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await rmdir(path);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY') throw err;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  throw new Error(`cgroup ${path} stays busy`);
}

export async function createSandbox(t?: TestContext): Promise<Sandbox> {
  const id = randomBytes(4).toString('hex');
  const root = await mkdtemp(join(tmpdir(), `berth-test-${id}-`));
  const dataRoot = join(root, 'data');
  const runRoot = join(root, 'run');
  await mkdir(dataRoot);
  await mkdir(runRoot);
  const mounts = new Set<string>();
  const pids = new Set<number>();
  const netns = new Set<string>();
  const links = new Set<string>();
  const cgroups = new Set<string>();
  const nftTables = new Set<string>();
  const prefix = `bt${id}`; // 10 characters, leaves 5 for the suffix
  const cgroupParent = `berth-test-${id}`;
  let cleaned = false;

  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    const problems: string[] = [];
    const attempt = async (what: string, action: () => Promise<unknown>): Promise<void> => {
      try {
        await action();
      } catch (err) {
        problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      }
    };

    // Processes first: they hold mounts, namespaces and cgroups.
    const victims = new Set([...pids, ...(await processesRootedUnder(root))]);
    for (const pid of victims) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }

    // Mounts under the root and tracked mounts, deepest first, detached.
    const mountPoints = (await listMounts())
      .map((m) => m.mountPoint)
      .filter((point) => isUnder(point, root) || mounts.has(point));
    for (const point of [...new Set(mountPoints)].sort((a, b) => b.length - a.length)) {
      await attempt(`umount ${point}`, async () => {
        const result = await execProgram('umount', ['-l', point]);
        if (result.code !== 0 && !/not mounted|no mount point/i.test(result.stderr))
          throw new Error(result.stderr.trim());
      });
    }

    // Network namespaces and links, tracked or named with the prefix.
    const netnsList = await execProgram('ip', ['netns', 'list']).catch(() => ({ stdout: '' }));
    for (const line of netnsList.stdout.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      if (name.startsWith(prefix)) netns.add(name);
    }
    for (const name of netns) {
      await attempt(`netns ${name}`, async () => {
        const result = await execProgram('ip', ['netns', 'delete', name]);
        if (result.code !== 0 && !/No such file/i.test(result.stderr)) throw new Error(result.stderr.trim());
      });
    }
    // Bridges of networks a berthd created with this sandbox's data root.
    for (const id of await readdir(join(dataRoot, 'networks')).catch(() => [] as string[])) {
      const record = await readFile(join(dataRoot, 'networks', id, 'network.json'), 'utf8').catch(() => '');
      const bridge = /"bridge":\s*"([^"]+)"/.exec(record)?.[1];
      if (bridge) links.add(bridge);
    }
    const linkList = await execProgram('ip', ['-o', 'link', 'show']).catch(() => ({ stdout: '' }));
    for (const line of linkList.stdout.split('\n')) {
      const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
      if (name?.startsWith(prefix)) links.add(name);
    }
    for (const name of links) {
      await attempt(`link ${name}`, async () => {
        const result = await execProgram('ip', ['link', 'delete', name]);
        if (result.code !== 0 && !/Cannot find device/i.test(result.stderr))
          throw new Error(result.stderr.trim());
      });
    }

    // nftables tables, tracked or named with the prefix.
    const tableList = await execProgram('nft', ['list', 'tables']).catch(() => ({ stdout: '' }));
    for (const line of tableList.stdout.split('\n')) {
      const match = /^table (\S+) (\S+)/.exec(line.trim());
      if (match?.[2]?.includes(id)) nftTables.add(`${match[1]} ${match[2]}`);
    }
    for (const table of nftTables) {
      const [family = '', name = ''] = table.split(' ');
      await attempt(`nft table ${table}`, async () => {
        const result = await execProgram('nft', ['delete', 'table', family, name]);
        if (result.code !== 0 && !/No such file/i.test(result.stderr)) throw new Error(result.stderr.trim());
      });
    }

    // cgroups: tracked ones and the sandbox's parent in every hierarchy.
    const hierarchies = await readdir(CGROUP_ROOT).catch(() => [] as string[]);
    for (const hierarchy of ['', ...hierarchies]) cgroups.add(join(CGROUP_ROOT, hierarchy, cgroupParent));
    for (const path of [...cgroups].sort((a, b) => b.length - a.length)) {
      await attempt(`cgroup ${path}`, () => removeCgroupTree(path));
    }

    // The directory last, and only when nothing is mounted below it any more: removing a tree
    // with a bind mount of the host inside would delete host files.
    const leftover = (await listMounts()).filter((m) => isUnder(m.mountPoint, root));
    if (leftover.length > 0) {
      problems.push(`not removing ${root}: still mounted: ${leftover.map((m) => m.mountPoint).join(', ')}`);
    } else {
      await attempt(`remove ${root}`, () => rm(root, { recursive: true, force: true }));
    }
    if (problems.length > 0) throw new Error(`sandbox cleanup incomplete:\n  ${problems.join('\n  ')}`);
  };

  const sandbox: Sandbox = {
    id,
    root,
    dataRoot,
    runRoot,
    cgroupParent,
    name: (suffix) => {
      const name = `${prefix}${suffix}`;
      if (name.length > 15) throw new Error(`name ${name} is longer than the kernel's 15 characters`);
      return name;
    },
    trackMount: (path) => mounts.add(path),
    trackProcess: (pid) => pids.add(pid),
    trackNetns: (name) => netns.add(name),
    trackLink: (name) => links.add(name),
    trackCgroup: (path) => cgroups.add(path),
    trackNftTable: (family, name) => nftTables.add(`${family} ${name}`),
    cleanup,
  };
  t?.after(cleanup);
  return sandbox;
}

/** True when the tests run as root (integration tests need it). */
export const isRoot = (): boolean => process.getuid?.() === 0;
