/**
 * `inspect` and the typed `container/image/volume/network inspect`: the daemon's JSON, re-indented
 * byte for byte as docker prints it, or rendered through a Go template with -f. Without --type the
 * name is tried as a container, an image, a network and a volume, in docker's order.
 */
import { flagBool, flagValue, type ParsedArgs } from '../args.js';
import { pathEscape, readText } from '../client.js';
import type { CommandDef, FlagDef } from '../command.js';
import type { CliContext } from '../context.js';
import { ApiError, CommandError, StatusError } from '../errors.js';
import { indentJson } from '../format/json-indent.js';
import { Template, TemplateError } from '../format/template.js';

type Kind = 'container' | 'image' | 'network' | 'volume';

async function fetchRaw(ctx: CliContext, kind: Kind, name: string, size: boolean): Promise<string> {
  const escaped = pathEscape(name);
  const path = {
    container: `/containers/${escaped}/json`,
    image: `/images/${escaped}/json`,
    network: `/networks/${escaped}`,
    volume: `/volumes/${escaped}`,
  }[kind];
  const res = await ctx
    .client()
    .request('GET', path, { query: { size: kind === 'container' && size ? '1' : undefined } });
  return readText(res);
}

const KINDS: Kind[] = ['container', 'image', 'network', 'volume'];

async function inspectAll(ctx: CliContext, args: ParsedArgs, kinds: Kind[] | undefined): Promise<number> {
  const format = flagValue(args, 'format') ?? '';
  let template: Template | undefined;
  if (format !== '' && format !== 'json') {
    try {
      template = new Template(format, { missingKeyError: true });
    } catch (err) {
      if (err instanceof TemplateError)
        throw new StatusError(64, `template parsing error: template: :1: ${err.message}`);
      throw err;
    }
  }
  const size = flagBool(args, 'size');
  const raws: string[] = [];
  const errors: string[] = [];
  let out = '';
  for (const name of args.positional) {
    let raw: string | undefined;
    let lastError: unknown;
    for (const kind of kinds ?? KINDS) {
      try {
        raw = await fetchRaw(ctx, kind, name, size);
        break;
      } catch (err) {
        lastError = err;
        if (!(err instanceof ApiError && err.status === 404)) break;
      }
    }
    if (raw === undefined) {
      const notFound = lastError instanceof ApiError && lastError.status === 404;
      errors.push(
        kinds === undefined && notFound ? `Error: No such object: ${name}` : (lastError as Error).message,
      );
      continue;
    }
    if (template) {
      try {
        out += `${template.execute(JSON.parse(raw))}\n`;
      } catch (err) {
        errors.push(
          `template parsing error: ${err instanceof TemplateError ? template.describe(err) : (err as Error).message}`,
        );
      }
    } else if (format === 'json') out += `${JSON.stringify(JSON.parse(raw))}\n`;
    else raws.push(raw.trim());
  }
  // docker's template inspector prints an empty line when nothing came out.
  if (template || format === 'json') ctx.out(out === '' ? '\n' : out);
  else ctx.out(raws.length === 0 ? '[]\n' : `${indentJson(`[${raws.join(',')}]`)}\n`);
  if (errors.length > 0) throw new StatusError(1, errors.join('\n'));
  return 0;
}

const FORMAT: FlagDef = {
  name: 'format',
  short: 'f',
  type: 'string',
  description: "Format output using a custom template: 'json' or a Go template",
};

function typed(kind: Kind, noun: string, extra: FlagDef[] = []): CommandDef {
  return {
    usage: `[OPTIONS] ${noun.toUpperCase()} [${noun.toUpperCase()}...]`,
    description: `Display detailed information on one or more ${noun}s`,
    args: { min: 1 },
    flags: [FORMAT, ...extra],
    run: (ctx, args) => inspectAll(ctx, args, [kind]),
  };
}

export const commands: Record<string, CommandDef> = {
  inspect: {
    usage: '[OPTIONS] NAME|ID [NAME|ID...]',
    description: 'Return low-level information on berth objects',
    args: { min: 1 },
    flags: [
      FORMAT,
      {
        name: 'size',
        short: 's',
        type: 'bool',
        description: 'Display total file sizes if the type is container',
      },
      { name: 'type', type: 'string', description: 'Only inspect objects of the given type' },
    ],
    run: (ctx, args) => {
      const type = flagValue(args, 'type');
      if (type !== undefined && !KINDS.includes(type as Kind)) {
        throw new CommandError(`"${type}" is not a valid value for --type`);
      }
      return inspectAll(ctx, args, type === undefined ? undefined : [type as Kind]);
    },
  },
  'container inspect': typed('container', 'container', [
    { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes' },
  ]),
  'image inspect': typed('image', 'image', [
    { name: 'platform', type: 'string', description: 'Inspect a specific platform' },
  ]),
  'volume inspect': typed('volume', 'volume'),
  'network inspect': typed('network', 'network', [
    { name: 'verbose', short: 'v', type: 'bool', description: 'Verbose output for diagnostics' },
  ]),
};
