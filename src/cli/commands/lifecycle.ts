/**
 * Container lifecycle commands that are one request per container: stop, restart, kill, pause,
 * unpause, rm, rename, wait, prune, port, top, diff, update.
 */
import type { ParsedArgs } from '../args.js';
import { flagBool, flagValue, flagValues } from '../args.js';
import { pathEscape } from '../client.js';
import { FILTER_FLAG, FORCE_PRUNE_FLAG, type CommandDef } from '../command.js';
import type { CliContext } from '../context.js';
import { ApiError, CommandError } from '../errors.js';
import { tabwrite } from '../format/tabwriter.js';
import { humanSize } from '../format/units.js';
import { filtersJson, memSwapBytes, parseNanoCpus, ramInBytes } from '../opts/values.js';
import { parseRestartPolicy, validator } from '../opts/container.js';
import { confirm, forEachArg, naturalCompare, one } from './common.js';

const containerPath = (name: string, action = ''): string => `/containers/${pathEscape(name)}${action}`;

function stopLike(action: 'stop' | 'restart', description: string): CommandDef {
  return {
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    description,
    aliases: [`berth container ${action}`, `berth ${action}`],
    args: { min: 1 },
    flags: [
      { name: 'signal', short: 's', type: 'string', description: 'Signal to send to the container' },
      {
        name: 'timeout',
        short: 't',
        type: 'int',
        description: 'Seconds to wait before killing the container',
      },
      {
        name: 'time',
        type: 'int',
        description: 'Seconds to wait before killing the container',
        hidden: true,
      },
    ],
    run: (ctx, args) => {
      const timeout = flagValue(args, 'timeout') ?? flagValue(args, 'time');
      const query = { signal: flagValue(args, 'signal'), t: timeout };
      return forEachArg(ctx, args.positional, async (name) => {
        await ctx.client().call('POST', containerPath(name, `/${action}`), { query });
        return name;
      });
    },
  };
}

function simple(action: 'pause' | 'unpause', description: string): CommandDef {
  return {
    usage: 'CONTAINER [CONTAINER...]',
    description,
    aliases: [`berth container ${action}`, `berth ${action}`],
    args: { min: 1 },
    flags: [],
    run: (ctx, args) =>
      forEachArg(ctx, args.positional, async (name) => {
        await ctx.client().call('POST', containerPath(name, `/${action}`));
        return name;
      }),
  };
}

