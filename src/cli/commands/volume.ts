/** `volume create/ls/rm/prune` (inspect lives in inspect.ts). */
import { flagBool, flagValue, flagValues } from '../args.js';
import { pathEscape } from '../client.js';
import { FILTER_FLAG, FORCE_PRUNE_FLAG, FORMAT_FLAG, type CommandDef } from '../command.js';
import { CommandError, isNotFound } from '../errors.js';
import { joinLabels, labelLookup, renderList, structContext } from '../format/formatter.js';
import { humanSize } from '../format/units.js';
import { filtersJson, keyValueMap } from '../opts/values.js';
import { confirm, naturalCompare } from './common.js';

interface Volume {
  Name: string;
  Driver?: string;
  Mountpoint?: string;
  Scope?: string;
  Labels?: Record<string, string> | null;
  UsageData?: { Size?: number; RefCount?: number } | null;
}

const VOLUME_HEADERS: Record<string, string> = {
  Name: 'VOLUME NAME',
  Driver: 'DRIVER',
  Scope: 'SCOPE',
  Mountpoint: 'MOUNTPOINT',
  Labels: 'LABELS',
  Links: 'LINKS',
  Size: 'SIZE',
  Group: 'GROUP',
  Availability: 'AVAILABILITY',
  Status: 'STATUS',
};

function volumeContext(v: Volume): Record<string, unknown> {
  const usage = v.UsageData;
  return structContext({
    Availability: 'N/A',
    Driver: v.Driver ?? '',
    Group: 'N/A',
    Label: labelLookup(v.Labels),
    Labels: joinLabels(v.Labels),
    Links: usage ? String(usage.RefCount ?? -1) : 'N/A',
    Mountpoint: v.Mountpoint ?? '',
    Name: v.Name,
    Scope: v.Scope ?? '',
    Size: usage ? humanSize(usage.Size ?? -1) : 'N/A',
    Status: 'N/A',
  });
}

export const commands: Record<string, CommandDef> = {
  create: {
    usage: '[OPTIONS] [VOLUME]',
    description: 'Create a volume',
    args: { max: 1 },
    flags: [
      {
        name: 'driver',
        short: 'd',
        type: 'string',
        description: 'Specify volume driver name',
        defaultText: '"local"',
      },
      { name: 'label', type: 'list', description: 'Set metadata for a volume' },
      { name: 'name', type: 'string', description: 'Specify volume name', hidden: true },
      { name: 'opt', short: 'o', type: 'map', description: 'Set driver specific options' },
    ],
    run: async (ctx, args) => {
      const flagName = flagValue(args, 'name');
      const name = args.positional[0];
      if (flagName !== undefined && name !== undefined && flagName !== name) {
        throw new CommandError(
          `conflicting options: cannot specify a volume-name through both --name and as a positional arg`,
        );
      }
      const body: Record<string, unknown> = { Driver: flagValue(args, 'driver') ?? 'local' };
      const opts = keyValueMap(flagValues(args, 'opt'));
      const labels = keyValueMap(flagValues(args, 'label'));
      if (Object.keys(opts).length > 0) body.DriverOpts = Object.fromEntries(Object.entries(opts).sort());
      if (Object.keys(labels).length > 0) body.Labels = Object.fromEntries(Object.entries(labels).sort());
      const volumeName = name ?? flagName;
      if (volumeName !== undefined && volumeName !== '') body.Name = volumeName;
      const created = await ctx.client().json<Volume>('POST', '/volumes/create', { json: body });
      ctx.out(`${created.Name}\n`);
      return 0;
    },
  },
  ls: {
    usage: '[OPTIONS]',
    description: 'List volumes',
    aliases: ['berth volume ls', 'berth volume list'],
    args: { max: 0 },
    flags: [
      {
        name: 'cluster',
        type: 'bool',
        description: 'Display only cluster volumes (not supported by berth)',
        hidden: true,
      },
      FILTER_FLAG,
      FORMAT_FLAG,
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only display volume names' },
    ],
    run: async (ctx, args) => {
      const list = await ctx
        .client()
        .json<{ Volumes?: Volume[] | null; Warnings?: string[] | null }>('GET', '/volumes', {
          query: { filters: filtersJson(flagValues(args, 'filter')) },
        });
      const volumes = [...(list.Volumes ?? [])].sort((a, b) => naturalCompare(a.Name, b.Name));
      ctx.out(
        renderList(
          {
            format: flagValue(args, 'format'),
            defaultTable: 'table {{.Driver}}\t{{.Name}}',
            headers: VOLUME_HEADERS,
            quiet: '{{.Name}}',
          },
          volumes.map(volumeContext),
          flagBool(args, 'quiet'),
        ),
      );
      for (const warning of list.Warnings ?? []) ctx.err(`${warning}\n`);
      return 0;
    },
  },
  rm: {
    usage: '[OPTIONS] VOLUME [VOLUME...]',
    description: 'Remove one or more volumes',
    aliases: ['berth volume rm', 'berth volume remove'],
    args: { min: 1 },
    flags: [
      { name: 'force', short: 'f', type: 'bool', description: 'Force the removal of one or more volumes' },
    ],
    run: async (ctx, args) => {
      const force = flagBool(args, 'force');
      const errors: string[] = [];
      for (const name of args.positional) {
        try {
          await ctx
            .client()
            .call('DELETE', `/volumes/${pathEscape(name)}`, { query: { force: force ? '1' : undefined } });
          ctx.out(`${name}\n`);
        } catch (err) {
          if (force && isNotFound(err)) continue;
          errors.push((err as Error).message);
        }
      }
      if (errors.length > 0) throw new CommandError(errors.join('\n'));
      return 0;
    },
  },
  prune: {
    usage: '[OPTIONS]',
    description: 'Remove unused local volumes',
    args: { max: 0 },
    flags: [
      {
        name: 'all',
        short: 'a',
        type: 'bool',
        description: 'Remove all unused volumes, not just anonymous ones',
      },
      { ...FILTER_FLAG, short: undefined, description: 'Provide filter values (e.g. "label=<label>")' },
      FORCE_PRUNE_FLAG,
    ],
    run: async (ctx, args) => {
      const all = flagBool(args, 'all');
      const warning = all
        ? 'WARNING! This will remove all local volumes not used by at least one container.'
        : 'WARNING! This will remove anonymous local volumes not used by at least one container.';
      if (!flagBool(args, 'force') && !(await confirm(ctx, `${warning}\nAre you sure you want to continue?`)))
        return 0;
      const filters = flagValues(args, 'filter');
      if (all) filters.push('all=true');
      const report = await ctx
        .client()
        .json<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('POST', '/volumes/prune', {
          query: { filters: filtersJson(filters) },
        });
      const deleted = report.VolumesDeleted ?? [];
      if (deleted.length > 0) ctx.out(`Deleted Volumes:\n${deleted.map((v) => `${v}\n`).join('')}\n`);
      ctx.out(`Total reclaimed space: ${humanSize(deleted.length > 0 ? (report.SpaceReclaimed ?? 0) : 0)}\n`);
      return 0;
    },
  },
};
