/**
 * Registry authentication: what each endpoint demands (learnt from the WWW-Authenticate challenge
 * of `/v2/` or of any 401), basic credentials, and bearer tokens from the challenge's realm,
 * cached per realm, service and scope set until they expire.
 */
import { unavailable } from '../../common/errors.js';
import type { CredentialProvider, Credentials } from '../auth/credentials.js';
import { challengesFrom } from './challenge.js';
import { UnauthorizedError, registryMessage } from './errors.js';
import type { Endpoint } from './hosts.js';
import type { Transport } from './transport.js';

export type EndpointAuth =
  { scheme: 'none' } | { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service?: string };

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Docker assumes 60 s when a token response gives no lifetime, and so do we. */
const DEFAULT_TOKEN_LIFETIME_S = 60;
/** Renew this long before expiry so a token does not run out in flight. */
const EXPIRY_MARGIN_MS = 5_000;
const TOKEN_RESPONSE_LIMIT = 1024 * 1024;

interface TokenResponse {
  token?: unknown;
  access_token?: unknown;
  expires_in?: unknown;
  issued_at?: unknown;
}

export class Authorizer {
  private readonly endpointAuth = new Map<string, EndpointAuth>();
  private readonly tokens = new Map<string, CachedToken>();
  private readonly pendingTokens = new Map<string, Promise<CachedToken>>();
  private readonly credentials = new Map<string, Promise<Credentials | undefined>>();

  constructor(
    private readonly transport: Transport,
    private readonly provider: CredentialProvider | undefined,
    private readonly clientId = 'berth',
  ) {}

  known(endpoint: Endpoint): EndpointAuth | undefined {
    return this.endpointAuth.get(endpoint.url);
  }

  /** Record what a 200 (no auth) or 401 (challenge) answer says about the endpoint. */
  learn(endpoint: Endpoint, status: number, headers: Headers): EndpointAuth {
    let auth: EndpointAuth = { scheme: 'none' };
    if (status === 401) {
      const challenge = challengesFrom(headers)[0];
      if (challenge?.scheme === 'bearer' && challenge.params.realm) {
        auth = { scheme: 'bearer', realm: challenge.params.realm };
        if (challenge.params.service !== undefined) auth.service = challenge.params.service;
      } else {
        auth = { scheme: 'basic' };
      }
    }
    this.endpointAuth.set(endpoint.url, auth);
    return auth;
  }

  /** The scope a 401 challenge asks for (e.g. after `insufficient_scope`), if any. */
  challengedScopes(headers: Headers): string[] {
    const scope = challengesFrom(headers)[0]?.params.scope;
    return scope ? scope.split(' ').filter(Boolean) : [];
  }

  /** Forget cached tokens for an endpoint, so the next header() fetches a fresh one. */
  invalidate(endpoint: Endpoint): void {
    const auth = this.endpointAuth.get(endpoint.url);
    if (auth?.scheme !== 'bearer') return;
    for (const key of this.tokens.keys()) if (key.startsWith(`${auth.realm}|`)) this.tokens.delete(key);
  }

  private credentialsFor(registry: string): Promise<Credentials | undefined> {
    let found = this.credentials.get(registry);
    if (!found) {
      found = this.provider ? this.provider.get(registry) : Promise.resolve(undefined);
      this.credentials.set(registry, found);
      // A failed lookup (a helper that timed out) is asked again next time.
      found.catch(() => this.credentials.delete(registry));
    }
    return found;
  }

