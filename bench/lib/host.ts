/**
 * Host state the engines touch: links, mounts left under a work directory, the iptables rules
 * and chains dockerd and podman's netavark add (and never remove), ip_forward, and the resident
 * memory of processes.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { execProgram } from '../../test/helpers/exec.js';

export async function linkExists(name: string): Promise<boolean> {
  return (await execProgram('ip', ['link', 'show', 'dev', name])).code === 0;
}

export async function deleteLink(name: string): Promise<void> {
  await execProgram('ip', ['link', 'delete', 'dev', name]);
}

/** Unmount everything mounted at or below `dir`, deepest first (lazily, so busy mounts go too). */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  const points = mounts
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .map((point) => point.replace(/\\040/g, ' '))
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((x, y) => y.length - x.length);
  for (const point of points) await execProgram('umount', ['-l', point]);
}

type Family = 'iptables' | 'ip6tables';

interface TableState {
  chains: Map<string, string>; // chain -> policy ("-" for user chains)
  rules: string[];
}

export interface FirewallSnapshot {
  tables: Record<Family, Map<string, TableState>>;
  ipForward: string;
}

function parseSave(text: string): Map<string, TableState> {
  const tables = new Map<string, TableState>();
  let current: TableState | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      current = { chains: new Map(), rules: [] };
      tables.set(line.slice(1), current);
    } else if (line.startsWith(':') && current) {
      const [chain, policy] = line.slice(1).split(' ');
      if (chain) current.chains.set(chain, policy ?? '-');
    } else if (line.startsWith('-A ') && current) {
      current.rules.push(line);
    }
  }
  return tables;
}

/** Split an iptables-save rule into arguments (it quotes comments with double quotes). */
export function ruleArgs(rule: string): string[] {
  const args: string[] = [];
  const pattern = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let match = pattern.exec(rule); match; match = pattern.exec(rule)) {
    args.push(match[1] !== undefined ? match[1].replace(/\\(.)/g, '$1') : (match[2] ?? ''));
  }
  return args;
}

async function save(family: Family): Promise<Map<string, TableState>> {
  const result = await execProgram(`${family}-save`, []);
  return parseSave(result.code === 0 ? result.stdout : '');
}

export async function snapshotFirewall(): Promise<FirewallSnapshot> {
  return {
    tables: { iptables: await save('iptables'), ip6tables: await save('ip6tables') },
    ipForward: (await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8')).trim(),
  };
}

/**
 * Remove the rules and chains added since `before` that belong to the reference engines
 * (named DOCKER*, NETAVARK*, CNI*, or naming docker0/podman0 or one of the bench subnets), put
 * built-in chain policies back, delete tables that were absent and are now empty, and restore
 * ip_forward. Rules other programs added meanwhile are left alone.
 */
export async function restoreFirewall(before: FirewallSnapshot, subnets: string[]): Promise<void> {
  const prefixes = subnets.map((subnet) => subnet.split('.').slice(0, 2).join('.') + '.');
  const ours = (text: string): boolean =>
    /DOCKER|NETAVARK|CNI-|docker0|podman0/.test(text) || prefixes.some((prefix) => text.includes(prefix));
  for (const family of ['iptables', 'ip6tables'] as const) {
    const after = await save(family);
    for (const [table, state] of after) {
      const old = before.tables[family].get(table);
      for (const rule of state.rules) {
        if (old?.rules.includes(rule) || !ours(rule)) continue;
        await execProgram(family, ['-t', table, '-D', ...ruleArgs(rule).slice(1)]);
      }
      for (const [chain, policy] of state.chains) {
        const oldPolicy = old?.chains.get(chain);
        if (policy !== '-' && oldPolicy !== undefined && oldPolicy !== policy) {
          await execProgram(family, ['-t', table, '-P', chain, oldPolicy]);
        }
        if (policy === '-' && oldPolicy === undefined && ours(chain)) {
          await execProgram(family, ['-t', table, '-F', chain]);
          await execProgram(family, ['-t', table, '-X', chain]);
        }
      }
    }
    // Tables that did not exist before and hold nothing now (iptables-nft made them for dockerd).
    const now = await save(family);
    for (const [table, state] of now) {
      if (before.tables[family].has(table) || state.rules.length > 0) continue;
      if ([...state.chains.values()].some((policy) => policy === '-')) continue;
      await execProgram('nft', ['delete', 'table', family === 'iptables' ? 'ip' : 'ip6', table]);
    }
  }
  await writeFile('/proc/sys/net/ipv4/ip_forward', before.ipForward);
}

/** Resident set size of a process in KiB (NaN when it is gone). */
export async function rssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN);
}

/** Process ids whose command name (comm, 15 characters at most) starts with `name`. */
export async function pidsNamed(name: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (comm.trim().startsWith(name.slice(0, 15))) pids.push(Number(entry));
  }
  return pids;
}

/** The processor and distribution, for the report. */
export async function kernelAndCpu(): Promise<Record<string, string>> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown';
  const release = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const os = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(release)?.[1] ?? 'unknown';
  return { cpu: model.trim(), os };
}