const UPDATE_FLAGS: CommandDef['flags'] = [
  {
    name: 'blkio-weight',
    type: 'uint16',
    description: 'Block IO (relative weight), between 10 and 1000, or 0 to disable',
  },
  { name: 'cpu-period', type: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) period' },
  { name: 'cpu-quota', type: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
  { name: 'cpu-rt-period', type: 'int', description: 'Limit the CPU real-time period in microseconds' },
  { name: 'cpu-rt-runtime', type: 'int', description: 'Limit the CPU real-time runtime in microseconds' },
  { name: 'cpu-shares', short: 'c', type: 'int', description: 'CPU shares (relative weight)' },
  { name: 'cpus', type: 'decimal', description: 'Number of CPUs' },
  { name: 'cpuset-cpus', type: 'string', description: 'CPUs in which to allow execution (0-3, 0,1)' },
  { name: 'cpuset-mems', type: 'string', description: 'MEMs in which to allow execution (0-3, 0,1)' },
  { name: 'memory', short: 'm', type: 'bytes', description: 'Memory limit' },
  { name: 'memory-reservation', type: 'bytes', description: 'Memory soft limit' },
  {
    name: 'memory-swap',
    type: 'bytes',
    description: 'Swap limit equal to memory plus swap: -1 to enable unlimited swap',
    validate: validator(memSwapBytes),
  },
  { name: 'pids-limit', type: 'int', description: 'Tune container pids limit (set -1 for unlimited)' },
  { name: 'restart', type: 'string', description: 'Restart policy to apply when a container exits' },
];

/** The body of POST /containers/{id}/update, in the docker CLI's field order. */
export function updateBody(args: ParsedArgs): Record<string, unknown> {
  const int = (name: string): number => Number(flagValue(args, name) ?? '0');
  const bytes = (name: string): number => {
    const value = flagValue(args, name);
    return value === undefined ? 0 : ramInBytes(value);
  };
  const pids = flagValue(args, 'pids-limit');
  const swap = flagValue(args, 'memory-swap');
  const cpus = flagValue(args, 'cpus');
  return {
    CpuShares: int('cpu-shares'),
    Memory: bytes('memory'),
    NanoCpus: cpus === undefined ? 0 : parseNanoCpus(cpus),
    CgroupParent: '',
    BlkioWeight: int('blkio-weight'),
    BlkioWeightDevice: null,
    BlkioDeviceReadBps: null,
    BlkioDeviceWriteBps: null,
    BlkioDeviceReadIOps: null,
    BlkioDeviceWriteIOps: null,
    CpuPeriod: int('cpu-period'),
    CpuQuota: int('cpu-quota'),
    CpuRealtimePeriod: int('cpu-rt-period'),
    CpuRealtimeRuntime: int('cpu-rt-runtime'),
    CpusetCpus: flagValue(args, 'cpuset-cpus') ?? '',
    CpusetMems: flagValue(args, 'cpuset-mems') ?? '',
    Devices: null,
    DeviceCgroupRules: null,
    DeviceRequests: null,
    MemoryReservation: bytes('memory-reservation'),
    MemorySwap: swap === undefined ? 0 : memSwapBytes(swap),
    MemorySwappiness: null,
    OomKillDisable: null,
    PidsLimit: pids === undefined ? null : Number(pids),
    Ulimits: null,
    CpuCount: 0,
    CpuPercent: 0,
    IOMaximumIOps: 0,
    IOMaximumBandwidth: 0,
    RestartPolicy: parseRestartPolicy(flagValue(args, 'restart') ?? ''),
  };
}

interface PortBinding {
  HostIp?: string;
  HostPort?: string;
}

const joinHostPort = (host: string, port: string): string =>
  host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;

async function port(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const [name = '', wanted] = args.positional;
  const info = await ctx
    .client()
    .json<{ NetworkSettings?: { Ports?: Record<string, PortBinding[] | null> } }>(
      'GET',
      containerPath(name, '/json'),
    );
  const ports = info.NetworkSettings?.Ports ?? {};
  const lines: string[] = [];
  if (wanted !== undefined) {
    const [portText = '', proto = 'tcp'] = wanted.split('/');
    if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
      throw new CommandError(
        `Error: invalid port (${portText}): strconv.ParseUint: parsing "${portText}": invalid syntax`,
      );
    }
    const frontends = ports[`${portText}/${proto}`];
    if (!frontends) throw new CommandError(`Error: No public port '${wanted}' published for ${name}`);
    for (const f of frontends) lines.push(joinHostPort(f.HostIp ?? '', f.HostPort ?? ''));
  } else {
    for (const [from, frontends] of Object.entries(ports)) {
      for (const f of frontends ?? [])
        lines.push(`${from} -> ${joinHostPort(f.HostIp ?? '', f.HostPort ?? '')}`);
    }
  }
  if (lines.length > 0) ctx.out(lines.sort(naturalCompare).join('\n') + '\n');
  return 0;
}

const CHANGE_KINDS = ['C', 'A', 'D'];

