/**
 * `stats`: per-container resource usage from the daemon's stats streams, computed and printed as
 * docker does (CPU % from the delta against precpu_stats, memory without the inactive page cache,
 * network and block I/O totals). Streaming mode redraws the table in place every half second;
 * --no-stream prints one table after the first sample of each container.
 */
import { flagBool, flagValue, type ParsedArgs } from '../args.js';
import { pathEscape } from '../client.js';
import { FORMAT_FLAG, type CommandDef } from '../command.js';
import { loadConfig } from '../config.js';
import type { CliContext } from '../context.js';
import { renderList, structContext } from '../format/formatter.js';
import { bytesSize, humanSizeWithPrecision } from '../format/units.js';
import { readJsonMessages } from '../progress.js';
import { shortId } from './common.js';

export interface StatsResponse {
  id?: string;
  name?: string;
  pids_stats?: { current?: number };
  blkio_stats?: { io_service_bytes_recursive?: Array<{ op: string; value: number }> | null };
  cpu_stats?: CpuStats;
  precpu_stats?: CpuStats;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> | null };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }> | null;
}

interface CpuStats {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null };
  system_cpu_usage?: number;
  online_cpus?: number;
}

export interface StatsEntry {
  container: string;
  id: string;
  name: string;
  cpuPercent: number;
  memory: number;
  memoryLimit: number;
  memoryPercent: number;
  netRx: number;
  netTx: number;
  blockRead: number;
  blockWrite: number;
  pids: number;
  invalid: boolean;
}

/** docker's calculations for one sample. */
export function computeStats(entry: StatsEntry, s: StatsResponse): void {
  const cpu = s.cpu_stats ?? {};
  const pre = s.precpu_stats ?? {};
  const cpuDelta = (cpu.cpu_usage?.total_usage ?? 0) - (pre.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cpu.system_cpu_usage ?? 0) - (pre.system_cpu_usage ?? 0);
  const online = cpu.online_cpus || (cpu.cpu_usage?.percpu_usage ?? []).length;
  entry.cpuPercent = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * online * 100 : 0;
  const mem = s.memory_stats ?? {};
  const usage = mem.usage ?? 0;
  const stats = mem.stats ?? {};
  let used = usage;
  if ('total_inactive_file' in stats && (stats.total_inactive_file ?? 0) < usage)
    used = usage - (stats.total_inactive_file ?? 0);
  else if ((stats.inactive_file ?? 0) < usage) used = usage - (stats.inactive_file ?? 0);
  entry.memory = used;
  entry.memoryLimit = mem.limit ?? 0;
  entry.memoryPercent = entry.memoryLimit !== 0 ? (used / entry.memoryLimit) * 100 : 0;
  entry.netRx = 0;
  entry.netTx = 0;
  for (const net of Object.values(s.networks ?? {})) {
    entry.netRx += net.rx_bytes ?? 0;
    entry.netTx += net.tx_bytes ?? 0;
  }
  entry.blockRead = 0;
  entry.blockWrite = 0;
  for (const io of s.blkio_stats?.io_service_bytes_recursive ?? []) {
    if (io.op.toLowerCase() === 'read') entry.blockRead += io.value;
    if (io.op.toLowerCase() === 'write') entry.blockWrite += io.value;
  }
  entry.pids = s.pids_stats?.current ?? 0;
  entry.id = s.id ?? entry.id;
  entry.name = s.name ?? entry.name;
  entry.invalid = false;
}

const percent = (value: number): string => `${value.toFixed(2)}%`;

export function statsContext(s: StatsEntry, trunc: boolean): Record<string, unknown> {
  return structContext({
    BlockIO: s.invalid
      ? '--'
      : `${humanSizeWithPrecision(s.blockRead, 3)} / ${humanSizeWithPrecision(s.blockWrite, 3)}`,
    CPUPerc: s.invalid ? '--' : percent(s.cpuPercent),
    Container: s.container,
    ID: trunc ? shortId(s.id) : s.id,
    MemPerc: s.invalid ? '--' : percent(s.memoryPercent),
    MemUsage: s.invalid ? '-- / --' : `${bytesSize(s.memory)} / ${bytesSize(s.memoryLimit)}`,
    Name: s.name.length > 1 ? s.name.slice(1) : '--',
    NetIO: s.invalid ? '--' : `${humanSizeWithPrecision(s.netRx, 3)} / ${humanSizeWithPrecision(s.netTx, 3)}`,
    PIDs: s.invalid ? '--' : String(s.pids),
  });
}

