/**
 * Reading an image archive (a `docker save` tarball or an OCI archive, optionally gzip or zstd
 * compressed) member by member, in whatever order they come: every blob-like member goes into
 * the content store as it streams past (verified against its name when the name is a digest,
 * else spooled to a temporary file and stored under the sha256 computed on the way), links are
 * remembered, and the small metadata files are kept in memory for resolving names at the end.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { openLayerStream, type LayerStream } from '../../archive/layer-format.js';
import { readTar } from '../../archive/tar-reader.js';
import { BerthError, invalidArgument } from '../../common/errors.js';
import { ContentVerificationError } from '../../content/fs-store.js';
import type { ContentStore } from '../../content/store.js';

/** Files read into memory rather than stored as blobs. */
export const METADATA_FILES = new Set(['manifest.json', 'index.json', 'repositories', 'oci-layout']);
const METADATA_LIMIT = 16 * 1024 * 1024;
/** Legacy per-layer files (`<v1 id>/json`, `<v1 id>/VERSION`) that berth does not need. */
const LEGACY_LAYER_FILE = /^[^/]+\/(?:json|VERSION)$/;
/** Members whose name is their digest: OCI blobs and the legacy `<config hex>.json`. */
const DIGEST_NAMED = [/^blobs\/sha256\/([0-9a-f]{64})$/, /^([0-9a-f]{64})\.json$/];

export interface ArchiveContents {
  /** Regular members stored in the content store, by cleaned path. */
  blobs: Map<string, { digest: string; size: number }>;
  /** Symbolic and hard links, by cleaned path: the cleaned path they lead to. */
  links: Map<string, string>;
  metadata: Map<string, Buffer>;
}

export interface IngestArchiveOptions {
  content: ContentStore;
  /** Where members without a digest in their name are spooled (same filesystem as the store is best). */
  tempDir: string;
  signal?: AbortSignal;
}

export const archiveError = (message: string): BerthError =>
  invalidArgument(`invalid image archive: ${message}`);

/** Restate the tar reader's and decompressor's layer-worded errors for a whole archive. */
function restated(err: unknown): unknown {
  if (!(err instanceof BerthError) || err.kind !== 'invalid-argument') return err;
  if (err.message.startsWith('invalid image archive')) return err;
  return archiveError(err.message.replace(/^layer tar: /, '').replace(/^layer /, 'the archive '));
}

/** A member path, relative and clean; absolute paths and `..` are refused. */
export function memberPath(raw: string): string {
  if (raw.startsWith('/')) throw archiveError(`member "${raw}" has an absolute path`);
  const parts = raw.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw archiveError(`member "${raw}" has a path that leaves the archive ("..")`);
  if (parts.length === 0) throw archiveError(`member "${raw}" has an empty path`);
  return parts.join('/');
}

/** Where a symbolic link inside the archive leads, as a member path; links out of it are refused. */
function symlinkTarget(path: string, target: string): string {
  if (target.startsWith('/')) throw archiveError(`member "${path}" is a link to an absolute path`);
  const resolved = posix.normalize(posix.join(posix.dirname(path), target));
  if (resolved === '..' || resolved.startsWith('../')) {
    throw archiveError(`member "${path}" is a link that leaves the archive`);
  }
  return memberPath(resolved);
}

async function readBounded(body: AsyncIterable<Buffer>, size: number, path: string): Promise<Buffer> {
  if (size > METADATA_LIMIT) throw archiveError(`"${path}" is ${size} bytes, more than ${METADATA_LIMIT}`);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function ingestNamed(
  content: ContentStore,
  path: string,
  digest: string,
  size: number,
  body: AsyncIterable<Buffer>,
): Promise<void> {
  try {
    await content.ingest({ digest, size }, async () => ({ offset: 0, stream: body }));
  } catch (err) {
    // A partial ingest of untrusted bytes is not worth resuming.
    await content.abortIngest(`sha256-${digest.slice(7)}`).catch(() => undefined);
    if (err instanceof ContentVerificationError) {
      throw archiveError(`member "${path}" does not match its digest (${err.message})`);
    }
    throw err;
  }
}

/** Spool a member to a file while hashing it, then store it under the digest found. */
async function ingestSpooled(
  options: IngestArchiveOptions,
  size: number,
  body: AsyncIterable<Buffer>,
): Promise<string> {
  await mkdir(options.tempDir, { recursive: true });
  const file = join(options.tempDir, `member-${randomBytes(8).toString('hex')}`);
  try {
    const hash = createHash('sha256');
    const handle = await open(file, 'wx', 0o600);
    try {
      for await (const chunk of body) {
        hash.update(chunk);
        await handle.write(chunk);
      }
    } finally {
      await handle.close();
    }
    const digest = `sha256:${hash.digest('hex')}`;
    await options.content.ingest({ digest, size }, async (offset) => ({
      offset,
      stream: createReadStream(file, { start: offset }),
    }));
    return digest;
  } finally {
    await rm(file, { force: true });
  }
}

async function ingestMember(
  options: IngestArchiveOptions,
  path: string,
  size: number,
  body: AsyncIterable<Buffer>,
): Promise<string> {
  for (const pattern of DIGEST_NAMED) {
    const hex = pattern.exec(path)?.[1];
    if (hex !== undefined) {
      await ingestNamed(options.content, path, `sha256:${hex}`, size, body);
      return `sha256:${hex}`;
    }
  }
  return ingestSpooled(options, size, body);
}

export async function ingestArchive(
  input: AsyncIterable<Uint8Array>,
  options: IngestArchiveOptions,
): Promise<ArchiveContents> {
  const contents: ArchiveContents = { blobs: new Map(), links: new Map(), metadata: new Map() };
  let stream: LayerStream;
  try {
    stream = await openLayerStream(input, { maxSize: Number.MAX_SAFE_INTEGER });
  } catch (err) {
    throw restated(err);
  }
  try {
    for await (const { header, body } of readTar(stream.source)) {
      options.signal?.throwIfAborted();
      const path = memberPath(header.path);
      switch (header.type) {
        case 'directory':
          break;
        case 'symlink':
          contents.links.set(path, symlinkTarget(path, header.linkTarget));
          break;
        case 'hardlink':
          contents.links.set(path, memberPath(header.linkTarget));
          break;
        case 'file':
          if (METADATA_FILES.has(path))
            contents.metadata.set(path, await readBounded(body, header.size, path));
          else if (!LEGACY_LAYER_FILE.test(path)) {
            contents.blobs.set(path, {
              digest: await ingestMember(options, path, header.size, body),
              size: header.size,
            });
          }
          break;
        default:
          throw archiveError(`member "${path}" is a ${header.type}, which an image archive never holds`);
      }
    }
  } catch (err) {
    throw restated(err);
  } finally {
    await stream.source.close();
  }
  return contents;
}

/** The blob a member path leads to, following links (at most 16 of them); undefined when none. */
export function findMemberBlob(
  contents: ArchiveContents,
  path: string,
): { digest: string; size: number } | undefined {
  let current = memberPath(path);
  for (let hops = 0; hops <= 16; hops++) {
    const blob = contents.blobs.get(current);
    if (blob) return blob;
    const next = contents.links.get(current);
    if (next === undefined) return undefined;
    current = next;
  }
  return undefined;
}

/** Like findMemberBlob, for a path the archive's metadata (`where`) refers to: it must be there. */
export function memberBlob(
  contents: ArchiveContents,
  path: string,
  where: string,
): { digest: string; size: number } {
  const blob = findMemberBlob(contents, path);
  if (!blob) throw archiveError(`${where} refers to "${path}", which is not in the archive`);
  return blob;
}
