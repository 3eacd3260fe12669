/**
 * The soak's figures: what berthd holds (resident memory, V8 heap, file descriptors, event
 * listeners, handles) and what it made in the kernel and on disk (mounts, network namespaces,
 * cgroups, veths, bridges, nftables objects, processes, state directories, data-root files and
 * bytes), each counted only where it can be attributed to this berthd. `compare` applies the
 * verdict rules: every count must come back to its baseline exactly; memory may grow within a
 * bound (docs/benchmarks.md says why).
 */
import { readdir, readFile, lstat } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { execProgram } from '../test/helpers/exec.js';
import { apiRequest } from '../test/helpers/berthd.js';
import { CGROUP_ROOT } from '../test/helpers/sandbox.js';
import { rssKiB } from './lib/host.js';
import type { SoakTarget } from './soak-target.js';

/**
 * Growth allowed for berthd's memory after full GCs, each the larger of a fraction of the
 * baseline and a size (docs/benchmarks.md says why):
 * - rss: V8 may keep its young generation (two semi-spaces of up to 16 MiB) committed, plus
 *   the `native` allowance;
 * - native (RSS outside the V8 heap): glibc keeps freed arenas, compiled code grows;
 * - heap (V8 heap in use): what stays alive; compiled code keeps growing a little.
 */
export const MEMORY_BOUNDS = {
  rss: { fraction: 0.2, kib: 40 * 1024 },
  native: { fraction: 0.2, kib: 16 * 1024 },
  heap: { fraction: 0.25, kib: 8 * 1024 },
} as const;
/**
 * Change allowed in the data root's bytes: records rewritten in place hold cursors (an IPAM
 * allocation cursor gains a digit); a leaked file, directory or layer shows in the file count.
 */
export const DATA_BYTES_BOUND = 4096;

type Rule = 'exact' | keyof typeof MEMORY_BOUNDS | 'bytes' | 'report';

interface FigureDef {
  key: string;
  label: string;
  rule: Rule;
}

const FIGURES: FigureDef[] = [
  { key: 'rssKiB', label: 'berthd RSS (KiB)', rule: 'rss' },
  { key: 'heapUsedKiB', label: 'berthd V8 heap used (KiB)', rule: 'heap' },
  // What makes up the RSS: the heap V8 keeps committed, and the rest.
  { key: 'heapTotalKiB', label: 'berthd V8 heap committed (KiB)', rule: 'report' },
  { key: 'nativeKiB', label: 'berthd RSS outside the V8 heap (KiB)', rule: 'native' },
  { key: 'fds', label: 'berthd open fds', rule: 'exact' },
  { key: 'eventListeners', label: 'event listeners', rule: 'exact' },
  { key: 'handles', label: 'berthd active handles', rule: 'exact' },
  { key: 'processes', label: 'processes (berthd children, containers)', rule: 'exact' },
  { key: 'shims', label: 'berth-shim processes', rule: 'exact' },
  { key: 'mounts', label: 'mounts under the roots', rule: 'exact' },
  { key: 'netns', label: 'network namespaces (nsfs mounts)', rule: 'exact' },
  { key: 'cgroups', label: 'cgroups below the parent', rule: 'exact' },
  { key: 'veths', label: 'veths', rule: 'exact' },
  { key: 'bridges', label: 'bridges', rule: 'exact' },
  { key: 'nftRules', label: 'nftables rules', rule: 'exact' },
  { key: 'nftChains', label: 'nftables chains', rule: 'exact' },
  { key: 'nftSetElements', label: 'nftables set/map elements', rule: 'exact' },
  { key: 'containerDirs', label: 'container directories', rule: 'exact' },
  { key: 'snapshotDirs', label: 'snapshot directories', rule: 'exact' },
  { key: 'runtimeDirs', label: 'runtime state directories', rule: 'exact' },
  { key: 'volumeDirs', label: 'volume directories', rule: 'exact' },
  { key: 'networkRecords', label: 'network records', rule: 'exact' },
  { key: 'images', label: 'images', rule: 'exact' },
  { key: 'blobs', label: 'content blobs', rule: 'exact' },
  { key: 'dataRootFiles', label: 'data-root files and directories', rule: 'exact' },
  { key: 'dataRootBytes', label: 'data-root bytes (apparent)', rule: 'bytes' },
];

export type Figures = Record<string, number>;