export const commands: Record<string, CommandDef> = {
  stop: stopLike('stop', 'Stop one or more running containers'),
  restart: stopLike('restart', 'Restart one or more containers'),
  kill: {
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    description: 'Kill one or more running containers',
    aliases: ['berth container kill', 'berth kill'],
    args: { min: 1 },
    flags: [{ name: 'signal', short: 's', type: 'string', description: 'Signal to send to the container' }],
    run: (ctx, args) =>
      forEachArg(ctx, args.positional, async (name) => {
        await ctx
          .client()
          .call('POST', containerPath(name, '/kill'), { query: { signal: flagValue(args, 'signal') } });
        return name;
      }),
  },
  pause: simple('pause', 'Pause all processes within one or more containers'),
  unpause: simple('unpause', 'Unpause all processes within one or more containers'),
  rm: {
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    description: 'Remove one or more containers',
    aliases: ['berth container rm', 'berth container remove', 'berth rm'],
    args: { min: 1 },
    flags: [
      {
        name: 'force',
        short: 'f',
        type: 'bool',
        description: 'Force the removal of a running container (uses SIGKILL)',
      },
      { name: 'link', short: 'l', type: 'bool', description: 'Remove the specified link' },
      {
        name: 'volumes',
        short: 'v',
        type: 'bool',
        description: 'Remove anonymous volumes associated with the container',
      },
    ],
    run: (ctx, args) => {
      const force = flagBool(args, 'force');
      const query = {
        force: one(force),
        link: one(flagBool(args, 'link')),
        v: one(flagBool(args, 'volumes')),
      };
      return forEachArg(ctx, args.positional, async (name) => {
        if (name.replace(/^\/+/, '') === '') throw new CommandError('Container name cannot be empty');
        try {
          await ctx.client().call('DELETE', containerPath(name), { query });
        } catch (err) {
          // With -f a container that is already gone is reported but is not a failure.
          if (force && err instanceof ApiError && err.status === 404) {
            ctx.err(`${err.message}\n`);
            return undefined;
          }
          throw err;
        }
        return name;
      });
    },
  },
  rename: {
    usage: 'CONTAINER NEW_NAME',
    description: 'Rename a container',
    aliases: ['berth container rename', 'berth rename'],
    args: { min: 2, max: 2 },
    flags: [],
    run: async (ctx, args) => {
      const [oldName = '', newName = ''] = args.positional.map((s) => s.trim());
      if (oldName === '' || newName === '')
        throw new CommandError('Error: Neither old nor new names may be empty');
      await ctx.client().call('POST', containerPath(oldName, '/rename'), { query: { name: newName } });
      return 0;
    },
  },
  wait: {
    usage: 'CONTAINER [CONTAINER...]',
    description: 'Block until one or more containers stop, then print their exit codes',
    aliases: ['berth container wait', 'berth wait'],
    args: { min: 1 },
    flags: [],
    run: async (ctx, args) => {
      const errors: string[] = [];
      for (const name of args.positional) {
        try {
          const result = await ctx
            .client()
            .json<{ StatusCode: number; Error?: { Message?: string } | null }>(
              'POST',
              containerPath(name, '/wait'),
            );
          if (result.Error?.Message) throw new CommandError(result.Error.Message);
          ctx.out(`${result.StatusCode}\n`);
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
      if (errors.length > 0) throw new CommandError(errors.join('\n'));
      return 0;
    },
  },
  'container prune': {
    usage: '[OPTIONS]',
    description: 'Remove all stopped containers',
    args: { max: 0 },
    flags: [
      { ...FILTER_FLAG, short: undefined, description: 'Provide filter values (e.g. "until=<timestamp>")' },
      FORCE_PRUNE_FLAG,
    ],
    run: async (ctx, args) => {
      if (
        !flagBool(args, 'force') &&
        !(await confirm(
          ctx,
          'WARNING! This will remove all stopped containers.\nAre you sure you want to continue?',
        ))
      ) {
        return 0;
      }
      const report = await ctx
        .client()
        .json<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>('POST', '/containers/prune', {
          query: { filters: filtersJson(flagValues(args, 'filter')) },
        });
      const deleted = report.ContainersDeleted ?? [];
      if (deleted.length > 0) ctx.out(`Deleted Containers:\n${deleted.map((id) => `${id}\n`).join('')}\n`);
      ctx.out(`Total reclaimed space: ${humanSize(deleted.length > 0 ? (report.SpaceReclaimed ?? 0) : 0)}\n`);
      return 0;
    },
  },
  port: {
    usage: 'CONTAINER [PRIVATE_PORT[/PROTO]]',
    description: 'List port mappings or a specific mapping for the container',
    aliases: ['berth container port', 'berth port'],
    args: { min: 1, max: 2 },
    flags: [],
    run: port,
  },
  top: {
    usage: 'CONTAINER [ps OPTIONS]',
    description: 'Display the running processes of a container',
    aliases: ['berth container top', 'berth top'],
    args: { min: 1 },
    stopAtPositional: true,
    flags: [],
    run: async (ctx, args) => {
      const [name = '', ...psArgs] = args.positional;
      const top = await ctx
        .client()
        .json<{ Titles?: string[]; Processes?: string[][] }>('GET', containerPath(name, '/top'), {
          query: { ps_args: psArgs.length > 0 ? psArgs.join(' ') : undefined },
        });
      let text = `${(top.Titles ?? []).join('\t')}\n`;
      for (const proc of top.Processes ?? []) text += `${proc.join('\t')}\n`;
      ctx.out(tabwrite(text, { minWidth: 20, padding: 3 }));
      return 0;
    },
  },
  diff: {
    usage: 'CONTAINER',
    description: "Inspect changes to files or directories on a container's filesystem",
    aliases: ['berth container diff', 'berth diff'],
    args: { min: 1, max: 1 },
    flags: [],
    run: async (ctx, args) => {
      const changes =
        (await ctx
          .client()
          .json<Array<{ Kind: number; Path: string }> | null>(
            'GET',
            containerPath(args.positional[0] ?? '', '/changes'),
          )) ?? [];
      for (const change of changes) ctx.out(`${CHANGE_KINDS[change.Kind] ?? '?'} ${change.Path}\n`);
      return 0;
    },
  },
  update: {
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    description: 'Update configuration of one or more containers',
    aliases: ['berth container update', 'berth update'],
    args: { min: 1 },
    flags: UPDATE_FLAGS,
    run: (ctx, args) => {
      if (![...args.flags.keys()].some((name) => name !== 'help')) {
        throw new CommandError('you must provide one or more flags when using this command');
      }
      const body = updateBody(args);
      return forEachArg(ctx, args.positional, async (name) => {
        const result = await ctx
          .client()
          .json<{ Warnings?: string[] | null }>('POST', containerPath(name, '/update'), { json: body });
        for (const warning of result?.Warnings ?? []) ctx.err(`${warning}\n`);
        return name;
      });
    },
  },
};
