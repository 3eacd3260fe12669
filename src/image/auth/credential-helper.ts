/**
 * Docker credential helpers: `docker-credential-<name> get` reads the server address on stdin and
 * prints `{"ServerURL","Username","Secret"}`. Run with an argument array, never a shell, bounded in
 * time and output.
 */
import { execFile } from 'node:child_process';
import { invalidArgument, unavailable } from '../../common/errors.js';
import type { Credentials } from './credentials.js';

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** What helpers print when they hold nothing for the address. */
const NOT_FOUND = /credentials not found/i;
/** A helper that answers `Username: "<token>"` hands out an identity (refresh) token. */
const IDENTITY_TOKEN_USER = '<token>';

export interface HelperOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export async function helperGet(
  helper: string,
  serverAddress: string,
  options: HelperOptions = {},
): Promise<Credentials | undefined> {
  if (!HELPER_NAME.test(helper)) throw invalidArgument(`invalid credential helper name "${helper}"`);
  const program = `docker-credential-${helper}`;
  const { code, stdout, stderr, error } = await new Promise<{
    code: number;
    stdout: string;
    stderr: string;
    error?: Error;
  }>((resolve) => {
    const child = execFile(
      program,
      ['get'],
      { timeout: options.timeoutMs ?? 10_000, maxBuffer: 1024 * 1024, env: options.env ?? process.env },
      (err, out, errOut) => {
        const exit = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({
          code: exit,
          stdout: String(out),
          stderr: String(errOut),
          error: exit === -1 ? (err ?? undefined) : undefined,
        });
      },
    );
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(serverAddress);
  });
  if (error) throw unavailable(`credential helper ${program} could not run: ${error.message}`);
  if (code !== 0) {
    if (NOT_FOUND.test(stdout) || NOT_FOUND.test(stderr)) return undefined;
    throw unavailable(
      `credential helper ${program} failed for ${serverAddress}: ${(stderr || stdout).trim()}`,
    );
  }
  let answer: { Username?: unknown; Secret?: unknown };
  try {
    answer = JSON.parse(stdout) as typeof answer;
  } catch {
    throw unavailable(`credential helper ${program} printed something that is not JSON`);
  }
  const username = typeof answer.Username === 'string' ? answer.Username : '';
  const secret = typeof answer.Secret === 'string' ? answer.Secret : '';
  if (secret === '') return undefined;
  if (username === IDENTITY_TOKEN_USER) return { identityToken: secret };
  return { username, password: secret };
}
