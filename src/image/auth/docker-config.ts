/**
 * Credentials from the docker CLI's config.json: `auths` (base64 `user:password` in `auth`, or
 * `username`/`password`, or `identitytoken`), `credHelpers` per registry and `credsStore` for all.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { errnoCode, invalidArgument } from '../../common/errors.js';
import { helperGet, type HelperOptions } from './credential-helper.js';
import {
  hostOfServerAddress,
  serverAddressesFor,
  type CredentialProvider,
  type Credentials,
} from './credentials.js';

export interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

export interface DockerConfigFile {
  auths?: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG ?? join(env.HOME ?? homedir(), '.docker');
  return join(dir, 'config.json');
}

/** Decode an `auths` entry; `where` names the entry in errors. */
export function decodeAuthEntry(entry: AuthEntry, where: string): Credentials | undefined {
  const credentials: Credentials = {};
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      throw invalidArgument(`${where}: "auth" must be base64 of "username:password"`);
    }
    credentials.username = decoded.slice(0, colon);
    credentials.password = decoded.slice(colon + 1);
  } else if (typeof entry.username === 'string' && entry.username !== '') {
    credentials.username = entry.username;
    credentials.password = typeof entry.password === 'string' ? entry.password : '';
  }
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
    credentials.identityToken = entry.identitytoken;
  }
  return Object.keys(credentials).length > 0 ? credentials : undefined;
}

export interface DockerConfigOptions extends HelperOptions {
  /** config.json to read (default: defaultDockerConfigPath()). */
  path?: string;
}

export class DockerConfigCredentials implements CredentialProvider {
  readonly path: string;

  constructor(private readonly options: DockerConfigOptions = {}) {
    this.path = options.path ?? defaultDockerConfigPath(options.env);
  }

  /** The parsed file, or an empty config when there is none. Read on each lookup: `docker login` may change it. */
  async load(): Promise<DockerConfigFile> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return {};
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw invalidArgument(`${this.path} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw invalidArgument(`${this.path} must hold a JSON object`);
    }
    return parsed as DockerConfigFile;
  }

  async get(registry: string): Promise<Credentials | undefined> {
    const config = await this.load();
    const addresses = serverAddressesFor(registry);
    const helper =
      addresses.map((address) => config.credHelpers?.[address]).find((name) => name !== undefined) ??
      config.credsStore;
    if (helper !== undefined && helper !== '') {
      // Helpers are asked with the address Docker stores under (the index URL for Docker Hub).
      const found = await helperGet(helper, addresses[0] as string, this.options);
      if (found) return found;
    }
    const auths = config.auths ?? {};
    for (const address of addresses) {
      for (const [key, entry] of Object.entries(auths)) {
        if (key !== address && hostOfServerAddress(key) !== hostOfServerAddress(address)) continue;
        const credentials = decodeAuthEntry(entry, `${this.path}: auths["${key}"]`);
        if (credentials) return credentials;
      }
    }
    return undefined;
  }
}
