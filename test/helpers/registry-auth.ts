/**
 * Debian's docker-registry with authentication, for the registry client's tests:
 * - basic auth from an htpasswd file (bcrypt hashes made with libcrypt through perl's crypt(),
 *   so apache2-utils is not needed),
 * - token auth: a small token server on 127.0.0.1 issuing RS256 JWTs signed with a key whose
 *   self-signed certificate (made with openssl) is the registry's root certificate bundle.
 * Same port and lifetime handling as test/helpers/registry.ts.
 */
import { createPrivateKey, createSign, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execOk, execProgram } from './exec.js';
import { startRegistryIn, type Registry } from './registry.js';

/** docker-registry with `authYaml` (lines under `auth:`, already indented), storage in `dir`. */
const startWithAuth = (dir: string, authYaml: string[]): Promise<Registry> =>
  startRegistryIn(dir, ['auth:', ...authYaml]);

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A bcrypt hash of `password` from the system's libcrypt (through perl), or undefined when this
 * machine's crypt() has no bcrypt.
 */
export async function bcryptHash(password: string): Promise<string | undefined> {
  const salt = Array.from(randomBytes(22), (byte) => BCRYPT_ALPHABET[byte % 64]).join('');
  const result = await execProgram(
    'perl',
    ['-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$05$${salt}`],
    {
      timeoutMs: 20_000,
    },
  ).catch(() => undefined);
  const hash = result?.stdout.trim();
  return hash?.startsWith('$2b$05$') && hash.length === 60 ? hash : undefined;
}

export interface AuthRegistry extends Registry {
  /** Bearer registries only: every token request the token server saw. */
  tokenRequests: TokenRequest[];
}

export interface TokenRequest {
  scopes: string[];
  service: string | null;
  /** The user who authenticated to the token server, if any. */
  user: string | undefined;
}

/** docker-registry demanding basic auth from `users`; undefined when no bcrypt is available. */
export async function startBasicAuthRegistry(
  users: Record<string, string>,
): Promise<AuthRegistry | undefined> {
  const lines: string[] = [];
  for (const [user, password] of Object.entries(users)) {
    const hash = await bcryptHash(password);
    if (!hash) return undefined;
    lines.push(`${user}:${hash}`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'berth-registry-basic-'));
  try {
    const htpasswd = join(dir, 'htpasswd');
    await writeFile(htpasswd, lines.join('\n') + '\n');
    const registry = await startWithAuth(dir, [
      '  htpasswd:',
      '    realm: berth-test',
      `    path: ${htpasswd}`,
    ]);
    return {
      ...registry,
      tokenRequests: [],
      stop: async () => {
        await registry.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

const base64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

function signJwt(key: KeyObject, certDer: Buffer, claims: Record<string, unknown>): string {
  const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(signingInput).sign(key);
  return `${signingInput}.${base64url(signature)}`;
}

export const TOKEN_SERVICE = 'berth-test-registry';
const TOKEN_ISSUER = 'berth-test-token-issuer';

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

/**
 * docker-registry with token auth and its token server. Users with a password get every action
 * they ask for; anonymous requests get `pull` only. `tokenField` picks the response field.
 */
export async function startTokenAuthRegistry(
  users: Record<string, string>,
  tokenField: 'token' | 'access_token' = 'token',
): Promise<AuthRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-registry-token-'));
  const cleanups: Array<() => Promise<void>> = [() => rm(dir, { recursive: true, force: true })];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.reverse()) await step();
  };
  try {
    const keyPath = join(dir, 'token.key');
    const certPath = join(dir, 'token.crt');
    await execOk(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-days',
        '2',
        '-subj',
        '/CN=berth-test-token',
      ],
      { timeoutMs: 60_000 },
    );
    const key = createPrivateKey(await readFile(keyPath));
    const certDer = new X509Certificate(await readFile(certPath)).raw;
    const tokenRequests: TokenRequest[] = [];

    const server = createHttpServer((request, response) => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      let user: string | undefined;
      const authorization = request.headers.authorization;
      if (authorization?.startsWith('Basic ')) {
        const [name, ...rest] = Buffer.from(authorization.slice(6), 'base64').toString().split(':');
        if (name === undefined || users[name] === undefined || users[name] !== rest.join(':')) {
          response.writeHead(401, { 'content-type': 'application/json' });
          response.end(JSON.stringify({ details: 'incorrect username or password' }));
          return;
        }
        user = name;
      }
      const scopes = url.searchParams.getAll('scope');
      tokenRequests.push({ scopes, service: url.searchParams.get('service'), user });
      const access = scopes.flatMap((scope) => {
        const [type, name, actions] = [
          scope.split(':')[0],
          scope.split(':').slice(1, -1).join(':'),
          scope.split(':').at(-1),
        ];
        if (type !== 'repository' || !name || !actions) return [];
        const granted = actions.split(',').filter((action) => user !== undefined || action === 'pull');
        return [{ type, name, actions: granted }];
      });
      const now = Math.floor(Date.now() / 1000);
      const token = signJwt(key, certDer, {
        iss: TOKEN_ISSUER,
        sub: user ?? '',
        aud: TOKEN_SERVICE,
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString('hex'),
        access,
      });
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({ [tokenField]: token, expires_in: 300, issued_at: new Date().toISOString() }),
      );
    });
    const tokenPort = await listen(server);
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    );
    server.unref();

    const registry = await startWithAuth(dir, [
      '  token:',
      `    realm: http://127.0.0.1:${tokenPort}/token`,
      `    service: ${TOKEN_SERVICE}`,
      `    issuer: ${TOKEN_ISSUER}`,
      `    rootcertbundle: ${certPath}`,
    ]);
    cleanups.push(() => registry.stop());
    return { ...registry, tokenRequests, stop: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
