/**
 * What ADD does beyond COPY: a local tar archive (plain, gzip, bzip2, xz or zstd) is extracted
 * into the destination, keeping the owners in the archive; a URL is downloaded (mode 0600, its
 * Last-Modified time) and never extracted. bzip2 and xz are decompressed by the system's
 * `bzip2`/`xz` programs.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, open, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { applyTar } from '../archive/apply.js';
import { looksLikeTarHeader } from '../archive/tar-reader.js';
import { invalidArgument, unavailable } from '../common/errors.js';
import { readHead, type CopySource } from './copy.js';

const DOWNLOAD_TIMEOUT_MS = 60_000;

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** The kind of archive a file starts with, if ADD would extract it. */
export function archiveKind(head: Buffer): ArchiveKind | undefined {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  if (head.length >= 512 && looksLikeTarHeader(head.subarray(0, 512))) return 'tar';
  return undefined;
}

/** A decompressing child process's output. */
function decompressWith(program: string, file: string): AsyncIterable<Uint8Array> {
  const child = spawn(program, ['-dc', '--', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', (err) =>
      reject(unavailable(`ADD needs ${program} to extract ${posix.basename(file)}: ${err.message}`)),
    );
    child.once('close', (code) =>
      code === 0
        ? resolve()
        : reject(invalidArgument(`${program} could not decompress the archive: ${stderr.trim()}`)),
    );
  });
  return (async function* () {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    await exited;
  })();
}

/**
 * If the file is an archive ADD extracts, extract it into `dir` and return the directory as a
 * source whose owners are kept; otherwise undefined.
 */
export async function extractIfArchive(
  file: string,
  name: string,
  dir: string,
): Promise<CopySource | undefined> {
  const kind = archiveKind(await readHead(file, 512));
  if (kind === undefined) return undefined;
  const input: AsyncIterable<Uint8Array> =
    kind === 'bzip2'
      ? decompressWith('bzip2', file)
      : kind === 'xz'
        ? decompressWith('xz', file)
        : createReadStream(file);
  await mkdir(dir, { recursive: true });
  try {
    await applyTar(input, dir, { mode: 'flat', allowDevices: false, onRefused: 'skip' });
  } catch (err) {
    throw invalidArgument(`ADD could not extract ${name}: ${(err as Error).message}`);
  }
  return { kind: 'path', name, hostPath: dir, isDir: true, preserveOwner: true };
}

export const isUrl = (source: string): boolean => /^https?:\/\//i.test(source);

/** Download `url` into `dir`; the file is named after the URL's last path segment. */
export async function download(url: string, dir: string, signal?: AbortSignal): Promise<CopySource> {
  let response: Response;
  const timeout = AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS);
  try {
    response = await fetch(url, {
      redirect: 'follow',
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw unavailable(`ADD failed: cannot download ${url}: ${cause}`);
  }
  if (!response.ok)
    throw unavailable(`ADD failed: cannot download ${url}: HTTP ${response.status} ${response.statusText}`);
  const name = posix.basename(new URL(url).pathname) || 'index.html';
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  const handle = await open(path, 'wx', 0o600);
  try {
    if (response.body)
      for await (const chunk of Readable.fromWeb(response.body as never)) await handle.write(chunk as Buffer);
  } finally {
    await handle.close();
  }
  const modified = Date.parse(response.headers.get('last-modified') ?? '');
  if (Number.isFinite(modified)) await utimes(path, modified / 1000, modified / 1000);
  return { kind: 'path', name, hostPath: path, isDir: false, mode: 0o600 };
}

/** Heredoc content as a file source. */
export function contentSource(name: string, content: string): CopySource {
  return { kind: 'content', name, content: Buffer.from(content), mode: 0o644 };
}