/** Names the workload gave berthd's objects, for attributing links to it. */
export interface Owned {
  /** Container ids seen in create events (veth host names start with vb + 10 of them). */
  containerIds: Set<string>;
  /** Bridges of user-defined networks the workload made. */
  bridges: Set<string>;
}

async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => [] as string[]);
}

async function countEntries(...dirs: string[]): Promise<number> {
  let total = 0;
  for (const dir of dirs) total += (await entries(dir)).length;
  return total;
}

/** Mount points at or below `root`, with their filesystem types. */
async function mountsUnder(root: string): Promise<Array<{ point: string; type: string }>> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const found: Array<{ point: string; type: string }> = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const point = (fields[4] ?? '').replace(/\\([0-7]{3})/g, (_, oct: string) =>
      String.fromCharCode(parseInt(oct, 8)),
    );
    // The filesystem type follows the " - " separator.
    const type = fields[fields.indexOf('-') + 1] ?? '';
    if (point === root || point.startsWith(`${root}/`)) found.push({ point, type });
  }
  return found;
}

async function cgroupCount(parent: string): Promise<number> {
  let count = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory()) continue;
      count++;
      await walk(join(dir, entry.name));
    }
  };
  for (const hierarchy of await entries(CGROUP_ROOT)) await walk(join(CGROUP_ROOT, hierarchy, parent));
  return count;
}

interface ProcInfo {
  ppid: number;
  comm: string;
  cgroup: string;
}

/** berthd's descendants and every process in a cgroup below the parent. */
async function ownProcesses(target: SoakTarget): Promise<ProcInfo[]> {
  const all = new Map<number, ProcInfo>();
  for (const entry of await entries('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat === '') continue;
    const close = stat.lastIndexOf(')');
    all.set(Number(entry), {
      comm: stat.slice(stat.indexOf('(') + 1, close),
      ppid: Number(stat.slice(close + 2).split(' ')[1]),
      cgroup: await readFile(`/proc/${entry}/cgroup`, 'utf8').catch(() => ''),
    });
  }
  const own = new Set<number>();
  const isDescendant = (pid: number): boolean => {
    for (let p = pid, depth = 0; p > 1 && depth < 64; depth++) {
      if (p === target.pid) return true;
      p = all.get(p)?.ppid ?? 0;
    }
    return false;
  };
  for (const [pid, info] of all) {
    if (pid === target.pid) continue;
    if (isDescendant(pid) || info.cgroup.includes(`/${target.cgroupParent}/`)) own.add(pid);
  }
  return [...own].map((pid) => all.get(pid)).filter((info): info is ProcInfo => info !== undefined);
}

/** Links: veths on our bridges or named after our containers, and our bridges that exist. */
async function links(target: SoakTarget, owned: Owned): Promise<{ veths: number; bridges: number }> {
  const ourBridges = new Set([target.bridge, ...owned.bridges]);
  for (const id of await entries(join(target.dataRoot, 'networks'))) {
    const record = await readFile(join(target.dataRoot, 'networks', id, 'network.json'), 'utf8').catch(
      () => '',
    );
    const bridge = /"bridge":\s*"([^"]+)"/.exec(record)?.[1];
    if (bridge) ourBridges.add(bridge);
  }
  const prefixes = [...owned.containerIds].map((id) => `vb${id.slice(0, 10)}`);
  const list = async (type: string): Promise<string[]> =>
    (await execProgram('ip', ['-o', 'link', 'show', 'type', type])).stdout.split('\n').filter(Boolean);
  let veths = 0;
  for (const line of await list('veth')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '';
    const master = / master (\S+)/.exec(line)?.[1];
    if ((master !== undefined && ourBridges.has(master)) || prefixes.some((p) => name.startsWith(p))) veths++;
  }
  let bridges = 0;
  for (const line of await list('bridge')) {
    if (ourBridges.has(/^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '')) bridges++;
  }
  return { veths, bridges };
}

interface NftCounts {
  nftRules: number;
  nftChains: number;
  nftSetElements: number;
}

async function nftables(table: string): Promise<NftCounts> {
  const counts: NftCounts = { nftRules: 0, nftChains: 0, nftSetElements: 0 };
  const listed = await execProgram('nft', ['-j', 'list', 'table', 'inet', table]);
  if (listed.code !== 0) return counts;
  const objects = (JSON.parse(listed.stdout) as { nftables?: Array<Record<string, { elem?: unknown[] }>> })
    .nftables;
  for (const object of objects ?? []) {
    if ('rule' in object) counts.nftRules++;
    if ('chain' in object) counts.nftChains++;
    counts.nftSetElements += (object.set?.elem ?? object.map?.elem ?? []).length;
  }
  return counts;
}

