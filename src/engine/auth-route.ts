/**
 * Registry credentials from API clients: the X-Registry-Auth header (pull, push) and
 * `POST /auth` (docker login), which checks credentials against the registry the way Docker's
 * daemon does: `GET /v2/` with them (after a token exchange for bearer registries) must answer 200.
 * Passwords are never logged nor put into messages.
 */
import type { Router } from '../api/router.js';
import { ApiError } from '../api/errors.js';
import { invalidArgument } from '../common/errors.js';
import { hostOfServerAddress, StaticCredentials, type Credentials } from '../image/auth/credentials.js';
import { DEFAULT_DOMAIN } from '../image/reference.js';
import { RegistryClient } from '../image/registry/client.js';
import { UnauthorizedError } from '../image/registry/errors.js';

/** Docker's AuthConfig, as in the X-Registry-Auth header and the body of POST /auth. */
export interface AuthConfig {
  username?: string;
  password?: string;
  /** base64 of `username:password`, what config.json stores. */
  auth?: string;
  email?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
}

const HUB_HOSTS = new Set(['', 'docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** The registry domain a login's server address names (`https://index.docker.io/v1/` -> docker.io). */
export function registryDomain(serverAddress: string | undefined): string {
  const host = hostOfServerAddress((serverAddress ?? '').trim());
  return HUB_HOSTS.has(host) ? DEFAULT_DOMAIN : host;
}

/** The credentials an AuthConfig carries; undefined for anonymous. */
export function credentialsOf(config: AuthConfig): Credentials | undefined {
  if (config.identitytoken) return { identityToken: config.identitytoken };
  let { username, password } = config;
  if (!username && config.auth) {
    const pair = Buffer.from(config.auth, 'base64').toString('utf8');
    const colon = pair.indexOf(':');
    if (colon > 0) {
      username = pair.slice(0, colon);
      password = pair.slice(colon + 1);
    }
  }
  return username ? { username, password: password ?? '' } : undefined;
}

/**
 * The X-Registry-Auth header: base64url (or standard base64) of an AuthConfig JSON. A missing or
 * empty header, or `{}`, is anonymous; anything that is not such JSON is a bad request, like Docker.
 */
export function decodeRegistryAuth(header: string | undefined): AuthConfig {
  if (header === undefined || header.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(header.trim(), 'base64').toString('utf8'));
  } catch {
    throw invalidArgument('invalid X-Registry-Auth header: not base64-encoded JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw invalidArgument('invalid X-Registry-Auth header: not a JSON object');
  const config: AuthConfig = {};
  for (const key of ['username', 'password', 'auth', 'email', 'serveraddress', 'identitytoken'] as const) {
    const value = (parsed as Record<string, unknown>)[key];
    if (typeof value === 'string') config[key] = value;
  }
  return config;
}

/** A registry client like `base` (insecure registries, mirrors, limits) using `credentials` for `domain`. */
export function clientWithCredentials(
  base: RegistryClient,
  domain: string,
  credentials: Credentials | undefined,
): RegistryClient {
  return new RegistryClient({
    ...base.options,
    credentials: new StaticCredentials(credentials ? { [domain]: credentials } : {}),
  });
}

/** The registry client for a request: the service's, or one with the X-Registry-Auth credentials. */
export function registryClientFor(
  base: RegistryClient,
  domain: string,
  header: string | undefined,
): RegistryClient {
  const credentials = credentialsOf(decodeRegistryAuth(header));
  return credentials ? clientWithCredentials(base, domain, credentials) : base;
}

/**
 * Check `config` against its registry; resolves when the registry accepts it. A refusal is an
 * ApiError 401 with Docker's message.
 */
export async function checkLogin(base: RegistryClient, config: AuthConfig): Promise<void> {
  const domain = registryDomain(config.serveraddress);
  const client = clientWithCredentials(base, domain, credentialsOf(config));
  const endpoint = client.endpoints(domain, 'push')[0];
  if (!endpoint) throw invalidArgument(`no endpoint for registry ${domain}`);
  await client.ping(endpoint);
  let authorization: string | undefined;
  try {
    authorization = await client.authorizer.header(endpoint, []);
  } catch (err) {
    if (err instanceof UnauthorizedError) throw new ApiError(401, err.message);
    throw err;
  }
  const url = `${endpoint.url}/v2/`;
  const response = await client.transport.send({
    method: 'GET',
    url,
    headers: authorization ? { authorization } : {},
    retry: false,
  });
  await response.discard();
  if (response.status === 401 || response.status === 403) {
    const reason = response.status === 401 ? 'Unauthorized' : 'Forbidden';
    throw new ApiError(401, `login attempt to ${url} failed with status: ${response.status} ${reason}`);
  }
  if (!response.ok) throw new ApiError(500, `login attempt to ${url} failed with status: ${response.status}`);
}

export function registerAuthRoute(router: Router, registry: RegistryClient): void {
  router.post('/auth', async (ctx) => {
    const body = await ctx.json<AuthConfig>();
    if (!body || typeof body !== 'object') throw invalidArgument('the login request has no credentials');
    await checkLogin(registry, body);
    return { Status: 'Login Succeeded', IdentityToken: '' };
  });
}