  /** The Authorization header for a request needing `scopes`, or undefined to go anonymous. */
  async header(endpoint: Endpoint, scopes: string[]): Promise<string | undefined> {
    const auth = this.endpointAuth.get(endpoint.url);
    if (!auth || auth.scheme === 'none') return undefined;
    const credentials = await this.credentialsFor(endpoint.registry);
    if (auth.scheme === 'basic') {
      if (credentials?.username === undefined) return undefined;
      const pair = `${credentials.username}:${credentials.password ?? ''}`;
      return `Basic ${Buffer.from(pair).toString('base64')}`;
    }
    const sorted = [...new Set(scopes)].sort();
    const key = `${auth.realm}|${auth.service ?? ''}|${sorted.join(' ')}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt - EXPIRY_MARGIN_MS > Date.now()) return `Bearer ${cached.token}`;
    // Parallel layer downloads that need the same token wait for one request.
    let pending = this.pendingTokens.get(key);
    if (!pending) {
      pending = this.fetchToken(endpoint, auth, sorted, credentials).finally(() =>
        this.pendingTokens.delete(key),
      );
      this.pendingTokens.set(key, pending);
    }
    const token = await pending;
    this.tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  private async fetchToken(
    endpoint: Endpoint,
    auth: { realm: string; service?: string },
    scopes: string[],
    credentials: Credentials | undefined,
  ): Promise<CachedToken> {
    let realm: URL;
    try {
      realm = new URL(auth.realm);
    } catch {
      throw unavailable(`registry ${endpoint.registry} names an invalid token realm "${auth.realm}"`);
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
      throw unavailable(
        `registry ${endpoint.registry} names a token realm that is not http(s): ${auth.realm}`,
      );
    }
    const response = credentials?.identityToken
      ? await this.transport.send({
          method: 'POST',
          url: realm.toString(),
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: () => {
            const form = new URLSearchParams({
              grant_type: 'refresh_token',
              refresh_token: credentials.identityToken as string,
              client_id: this.clientId,
            });
            if (auth.service !== undefined) form.set('service', auth.service);
            if (scopes.length > 0) form.set('scope', scopes.join(' '));
            return Buffer.from(form.toString());
          },
        })
      : await this.transport.send({
          method: 'GET',
          url: tokenUrl(realm, auth.service, scopes, credentials?.username),
          headers:
            credentials?.username !== undefined
              ? {
                  authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password ?? ''}`).toString('base64')}`,
                }
              : {},
        });
    const body = await response.text(TOKEN_RESPONSE_LIMIT);
    if (response.status === 401 || response.status === 403) {
      throw new UnauthorizedError(
        `authentication to ${endpoint.registry} failed${credentials ? '' : ' (no credentials)'}: ${registryMessage(body) || response.status}`,
      );
    }
    if (!response.ok) {
      throw unavailable(`token server ${realm.host} answered ${response.status}: ${registryMessage(body)}`);
    }
    let parsed: TokenResponse;
    try {
      parsed = JSON.parse(body) as TokenResponse;
    } catch {
      throw unavailable(`token server ${realm.host} answered with something that is not JSON`);
    }
    const token =
      typeof parsed.access_token === 'string' && parsed.access_token !== ''
        ? parsed.access_token
        : typeof parsed.token === 'string'
          ? parsed.token
          : '';
    if (token === '') throw unavailable(`token server ${realm.host} answered without a token`);
    const lifetime =
      typeof parsed.expires_in === 'number' && parsed.expires_in > 0
        ? parsed.expires_in
        : DEFAULT_TOKEN_LIFETIME_S;
    const issued = typeof parsed.issued_at === 'string' ? Date.parse(parsed.issued_at) : NaN;
    const start = Number.isNaN(issued) ? Date.now() : Math.min(issued, Date.now());
    return { token, expiresAt: start + lifetime * 1000 };
  }
}

function tokenUrl(
  realm: URL,
  service: string | undefined,
  scopes: string[],
  account: string | undefined,
): string {
  const url = new URL(realm);
  if (service !== undefined) url.searchParams.set('service', service);
  for (const scope of scopes) url.searchParams.append('scope', scope);
  if (account !== undefined) url.searchParams.set('account', account);
  return url.toString();
}

/** `repository:library/busybox:pull,push` */
export const repositoryScope = (path: string, actions: string): string => `repository:${path}:${actions}`;