/** Files and apparent bytes below `dir`, not descending into other filesystems (mounts). */
async function usage(dir: string): Promise<{ files: number; bytes: number }> {
  const top = await lstat(dir);
  let files = 0;
  let bytes = 0;
  const walk = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true }).catch(() => [])) {
      const full = join(path, entry.name);
      const info = await lstat(full).catch(() => undefined);
      if (!info || info.dev !== top.dev) continue;
      files++;
      if (!info.isDirectory()) bytes += info.size;
      else await walk(full);
    }
  };
  await walk(dir);
  return { files, bytes };
}

async function info(target: SoakTarget): Promise<{ NEventsListener: number; NGoroutines: number }> {
  const res = await apiRequest({ socketPath: target.socket }, '/info');
  if (res.status !== 200) throw new Error(`GET /info answered ${res.status}: ${res.body}`);
  return JSON.parse(res.body) as { NEventsListener: number; NGoroutines: number };
}

/** The V8 heap in use and committed, from berthd's Prometheus listener. */
function heapKiB(port: number): Promise<{ used: number; total: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: '/metrics', agent: false, timeout: 10_000 },
      (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => {
          const used = /^nodejs_heap_size_used_bytes (\d+)$/m.exec(body)?.[1];
          const total = /^nodejs_heap_size_total_bytes (\d+)$/m.exec(body)?.[1];
          if (used === undefined || total === undefined) reject(new Error(`no heap sizes in /metrics`));
          else resolve({ used: Math.round(Number(used) / 1024), total: Math.round(Number(total) / 1024) });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('GET /metrics timed out')));
    req.on('error', reject);
  });
}

async function imageCount(target: SoakTarget): Promise<number> {
  const res = await apiRequest({ socketPath: target.socket }, '/images/json?all=1');
  if (res.status !== 200) throw new Error(`GET /images/json answered ${res.status}: ${res.body}`);
  return (JSON.parse(res.body) as unknown[]).length;
}

export interface Memory {
  rssKiB: number;
  heapUsedKiB: number;
  heapTotalKiB: number;
  nativeKiB: number;
}

/** What berthd holds in memory, read without an API call that would allocate much in it. */
export async function memory(target: SoakTarget): Promise<Memory> {
  const heap = await heapKiB(target.metricsPort);
  const rss = await rssKiB(target.pid);
  return { rssKiB: rss, heapUsedKiB: heap.used, heapTotalKiB: heap.total, nativeKiB: rss - heap.total };
}

/** The counts read from the kernel and the file system only (no request to berthd). */
async function hostCounts(target: SoakTarget, owned: Owned): Promise<Figures> {
  const { dataRoot, execRoot } = target;
  const mounts = await mountsUnder(target.root);
  const processes = await ownProcesses(target);
  const disk = await usage(dataRoot);
  return {
    fds: (await entries(`/proc/${target.pid}/fd`)).length,
    processes: processes.length,
    shims: processes.filter((p) => p.comm === 'berth-shim').length,
    mounts: mounts.length,
    netns: mounts.filter((m) => m.type === 'nsfs').length,
    cgroups: await cgroupCount(target.cgroupParent),
    ...(await links(target, owned)),
    ...(await nftables(target.firewallTable)),
    containerDirs: await countEntries(join(dataRoot, 'containers'), join(execRoot, 'containers')),
    snapshotDirs: await countEntries(join(dataRoot, 'snapshots')),
    runtimeDirs: await countEntries(join(execRoot, 'runtime'), join(execRoot, 'a'), join(execRoot, 'netns')),
    volumeDirs: await countEntries(join(dataRoot, 'volumes')),
    networkRecords: await countEntries(join(dataRoot, 'networks')),
    blobs: await countEntries(join(dataRoot, 'content', 'blobs', 'sha256')),
    dataRootFiles: disk.files,
    dataRootBytes: disk.bytes,
  };
}

