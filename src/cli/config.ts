/**
 * The docker CLI's config.json (`--config`, DOCKER_CONFIG, ~/.docker): registry credentials in
 * `auths` (base64 `user:password` in `auth`) or in a credential helper (`credsStore`,
 * `credHelpers`), and the X-Registry-Auth header built from them. The file is rewritten
 * atomically with mode 0600, other keys left as they were; credentials are never printed.
 */
// Synchronous file calls: the CLI has nothing else to do meanwhile, and node:fs/promises would be
// one more module to load on every command.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommandError } from './errors.js';

export const DOCKER_HUB_ADDRESS = 'https://index.docker.io/v1/';

export interface AuthConfig {
  username?: string;
  password?: string;
  serveraddress?: string;
  identitytoken?: string;
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

export interface ConfigFile extends Record<string, unknown> {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

export async function loadConfig(dir: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = readFileSync(join(dir, 'config.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as ConfigFile;
  } catch (err) {
    throw new CommandError(`loading config file ${join(dir, 'config.json')}: ${(err as Error).message}`);
  }
}

export async function saveConfig(dir: string, config: ConfigFile): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'config.json');
  const temp = `${path}.tmp-${process.pid}`;
  writeFileSync(temp, JSON.stringify(config, null, '\t'), { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, path);
}

/** The registry host of a server address: "https://index.docker.io/v1/" -> "index.docker.io". */
export function registryHost(address: string): string {
  return address.replace(/^[a-z]+:\/\//i, '').split('/')[0] ?? address;
}

/** The config key docker uses for a registry: the hub's URL, or the host as given. */
export function serverAddressFor(registry: string): string {
  if (
    registry === '' ||
    registry === 'docker.io' ||
    registry === 'index.docker.io' ||
    registry === 'registry-1.docker.io'
  ) {
    return DOCKER_HUB_ADDRESS;
  }
  return registry;
}

function helperFor(config: ConfigFile, address: string): string | undefined {
  return config.credHelpers?.[registryHost(address)] ?? config.credHelpers?.[address] ?? config.credsStore;
}

/** Runs `docker-credential-<helper> <action>` with `input` on stdin. */
async function runHelper(helper: string, action: string, input: string): Promise<string> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const child = execFile(`docker-credential-${helper}`, [action], { timeout: 30_000 }, (error, stdout) => {
      if (error) {
        const text = String(stdout).trim();
        reject(
          new CommandError(
            `error ${action === 'get' ? 'getting' : action === 'store' ? 'storing' : 'erasing'} credentials - ${text || error.message}`,
          ),
        );
        return;
      }
      resolve(String(stdout));
    });
    child.stdin?.end(input);
  });
}

/** Credentials for a registry, from the helper or the `auths` entry; empty when there are none. */
export async function credentialsFor(config: ConfigFile, registry: string): Promise<AuthConfig> {
  const address = serverAddressFor(registry);
  const helper = helperFor(config, address);
  if (helper) {
    try {
      const found = JSON.parse(await runHelper(helper, 'get', address)) as {
        Username?: string;
        Secret?: string;
      };
      if (found.Username === '<token>') return { identitytoken: found.Secret, serveraddress: address };
      return { username: found.Username, password: found.Secret, serveraddress: address };
    } catch {
      return {};
    }
  }
  const auths = config.auths ?? {};
  const key = Object.keys(auths).find((k) => k === address || registryHost(k) === registryHost(address));
  if (key === undefined) return {};
  const entry = auths[key] ?? {};
  const auth: AuthConfig = {};
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      auth.username = decoded.slice(0, colon);
      auth.password = decoded.slice(colon + 1);
    }
  } else if (entry.username) {
    auth.username = entry.username;
    auth.password = entry.password;
  }
  auth.serveraddress = key;
  if (entry.identitytoken) auth.identitytoken = entry.identitytoken;
  return auth;
}

export async function storeCredentials(dir: string, config: ConfigFile, auth: AuthConfig): Promise<void> {
  const address = auth.serveraddress ?? DOCKER_HUB_ADDRESS;
  const helper = helperFor(config, address);
  if (helper) {
    const secret = auth.identitytoken ?? auth.password ?? '';
    const username = auth.identitytoken ? '<token>' : (auth.username ?? '');
    await runHelper(
      helper,
      'store',
      JSON.stringify({ ServerURL: address, Username: username, Secret: secret }),
    );
    return;
  }
  const entry: AuthEntry = {
    auth: Buffer.from(`${auth.username ?? ''}:${auth.password ?? ''}`).toString('base64'),
  };
  if (auth.identitytoken) entry.identitytoken = auth.identitytoken;
  config.auths = { ...(config.auths ?? {}), [address]: entry };
  await saveConfig(dir, config);
}

/** Removes stored credentials; false when there were none. */
export async function eraseCredentials(dir: string, config: ConfigFile, address: string): Promise<boolean> {
  const helper = helperFor(config, address);
  if (helper) {
    await runHelper(helper, 'erase', address);
    return true;
  }
  const auths = config.auths ?? {};
  const key = Object.keys(auths).find((k) => k === address || registryHost(k) === registryHost(address));
  if (key === undefined) return false;
  delete auths[key];
  config.auths = auths;
  await saveConfig(dir, config);
  return true;
}

/** The X-Registry-Auth header: base64url of the JSON auth config, docker's encoding. */
export function encodeAuthHeader(auth: AuthConfig): string {
  return Buffer.from(JSON.stringify(auth)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}
