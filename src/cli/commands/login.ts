/**
 * `login` and `logout`: credentials checked by the daemon (POST /auth), then kept in config.json
 * like the docker CLI keeps them (base64 `auth`, file mode 0600, or a credential helper). Passwords
 * are never printed.
 */
import { flagBool, flagValue, type ParsedArgs } from '../args.js';
import type { CommandDef } from '../command.js';
import {
  DOCKER_HUB_ADDRESS,
  credentialsFor,
  eraseCredentials,
  loadConfig,
  registryHost,
  storeCredentials,
  type AuthConfig,
} from '../config.js';
import type { CliContext } from '../context.js';
import { CommandError } from '../errors.js';
import { readAll } from './common.js';

/** The address credentials are kept under: the hub's URL, else the registry host. */
function serverAddress(arg: string | undefined): string {
  if (arg === undefined || arg === '') return DOCKER_HUB_ADDRESS;
  const host = registryHost(arg);
  if (host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io')
    return DOCKER_HUB_ADDRESS;
  return host;
}

/** Reads one line from stdin; with `hidden` the terminal does not echo it. */
async function prompt(ctx: CliContext, question: string, hidden: boolean): Promise<string> {
  const stdin = ctx.streams.stdin;
  ctx.out(question);
  const raw = hidden && stdin.isTTY && typeof stdin.setRawMode === 'function';
  if (raw) stdin.setRawMode?.(true);
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      const onData = (chunk: Buffer | string): void => {
        for (const ch of chunk.toString()) {
          if (ch === '\u0003') {
            done();
            reject(new CommandError('login cancelled'));
            return;
          }
          if (ch === '\r' || ch === '\n') {
            done();
            resolve(text);
            return;
          }
          if (ch === '\u007f') text = text.slice(0, -1);
          else text += ch;
        }
      };
      const onEnd = (): void => {
        done();
        resolve(text);
      };
      const done = (): void => {
        stdin.off('data', onData);
        stdin.off('end', onEnd);
        stdin.pause();
      };
      stdin.on('data', onData);
      stdin.on('end', onEnd);
      stdin.resume();
    });
  } finally {
    if (raw) {
      stdin.setRawMode?.(false);
      ctx.out('\n');
    }
  }
}

async function login(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const address = serverAddress(args.positional[0]);
  let username = flagValue(args, 'username')?.trim();
  let password = flagValue(args, 'password');
  if (password !== undefined) {
    ctx.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    if (flagBool(args, 'password-stdin'))
      throw new CommandError('--password and --password-stdin are mutually exclusive');
  }
  if (flagBool(args, 'password-stdin')) {
    if (!username) throw new CommandError('Must provide --username with --password-stdin');
    password = (await readAll(ctx.streams.stdin)).toString('utf8').replace(/\r?\n$/, '');
  }
  const config = await loadConfig(ctx.configDir);
  const client = ctx.client();
  const authenticate = (auth: AuthConfig) =>
    client.json<{ Status?: string; IdentityToken?: string }>('POST', '/auth', { json: auth });

  if (username === undefined && password === undefined) {
    const stored = await credentialsFor(config, address);
    if (stored.username && (stored.password || stored.identitytoken)) {
      ctx.err(
        `Authenticating with existing credentials... [Username: ${stored.username}]\n\n` +
          " Info -> To login with a different account, run 'berth logout' followed by 'berth login'\n\n\n",
      );
      try {
        const result = await authenticate({ ...stored, serveraddress: address });
        ctx.out(`${result.Status ?? 'Login Succeeded'}\n`);
        return 0;
      } catch {
        // Fall through to a prompt, as docker does when stored credentials no longer work.
      }
    }
  }
  if (username === undefined || password === undefined) {
    if (!ctx.streams.stdin.isTTY)
      throw new CommandError('Error: Cannot perform an interactive login from a non TTY device');
    if (username === undefined) username = (await prompt(ctx, 'Username: ', false)).trim();
    if (username === '') throw new CommandError('Error: Non-null Username Required');
    if (password === undefined) password = await prompt(ctx, 'Password: ', true);
    if (password === '') throw new CommandError('Error: Password Required');
  }
  const auth: AuthConfig = { username, password, serveraddress: address };
  const result = await authenticate(auth);
  if (result.IdentityToken) {
    auth.password = '';
    auth.identitytoken = result.IdentityToken;
  }
  const before = JSON.stringify(config.auths?.[address] ?? null);
  await storeCredentials(ctx.configDir, config, auth);
  if (
    !config.credsStore &&
    !config.credHelpers?.[address] &&
    JSON.stringify(config.auths?.[address] ?? null) !== before
  ) {
    ctx.err(
      `\nWARNING! Your credentials are stored unencrypted in '${ctx.configDir}/config.json'.\n` +
        'Configure a credential helper to remove this warning. See\n' +
        'https://docs.docker.com/go/credential-store/\n\n',
    );
  }
  ctx.out(`${result.Status ?? 'Login Succeeded'}\n`);
  return 0;
}

export const commands: Record<string, CommandDef> = {
  login: {
    usage: '[OPTIONS] [SERVER]',
    description: 'Authenticate to a registry',
    args: { max: 1 },
    flags: [
      {
        name: 'password',
        short: 'p',
        type: 'string',
        description: 'Password or Personal Access Token (PAT)',
      },
      {
        name: 'password-stdin',
        type: 'bool',
        description: 'Take the Password or Personal Access Token (PAT) from stdin',
      },
      { name: 'username', short: 'u', type: 'string', description: 'Username' },
    ],
    run: login,
  },
  logout: {
    usage: '[SERVER]',
    description: 'Log out from a registry',
    args: { max: 1 },
    flags: [],
    run: async (ctx, args) => {
      const address = serverAddress(args.positional[0]);
      ctx.out(`Removing login credentials for ${address}\n`);
      const config = await loadConfig(ctx.configDir);
      await eraseCredentials(ctx.configDir, config, address);
      return 0;
    },
  },
};