/** Every figure, once. */
export async function measure(target: SoakTarget, owned: Owned): Promise<Figures> {
  const daemon = await info(target);
  return {
    ...(await memory(target)),
    eventListeners: daemon.NEventsListener,
    handles: daemon.NGoroutines,
    images: await imageCount(target),
    ...(await hostCounts(target, owned)),
  };
}

const sameCounts = (a: Figures, b: Figures): boolean =>
  Object.keys(a).every((key) => key === 'dataRootBytes' || a[key] === b[key]);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Full collections in berthd through the preload of soak-target.ts (SIGUSR2 -> gc()). V8 gives
 * its young generation back at a collection only when the recent allocation rate is low but not
 * zero: the small request to the metrics listener between collections provides that.
 */
export async function collectGarbage(target: SoakTarget): Promise<void> {
  // Without the handler SIGUSR2 would end berthd: check that it is caught (SigCgt, bit 12 - 1).
  const status = await readFile(`/proc/${target.pid}/status`, 'utf8');
  const caught = BigInt(`0x${/^SigCgt:\s+([0-9a-f]+)$/m.exec(status)?.[1] ?? '0'}`);
  if ((caught & (1n << 11n)) === 0n) throw new Error('berthd does not catch SIGUSR2: no GC hook');
  for (let i = 0; i < 3; i++) {
    process.kill(target.pid, 'SIGUSR2');
    await sleep(500);
    await heapKiB(target.metricsPort);
  }
}

/**
 * The figures of an idle berthd: the host counts sampled once a second for at least
 * `windowSeconds` and until they have held still for `steadySeconds` (teardown berthd finishes
 * after answering, such as a veth going with its namespace or an idle connection closed after
 * its keep-alive time, is not a leak), at most `windowSeconds + 60` samples; then full GCs in
 * berthd, then every figure. Both sides of a comparison are taken the same way.
 */
export async function settle(
  target: SoakTarget,
  owned: Owned,
  windowSeconds: number,
  steadySeconds = 6,
): Promise<Figures> {
  const started = Date.now();
  let last = await hostCounts(target, owned);
  let steadySince = Date.now();
  for (let i = 0; i < windowSeconds + 60; i++) {
    const now = Date.now();
    if (now - started >= windowSeconds * 1000 && now - steadySince >= steadySeconds * 1000) break;
    await sleep(1000);
    const next = await hostCounts(target, owned);
    if (!sameCounts(next, last)) steadySince = Date.now();
    last = next;
  }
  await collectGarbage(target);
  return measure(target, owned);
}

export interface Row {
  key: string;
  figure: string;
  rule: Rule;
  before: number;
  after: number;
  delta: number;
  /** What the rule allows: "exact", "+N", "±N", or "-" for a figure only reported. */
  allowed: string;
  ok: boolean;
}

function judge(rule: Rule, before: number, after: number): { allowed: string; ok: boolean } {
  const growth = after - before;
  switch (rule) {
    case 'exact':
      return { allowed: 'exact', ok: growth === 0 };
    case 'bytes':
      return { allowed: `±${DATA_BYTES_BOUND}`, ok: Math.abs(growth) <= DATA_BYTES_BOUND };
    case 'rss':
    case 'native':
    case 'heap': {
      const bound = MEMORY_BOUNDS[rule];
      const limit = Math.round(Math.max(before * bound.fraction, bound.kib));
      return { allowed: `+${limit}`, ok: growth <= limit };
    }
    case 'report':
      return { allowed: '-', ok: true };
  }
}

export function compare(before: Figures, after: Figures): Row[] {
  return FIGURES.map((def) => {
    const b = before[def.key] ?? NaN;
    const a = after[def.key] ?? NaN;
    return {
      key: def.key,
      figure: def.label,
      rule: def.rule,
      before: b,
      after: a,
      delta: a - b,
      ...judge(def.rule, b, a),
    };
  });
}

/** A plain-text table for a terminal (also valid Markdown). */
export function table(rows: Row[]): string {
  const lines = [
    '| figure | before | after | delta | allowed | verdict |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const row of rows) {
    const delta = row.delta > 0 ? `+${row.delta}` : String(row.delta);
    const verdict = row.rule === 'report' ? '' : row.ok ? 'ok' : row.rule === 'exact' ? 'LEAK' : 'OVER';
    lines.push(`| ${row.figure} | ${row.before} | ${row.after} | ${delta} | ${row.allowed} | ${verdict} |`);
  }
  return lines.join('\n') + '\n';
}
