/**
 * `create` and `run`: the create body from docker's flags (opts/container.ts), the image pulled when
 * it is missing (or always, with --pull always), then for `run` attach + wait + start and the
 * container's exit code. Daemon errors exit 125, or 126/127 when the command cannot be run or is
 * not found, as docker's do.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { flagBool, flagValue, type ParsedArgs } from '../args.js';
import { pathEscape } from '../client.js';
import type { CommandDef, FlagDef, Invocation } from '../command.js';
import type { CliContext } from '../context.js';
import { ApiError, CommandError, StatusError } from '../errors.js';
import { CONTAINER_FLAGS, parseCreate, type CreateRequest } from '../opts/container.js';
import { familiarReference, parseReference, type ImageReference } from '../../image/reference.js';
import { attachContainer, detachKeys, exitStatus, streamSession, waitForExit } from './attach.js';

/** The image as a name to pull, or undefined for an image ID (which cannot be pulled). */
function namedReference(image: string): ImageReference | undefined {
  if (/^(sha256:)?[0-9a-f]{64}$/.test(image)) return undefined;
  try {
    return parseReference(image);
  } catch {
    return undefined;
  }
}

/** POST /containers/create, pulling the image first or on "no such image" as --pull says. */
export async function createContainer(ctx: CliContext, req: CreateRequest, quiet: boolean): Promise<string> {
  const client = ctx.client();
  const ref = namedReference(req.image);
  const pull = async (): Promise<void> => {
    if (!ref) return;
    // Loaded only to pull: transfer.ts and its stream modules are most of run's start-up otherwise.
    const { pullImage } = await import('./transfer.js');
    await pullImage(ctx, ref, { platform: req.platform, out: quiet ? undefined : ctx.stderr });
  };
  if (req.cidfile !== undefined && req.cidfile !== '' && existsSync(req.cidfile)) {
    throw new CommandError(
      `container ID file found, make sure the other container isn't running or delete ${req.cidfile}`,
    );
  }
  if (req.pull === 'always') await pull();
  const create = () =>
    client.json<{ Id: string; Warnings?: string[] | null }>('POST', '/containers/create', {
      query: { name: req.name, platform: req.platform },
      json: req.body,
    });
  let response;
  try {
    response = await create();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404 && ref && req.pull === 'missing')) throw err;
    if (!quiet) ctx.err(`Unable to find image '${familiarReference(ref)}' locally\n`);
    await pull();
    response = await create();
  }
  for (const warning of response.Warnings ?? []) ctx.err(`WARNING: ${warning}\n`);
  if (req.cidfile !== undefined && req.cidfile !== '') {
    try {
      writeFileSync(req.cidfile, response.Id, { flag: 'wx' });
    } catch (err) {
      throw new CommandError(`failed to write the container ID to the file: ${(err as Error).message}`);
    }
  }
  return response.Id;
}

/** docker's runStartContainerErr: 127 for a missing command, 126 for one that cannot run. */
function startFailure(err: unknown, invocation: Invocation): StatusError {
  const message = err instanceof Error ? err.message : String(err);
  const trimmed = message.replace(/^Error response from daemon: /, '');
  let code = 125;
  if (
    /executable file not found|no such file or directory|system cannot find the file specified/.test(trimmed)
  )
    code = 127;
  else if (/permission denied|is a directory/.test(trimmed)) code = 126;
  return new StatusError(code, `berth: ${message}\n\nRun '${invocation.name} --help' for more information`);
}

function parse(ctx: CliContext, args: ParsedArgs, detach: boolean): CreateRequest {
  const req = parseCreate(args, { env: ctx.env, cwd: process.cwd(), detach });
  if (req.body.Tty && ctx.stdout.isTTY && ctx.stdout.rows && ctx.stdout.columns) {
    req.body.HostConfig.ConsoleSize = [ctx.stdout.rows, ctx.stdout.columns];
  }
  return req;
}

async function create(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const req = parse(ctx, args, false);
  const id = await createContainer(ctx, req, flagBool(args, 'quiet'));
  ctx.out(`${id}\n`);
  return 0;
}

async function run(ctx: CliContext, args: ParsedArgs, invocation: Invocation): Promise<number> {
  const detach = flagBool(args, 'detach');
  const req = parse(ctx, args, detach);
  const body = req.body;
  if (!detach && body.Tty && body.AttachStdin && !ctx.streams.stdin.isTTY) {
    throw new StatusError(1, 'the input device is not a TTY');
  }
  const sigProxy = flagValue(args, 'sig-proxy') !== 'false';
  if (detach && flagValue(args, 'sig-proxy') === 'true') {
    throw new CommandError('conflicting options: cannot specify both --sig-proxy and --detach');
  }
  const keys = await detachKeys(ctx, flagValue(args, 'detach-keys'));
  const id = await createContainer(ctx, req, flagBool(args, 'quiet'));
  const client = ctx.client();
  const start = async (): Promise<void> => {
    try {
      await client.call('POST', `/containers/${pathEscape(id)}/start`);
    } catch (err) {
      throw startFailure(err, invocation);
    }
  };
  if (!body.AttachStdin && !body.AttachStdout && !body.AttachStderr) {
    // docker prints the ID before the start completes (so it is printed even when start fails).
    ctx.out(`${id}\n`);
    await start();
    return 0;
  }
  const hijacked = await attachContainer(
    ctx,
    id,
    { stdin: body.AttachStdin, stdout: body.AttachStdout, stderr: body.AttachStderr },
    keys.explicit,
  );
  const waiting = waitForExit(ctx, id, body.HostConfig.AutoRemove ? 'removed' : 'next-exit');
  try {
    await start();
  } catch (err) {
    hijacked.socket.destroy();
    throw err;
  }
  const ended = await streamSession(ctx, id, {
    hijacked,
    tty: body.Tty,
    stdin: body.AttachStdin,
    keys: keys.keys,
    sigProxy,
  });
  if (ended === 'detached') return 0;
  try {
    return await exitStatus(waiting);
  } catch (err) {
    throw new StatusError(125, `berth: ${(err as Error).message}`);
  }
}

const RUN_ONLY: FlagDef[] = [
  {
    name: 'detach',
    short: 'd',
    type: 'bool',
    description: 'Run container in background and print container ID',
  },
  { name: 'detach-keys', type: 'string', description: 'Override the key sequence for detaching a container' },
  {
    name: 'sig-proxy',
    type: 'bool',
    description: 'Proxy received signals to the process',
    defaultText: 'true',
  },
];
const HIDDEN: FlagDef[] = [
  { name: 'disable-content-trust', type: 'bool', description: 'Skip image verification', hidden: true },
];

// Byte order, as docker lists flags; localeCompare would also load ICU's collator (~10 ms per run).
const sortFlags = (flags: FlagDef[]): FlagDef[] =>
  [...flags].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

export const commands: Record<string, CommandDef> = {
  run: {
    usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
    description: 'Create and run a new container from an image',
    aliases: ['berth container run', 'berth run'],
    args: { min: 1 },
    stopAtPositional: true,
    flags: sortFlags([...CONTAINER_FLAGS, ...RUN_ONLY, ...HIDDEN]),
    run,
  },
  create: {
    usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]',
    description: 'Create a new container',
    aliases: ['berth container create', 'berth create'],
    args: { min: 1 },
    stopAtPositional: true,
    flags: sortFlags([...CONTAINER_FLAGS, ...HIDDEN]),
    run: create,
  },
};
