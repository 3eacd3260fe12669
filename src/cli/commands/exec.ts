/** `exec`: create an exec instance, start it attached (hijacked) or detached, report its exit code. */
import { flagBool, flagValue, flagValues, type ParsedArgs } from '../args.js';
import { pathEscape } from '../client.js';
import type { CommandDef } from '../command.js';
import { loadConfig } from '../config.js';
import type { CliContext } from '../context.js';
import { CommandError, StatusError } from '../errors.js';
import { expandEnv, readKeyValueFile } from '../opts/values.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys, runSession } from '../stdio.js';

async function exec(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const [container = '', ...cmd] = args.positional;
  const detach = flagBool(args, 'detach');
  const interactive = flagBool(args, 'interactive');
  const tty = flagBool(args, 'tty');
  const env: string[] = [];
  for (const file of flagValues(args, 'env-file')) env.push(...readKeyValueFile(file, ctx.env, true));
  for (const value of flagValues(args, 'env')) env.push(expandEnv(value, ctx.env));
  const configuredKeys = (await loadConfig(ctx.configDir)).detachKeys;
  const detachKeys =
    flagValue(args, 'detach-keys') ?? (typeof configuredKeys === 'string' ? configuredKeys : '');
  if (detachKeys !== '') parseDetachKeys(detachKeys);

  const client = ctx.client();
  // An inspect first makes "no such container" win over other errors and leaks no exec instance.
  await client.json('GET', `/containers/${pathEscape(container)}/json`);
  if (!detach && tty && interactive && !ctx.streams.stdin.isTTY)
    throw new CommandError('the input device is not a TTY');
  const consoleSize =
    tty && ctx.stdout.isTTY && ctx.stdout.rows && ctx.stdout.columns
      ? [ctx.stdout.rows, ctx.stdout.columns]
      : undefined;
  const body: Record<string, unknown> = {
    User: flagValue(args, 'user') ?? '',
    Privileged: flagBool(args, 'privileged'),
    Tty: tty,
  };
  if (consoleSize) body.ConsoleSize = consoleSize;
  Object.assign(body, {
    AttachStdin: !detach && interactive,
    AttachStderr: !detach,
    AttachStdout: !detach,
    Detach: detach,
    DetachKeys: detachKeys,
    Env: env.length > 0 ? env : null,
    WorkingDir: flagValue(args, 'workdir') ?? '',
    Cmd: cmd,
  });
  const created = await client.json<{ Id?: string }>('POST', `/containers/${pathEscape(container)}/exec`, {
    json: body,
  });
  const id = created.Id ?? '';
  if (id === '') throw new CommandError('exec ID empty');
  const startBody: Record<string, unknown> = { Detach: detach, Tty: tty };
  if (consoleSize) startBody.ConsoleSize = consoleSize;
  if (detach) {
    await client.call('POST', `/exec/${pathEscape(id)}/start`, { json: startBody });
    return 0;
  }
  const hijacked = await client.hijack(`/exec/${pathEscape(id)}/start`, { json: startBody });
  const resize = async (): Promise<void> => {
    const { rows, columns } = ctx.stdout;
    if (!rows || !columns) return;
    await client.call('POST', `/exec/${pathEscape(id)}/resize`, { query: { h: rows, w: columns } });
  };
  const result = await runSession(ctx, hijacked.socket, {
    tty,
    stdin: interactive,
    detachKeys: detachKeys || DEFAULT_DETACH_KEYS,
    resize: tty && ctx.streams.stdin.isTTY ? resize : undefined,
  });
  if (result.detached) return 0;
  const inspect = await client.json<{ ExitCode?: number | null }>('GET', `/exec/${pathEscape(id)}/json`);
  const code = inspect.ExitCode ?? 0;
  if (code !== 0) throw new StatusError(code);
  return 0;
}

export const commands: Record<string, CommandDef> = {
  exec: {
    usage: '[OPTIONS] CONTAINER COMMAND [ARG...]',
    description: 'Execute a command in a running container',
    aliases: ['berth container exec', 'berth exec'],
    args: { min: 2 },
    stopAtPositional: true,
    flags: [
      {
        name: 'detach',
        short: 'd',
        type: 'bool',
        description: 'Detached mode: run command in the background',
      },
      {
        name: 'detach-keys',
        type: 'string',
        description: 'Override the key sequence for detaching a container',
      },
      { name: 'env', short: 'e', type: 'list', description: 'Set environment variables' },
      { name: 'env-file', type: 'list', description: 'Read in a file of environment variables' },
      { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
      { name: 'privileged', type: 'bool', description: 'Give extended privileges to the command' },
      { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
      {
        name: 'user',
        short: 'u',
        type: 'string',
        description: 'Username or UID (format: "<name|uid>[:<group|gid>]")',
      },
      { name: 'workdir', short: 'w', type: 'string', description: 'Working directory inside the container' },
    ],
    run: exec,
  },
};
