/**
 * Attaching to containers: `attach`, `start` (with -a/-i), and the attached part of `run`. The
 * order of requests is docker's: attach (hijacked), wait for the exit, start, then stream until the
 * output ends; the exit code is the container's.
 */
import { flagBool, flagValue, type ParsedArgs } from '../args.js';
import { pathEscape, type HijackedStream } from '../client.js';
import type { CommandDef } from '../command.js';
import { loadConfig } from '../config.js';
import type { CliContext } from '../context.js';
import { CommandError } from '../errors.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys, proxySignals, runSession } from '../stdio.js';
import { one } from './common.js';

export interface WaitResult {
  StatusCode: number;
  Error?: { Message?: string } | null;
}

/** The detach keys: the flag, else config.json's detachKeys, else ctrl-p,ctrl-q. */
export async function detachKeys(
  ctx: CliContext,
  flag: string | undefined,
): Promise<{ keys: string; explicit?: string }> {
  if (flag !== undefined) {
    parseDetachKeys(flag);
    return { keys: flag, explicit: flag };
  }
  const configured = (await loadConfig(ctx.configDir)).detachKeys;
  if (typeof configured === 'string' && configured !== '') return { keys: configured, explicit: configured };
  return { keys: DEFAULT_DETACH_KEYS };
}

/** Starts the exit wait before the container runs, so a fast exit is not missed. */
export function waitForExit(ctx: CliContext, id: string, condition?: string): Promise<WaitResult> {
  const waiting = ctx
    .client()
    .json<WaitResult>('POST', `/containers/${pathEscape(id)}/wait`, { query: { condition } });
  waiting.catch(() => undefined);
  return waiting;
}

/** The container's exit code from a wait result (docker: an error in the result is exit 125). */
export async function exitStatus(waiting: Promise<WaitResult>): Promise<number> {
  const result = await waiting;
  if (result.Error?.Message) throw new CommandError(result.Error.Message);
  return result.StatusCode;
}

export interface AttachStreams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export function attachContainer(
  ctx: CliContext,
  id: string,
  streams: AttachStreams,
  keys: string | undefined,
): Promise<HijackedStream> {
  return ctx.client().hijack(`/containers/${pathEscape(id)}/attach`, {
    query: {
      stream: '1',
      stdin: one(streams.stdin),
      stdout: one(streams.stdout),
      stderr: one(streams.stderr),
      detachKeys: keys,
    },
  });
}

/** Resizes a container TTY to the local terminal. */
export function containerResize(ctx: CliContext, id: string): () => Promise<void> {
  return async () => {
    const { rows, columns } = ctx.stdout;
    if (!rows || !columns) return;
    await ctx
      .client()
      .call('POST', `/containers/${pathEscape(id)}/resize`, { query: { h: rows, w: columns } });
  };
}

export interface Session {
  hijacked: HijackedStream;
  tty: boolean;
  stdin: boolean;
  keys: string;
  sigProxy: boolean;
}

/** Streams an attached session; resolves with undefined when the user detached. */
export async function streamSession(
  ctx: CliContext,
  id: string,
  session: Session,
): Promise<'detached' | 'ended'> {
  if (session.sigProxy && !session.tty) {
    proxySignals(ctx, (signal) =>
      ctx.client().call('POST', `/containers/${pathEscape(id)}/kill`, { query: { signal } }),
    );
  }
  const result = await runSession(ctx, session.hijacked.socket, {
    tty: session.tty,
    stdin: session.stdin,
    detachKeys: session.keys,
    resize: session.tty && ctx.stdout.isTTY ? containerResize(ctx, id) : undefined,
  });
  return result.detached ? 'detached' : 'ended';
}

interface Inspected {
  Id: string;
  State?: { Running?: boolean; Paused?: boolean; Restarting?: boolean };
  Config?: { Tty?: boolean; OpenStdin?: boolean };
}