const STATS_HEADERS: Record<string, string> = {
  Container: 'CONTAINER',
  ID: 'CONTAINER ID',
  Name: 'NAME',
  CPUPerc: 'CPU %',
  MemUsage: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %',
  NetIO: 'NET I/O',
  BlockIO: 'BLOCK I/O',
  PIDs: 'PIDS',
};

const DEFAULT_STATS =
  'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';

const newEntry = (container: string): StatsEntry => ({
  container,
  id: '',
  name: '',
  cpuPercent: 0,
  memory: 0,
  memoryLimit: 0,
  memoryPercent: 0,
  netRx: 0,
  netTx: 0,
  blockRead: 0,
  blockWrite: 0,
  pids: 0,
  invalid: false,
});

async function stats(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const client = ctx.client();
  const noStream = flagBool(args, 'no-stream');
  const trunc = !flagBool(args, 'no-trunc');
  let format = flagValue(args, 'format') ?? '';
  if (format === '') {
    const configured = (await loadConfig(ctx.configDir)).statsFormat;
    if (typeof configured === 'string') format = configured;
  }
  let names = args.positional;
  if (names.length === 0) {
    const list =
      (await client.json<Array<{ Id: string }> | null>('GET', '/containers/json', {
        query: { all: flagBool(args, 'all') ? '1' : undefined },
      })) ?? [];
    names = list.map((c) => c.Id);
  }
  const entries = names.map(newEntry);
  const abort = new AbortController();
  ctx.onCleanup(() => abort.abort());
  const follow = async (entry: StatsEntry): Promise<void> => {
    try {
      const res = await client.request('GET', `/containers/${pathEscape(entry.container)}/stats`, {
        query: { stream: noStream ? '0' : '1' },
        signal: abort.signal,
      });
      for await (const sample of readJsonMessages(res))
        computeStats(entry, sample as unknown as StatsResponse);
      // A stream that ends means the container stopped: docker shows "--" from then on.
      if (!noStream) entry.invalid = true;
    } catch (err) {
      entry.invalid = true;
      if (noStream || args.positional.length > 0) throw err;
    }
  };
  const render = (): string =>
    renderList(
      { format, defaultTable: DEFAULT_STATS, headers: STATS_HEADERS },
      entries.map((e) => statsContext(e, trunc)),
    );
  if (noStream) {
    const results = await Promise.allSettled(entries.map(follow));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed && failed.status === 'rejected') throw failed.reason;
    ctx.out(render());
    return 0;
  }
  const streams = entries.map((entry) => follow(entry).catch(() => undefined));
  const draw = (): void => {
    const text = render()
      .split('\n')
      .map((line) => `${line}\x1b[K`)
      .join('\n');
    ctx.out(`\x1b[H${text}\x1b[J`);
  };
  ctx.out('\x1b[2J\x1b[H');
  await new Promise<void>((resolve) => {
    const timer = setInterval(draw, 500);
    // Streaming runs until interrupted, or until every container's stream has ended.
    void Promise.all(streams).then(() => {
      if (entries.length === 0) return;
      clearInterval(timer);
      draw();
      resolve();
    });
  });
  return 0;
}

export const commands: Record<string, CommandDef> = {
  stats: {
    usage: '[OPTIONS] [CONTAINER...]',
    description: 'Display a live stream of container(s) resource usage statistics',
    aliases: ['berth container stats', 'berth stats'],
    flags: [
      {
        name: 'all',
        short: 'a',
        type: 'bool',
        description: 'Show all containers (default shows just running)',
      },
      FORMAT_FLAG,
      {
        name: 'no-stream',
        type: 'bool',
        description: 'Disable streaming stats and only pull the first result',
      },
      { name: 'no-trunc', type: 'bool', description: 'Do not truncate output' },
    ],
    run: stats,
  },
};
