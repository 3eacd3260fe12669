/** `logs`: the container's log stream, demultiplexed unless the container has a TTY. */
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { flagBool, flagValue } from '../args.js';
import { pathEscape } from '../client.js';
import type { CommandDef } from '../command.js';
import { getTimestamp } from '../opts/values.js';
import { FrameDemuxer } from '../stdio.js';
import { one } from './common.js';

export const commands: Record<string, CommandDef> = {
  logs: {
    usage: '[OPTIONS] CONTAINER',
    description: 'Fetch the logs of a container',
    aliases: ['berth container logs', 'berth logs'],
    args: { min: 1, max: 1 },
    flags: [
      { name: 'details', type: 'bool', description: 'Show extra details provided to logs' },
      { name: 'follow', short: 'f', type: 'bool', description: 'Follow log output' },
      {
        name: 'since',
        type: 'string',
        description:
          'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
      },
      {
        name: 'tail',
        short: 'n',
        type: 'string',
        description: 'Number of lines to show from the end of the logs',
        defaultText: '"all"',
      },
      { name: 'timestamps', short: 't', type: 'bool', description: 'Show timestamps' },
      {
        name: 'until',
        type: 'string',
        description:
          'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)',
      },
    ],
    run: async (ctx, args) => {
      const client = ctx.client();
      const name = args.positional[0] ?? '';
      const info = await client.json<{ Id: string; Config?: { Tty?: boolean } }>(
        'GET',
        `/containers/${pathEscape(name)}/json`,
      );
      const since = flagValue(args, 'since');
      const until = flagValue(args, 'until');
      const now = Date.now();
      const res = await client.request('GET', `/containers/${pathEscape(info.Id)}/logs`, {
        query: {
          stdout: '1',
          stderr: '1',
          since: since === undefined ? undefined : getTimestamp(since, now),
          until: until === undefined ? undefined : getTimestamp(until, now),
          timestamps: one(flagBool(args, 'timestamps')),
          follow: one(flagBool(args, 'follow')),
          tail: flagValue(args, 'tail') ?? 'all',
          details: one(flagBool(args, 'details')),
        },
      });
      if (info.Config?.Tty) {
        await pipeline(res, ctx.stdout, { end: false });
      } else {
        // Backpressure: a slow reader of a long log holds the daemon's stream, not berth's memory.
        const demuxer = new FrameDemuxer(ctx.streams);
        for await (const chunk of res) {
          if (!demuxer.push(chunk as Buffer)) {
            await Promise.all(
              [ctx.stdout, ctx.stderr].map((s) =>
                (s as NodeJS.WritableStream & { writableNeedDrain?: boolean }).writableNeedDrain
                  ? once(s, 'drain')
                  : undefined,
              ),
            );
          }
        }
      }
      return 0;
    },
  },
};
