/** `builder prune`: berthd's build cache through POST /build/prune, as the docker CLI sends it. */
import { flagBool, flagValue, flagValues } from '../args.js';
import { FORCE_PRUNE_FLAG, type CommandDef } from '../command.js';
import { humanSize } from '../format/units.js';
import { filtersJson, ramInBytes } from '../opts/values.js';
import { confirm } from './common.js';

const DANGLING_WARNING =
  'WARNING! This will remove all dangling build cache. Are you sure you want to continue?';
const ALL_WARNING = 'WARNING! This will remove all build cache. Are you sure you want to continue?';

export const commands: Record<string, CommandDef> = {
  'builder prune': {
    usage: '[OPTIONS]',
    description: 'Remove build cache',
    args: { max: 0 },
    flags: [
      {
        name: 'all',
        short: 'a',
        type: 'bool',
        description: 'Remove all unused build cache, not just dangling ones',
      },
      { name: 'filter', type: 'filter', description: 'Provide filter values (e.g. "until=24h")' },
      FORCE_PRUNE_FLAG,
      { name: 'keep-storage', type: 'bytes', description: 'Amount of disk space to keep for cache' },
    ],
    run: async (ctx, args) => {
      const all = flagBool(args, 'all');
      if (!flagBool(args, 'force') && !(await confirm(ctx, all ? ALL_WARNING : DANGLING_WARNING))) return 0;
      const keep = flagValue(args, 'keep-storage');
      const keepBytes = keep === undefined ? 0 : ramInBytes(keep);
      const report = await ctx
        .client()
        .json<{ CachesDeleted?: string[] | null; SpaceReclaimed?: number }>('POST', '/build/prune', {
          query: {
            all: all ? '1' : undefined,
            filters: filtersJson(flagValues(args, 'filter')) ?? '',
            'keep-storage': keepBytes > 0 ? String(keepBytes) : undefined,
          },
        });
      const deleted = report.CachesDeleted ?? [];
      if (deleted.length > 0)
        ctx.out(`Deleted build cache objects:\n${deleted.map((id) => `${id}\n`).join('')}\n`);
      ctx.out(`Total reclaimed space: ${humanSize(report.SpaceReclaimed ?? 0)}\n`);
      return 0;
    },
  },
};
