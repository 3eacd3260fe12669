/** `export`: a container's filesystem as a tar archive (`cp` lives in cp.ts). */
import { createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { flagValue } from '../args.js';
import { pathEscape } from '../client.js';
import type { CommandDef } from '../command.js';
import { CommandError } from '../errors.js';

export const commands: Record<string, CommandDef> = {
  export: {
    usage: '[OPTIONS] CONTAINER',
    description: "Export a container's filesystem as a tar archive",
    aliases: ['berth container export', 'berth export'],
    args: { min: 1, max: 1 },
    flags: [
      { name: 'output', short: 'o', type: 'string', description: 'Write to a file, instead of STDOUT' },
    ],
    run: async (ctx, args) => {
      const output = flagValue(args, 'output');
      if (output === undefined && ctx.stdout.isTTY) {
        throw new CommandError('cowardly refusing to save to a terminal. Use the -o flag or redirect');
      }
      const res = await ctx
        .client()
        .request('GET', `/containers/${pathEscape(args.positional[0] ?? '')}/export`);
      if (output !== undefined) await pipeline(res, createWriteStream(output));
      else await pipeline(res, ctx.stdout as NodeJS.WritableStream, { end: false });
      return 0;
    },
  },
};
