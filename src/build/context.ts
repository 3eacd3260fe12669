/**
 * The build context: the tar stream a client sends (plain or gzip/zstd compressed) unpacked into
 * a directory, the Dockerfile read from it, and `.dockerignore` applied as the daemon does (files
 * the client sent anyway, the Dockerfile and .dockerignore themselves when they are ignored, are
 * removed before any COPY sees them).
 */
import { lstat, mkdir, readFile, readdir, rm, rmdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import * as dockerignoreModule from '@balena/dockerignore';
import { applyTar } from '../archive/apply.js';
import { ByteSource } from '../archive/byte-source.js';
import { errnoCode, invalidArgument, notFound } from '../common/errors.js';

type IgnoreFactory = () => { add(patterns: string[]): { ignores(path: string): boolean } };
const loaded = dockerignoreModule as unknown as { default: IgnoreFactory | { default: IgnoreFactory } };
/** The CommonJS module's export, however the loader (Node.js or a bundler) presents it. */
const ignoreFactory: IgnoreFactory =
  typeof loaded.default === 'function' ? loaded.default : loaded.default.default;

export const DOCKERIGNORE = '.dockerignore';

/** Patterns of a .dockerignore text: one per line, `#` comments and blank lines skipped. */
export function parseDockerignore(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** A matcher with Docker's rules: `**`, `!` re-includes, leading `/` ignored, a directory covers its contents. */
export function ignoreMatcher(patterns: string[]): (path: string) => boolean {
  if (patterns.length === 0) return () => false;
  const matcher = ignoreFactory().add(patterns);
  return (path) => path !== '' && matcher.ignores(path);
}

/** Unpack a context tar stream into `dir` (which it creates). An empty stream is an empty context. */
export async function unpackContext(input: AsyncIterable<Uint8Array>, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const source = new ByteSource(input);
  const head = await source.read(1);
  if (head.length === 0) return;
  source.unshift(head);
  try {
    await applyTar(source.rest(), dir, {
      mode: 'flat',
      preserveOwnership: false,
      allowDevices: false,
      onRefused: 'skip',
    });
  } catch (err) {
    throw invalidArgument(`the build context is not a valid tar archive: ${(err as Error).message}`);
  }
}

/** Clean a context-relative path; refuses paths that leave the context. */
export function contextPath(path: string): string {
  const cleaned = posix.normalize(`/${path}`).slice(1);
  return cleaned.replace(/\/+$/, '');
}

/** Read the Dockerfile at `name` inside the context (Docker also tries `dockerfile` for the default). */
export async function readContextDockerfile(
  dir: string,
  name: string,
): Promise<{ text: string; path: string }> {
  const candidates = [contextPath(name)];
  if (name === 'Dockerfile') candidates.push('dockerfile');
  for (const candidate of candidates) {
    try {
      const stat = await lstat(join(dir, candidate));
      if (!stat.isFile()) continue;
      return { text: await readFile(join(dir, candidate), 'utf8'), path: candidate };
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err;
    }
  }
  throw notFound(`Cannot locate specified Dockerfile: ${name}`);
}

/** Remove what `.dockerignore` in `dir` excludes; a directory stays when something in it is re-included. */
export async function applyDockerignore(dir: string): Promise<void> {
  let text: string;
  try {
    text = await readFile(join(dir, DOCKERIGNORE), 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  const ignored = ignoreMatcher(parseDockerignore(text));
  const walk = async (relative: string): Promise<void> => {
    for (const entry of await readdir(join(dir, relative), { withFileTypes: true })) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) {
        await walk(path);
        if (ignored(path)) await rmdir(join(dir, path)).catch(() => undefined);
      } else if (ignored(path)) await rm(join(dir, path), { force: true });
    }
  };
  await walk('');
}