async function attach(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const name = args.positional[0] ?? '';
  const client = ctx.client();
  const waiting = waitForExit(ctx, name);
  const info = await client.json<Inspected>('GET', `/containers/${pathEscape(name)}/json`);
  if (!info.State?.Running)
    throw new CommandError('You cannot attach to a stopped container, start it first');
  if (info.State.Paused) throw new CommandError('You cannot attach to a paused container, unpause it first');
  if (info.State.Restarting)
    throw new CommandError('You cannot attach to a restarting container, wait until it is running');
  const tty = info.Config?.Tty === true;
  const stdin = !flagBool(args, 'no-stdin') && info.Config?.OpenStdin === true;
  if (!flagBool(args, 'no-stdin') && tty && !ctx.streams.stdin.isTTY) {
    throw new CommandError('the input device is not a TTY');
  }
  const keys = await detachKeys(ctx, flagValue(args, 'detach-keys'));
  const hijacked = await attachContainer(ctx, name, { stdin, stdout: true, stderr: true }, keys.explicit);
  const sigProxy = flagValue(args, 'sig-proxy') !== 'false';
  const ended = await streamSession(ctx, name, { hijacked, tty, stdin, keys: keys.keys, sigProxy });
  if (ended === 'detached') return 0;
  return exitStatus(waiting);
}

async function start(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const client = ctx.client();
  const attachOut = flagBool(args, 'attach');
  const interactive = flagBool(args, 'interactive');
  if (!attachOut && !interactive) {
    const failed: string[] = [];
    for (const name of args.positional) {
      try {
        await client.call('POST', `/containers/${pathEscape(name)}/start`);
        ctx.out(`${name}\n`);
      } catch (err) {
        ctx.err(`${(err as Error).message}\n`);
        failed.push(name);
      }
    }
    if (failed.length > 0) throw new CommandError(`Error: failed to start containers: ${failed.join(', ')}`);
    return 0;
  }
  if (args.positional.length > 1)
    throw new CommandError('you cannot start and attach multiple containers at once');
  const name = args.positional[0] ?? '';
  const info = await client.json<Inspected>('GET', `/containers/${pathEscape(name)}/json`);
  const tty = info.Config?.Tty === true;
  const stdin = interactive && info.Config?.OpenStdin === true;
  if (stdin && tty && !ctx.streams.stdin.isTTY) throw new CommandError('the input device is not a TTY');
  const keys = await detachKeys(ctx, flagValue(args, 'detach-keys'));
  const hijacked = await attachContainer(
    ctx,
    info.Id,
    { stdin, stdout: attachOut, stderr: attachOut },
    keys.explicit,
  );
  const waiting = waitForExit(ctx, info.Id, 'next-exit');
  try {
    await client.call('POST', `/containers/${pathEscape(info.Id)}/start`);
  } catch (err) {
    hijacked.socket.destroy();
    throw err;
  }
  const ended = await streamSession(ctx, info.Id, { hijacked, tty, stdin, keys: keys.keys, sigProxy: !tty });
  if (ended === 'detached') return 0;
  return exitStatus(waiting);
}

export const commands: Record<string, CommandDef> = {
  attach: {
    usage: '[OPTIONS] CONTAINER',
    description: 'Attach local standard input, output, and error streams to a running container',
    aliases: ['berth container attach', 'berth attach'],
    args: { min: 1, max: 1 },
    flags: [
      {
        name: 'detach-keys',
        type: 'string',
        description: 'Override the key sequence for detaching a container',
      },
      { name: 'no-stdin', type: 'bool', description: 'Do not attach STDIN' },
      {
        name: 'sig-proxy',
        type: 'bool',
        description: 'Proxy all received signals to the process',
        defaultText: 'true',
      },
    ],
    run: attach,
  },
  start: {
    usage: '[OPTIONS] CONTAINER [CONTAINER...]',
    description: 'Start one or more stopped containers',
    aliases: ['berth container start', 'berth start'],
    args: { min: 1 },
    flags: [
      { name: 'attach', short: 'a', type: 'bool', description: 'Attach STDOUT/STDERR and forward signals' },
      {
        name: 'detach-keys',
        type: 'string',
        description: 'Override the key sequence for detaching a container',
      },
      { name: 'interactive', short: 'i', type: 'bool', description: "Attach container's STDIN" },
    ],
    run: start,
  },
};
