/**
 * Filesystem content store:
 *
 *   <root>/content/blobs/sha256/<hex>         committed blobs (read-only files)
 *   <root>/content/labels/sha256/<hex>.json   labels of a blob
 *   <root>/content/ingest/sha256-<hex>/       a download in progress: `data` and `expected.json`
 *
 * One process owns a store: concurrent ingests of one digest are merged in memory, not by file locks.
 */
import { createHash, type Hash } from 'node:crypto';
import { constants, createReadStream } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { writeJsonAtomic, syncDir } from '../common/atomic-file.js';
import { BerthError, errnoCode, internal, invalidArgument, notFound, unavailable } from '../common/errors.js';
import { sha256Hex, sha256Of } from './digest.js';
import { MANIFEST_MEDIA_TYPES, MANIFEST_SIZE_MAX, referencedDescriptors } from './references.js';
import type {
  BlobInfo,
  BlobSource,
  ContentStore,
  ExpectedBlob,
  GcOptions,
  GcResult,
  IngestOptions,
  IngestResult,
  IngestStatus,
} from './store.js';

/** The bytes arrived but do not match the expected digest or size; nothing was committed. */
export class ContentVerificationError extends BerthError {
  constructor(message: string) {
    super('internal', message);
    this.name = 'ContentVerificationError';
  }
}

const INGEST_PREFIX = 'sha256-';
/** Open for positioned reads and writes, creating but not truncating (no O_APPEND: writes are positioned). */
const READ_WRITE_CREATE = constants.O_RDWR | constants.O_CREAT;

function validateExpected(expected: ExpectedBlob): string {
  const hex = sha256Hex(expected.digest);
  if (!Number.isSafeInteger(expected.size) || expected.size < 0) {
    throw invalidArgument(`invalid size ${expected.size} for blob ${expected.digest}`);
  }
  return hex;
}

/** Read a file's bytes into a hash, bounded by its current size. */
async function hashFile(handle: FileHandle, length: number, hash: Hash): Promise<void> {
  const buffer = Buffer.alloc(Math.min(length, 1024 * 1024) || 1);
  let position = 0;
  while (position < length) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, length - position), position);
    if (bytesRead === 0) throw internal(`partial ingest file shrank while reading it at ${position}`);
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
}

export class FsContentStore implements ContentStore {
  readonly contentDir: string;
  private readonly blobsDir: string;
  private readonly labelsDir: string;
  private readonly ingestDir: string;
  /** Ingests running in this process, by digest: a second caller waits for the first. */
  private readonly inflight = new Map<string, Promise<IngestResult>>();

  /** `root` is the data root; the store lives in `<root>/content`. */
  constructor(root: string) {
    this.contentDir = join(root, 'content');
    this.blobsDir = join(this.contentDir, 'blobs', 'sha256');
    this.labelsDir = join(this.contentDir, 'labels', 'sha256');
    this.ingestDir = join(this.contentDir, 'ingest');
  }

  blobPath(digest: string): string {
    return join(this.blobsDir, sha256Hex(digest));
  }

  private labelsPath(hex: string): string {
    return join(this.labelsDir, `${hex}.json`);
  }

  private async readLabels(hex: string): Promise<Record<string, string>> {
    try {
      return JSON.parse(await readFile(this.labelsPath(hex), 'utf8')) as Record<string, string>;
    } catch (err) {
      // Labels are written without fsync (see setLabels): one torn by a crash counts as none.
      if (errnoCode(err) === 'ENOENT' || err instanceof SyntaxError) return {};
      throw err;
    }
  }

  async info(digest: string): Promise<BlobInfo | undefined> {
    const hex = sha256Hex(digest);
    try {
      const stats = await stat(join(this.blobsDir, hex));
      return { digest, size: stats.size, committedAt: stats.mtime, labels: await this.readLabels(hex) };
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  private async requireInfo(digest: string): Promise<BlobInfo> {
    const info = await this.info(digest);
    if (!info) throw notFound(`blob ${digest} is not in the content store`);
    return info;
  }

  async open(digest: string): Promise<FileHandle> {
    await this.requireInfo(digest);
    return open(this.blobPath(digest), 'r');
  }

  async read(digest: string, options: { offset?: number } = {}): Promise<Readable> {
    const info = await this.requireInfo(digest);
    const start = options.offset ?? 0;
    if (!Number.isSafeInteger(start) || start < 0 || start > info.size) {
      throw invalidArgument(`offset ${start} is outside blob ${digest} (${info.size} bytes)`);
    }
    return createReadStream(this.blobPath(digest), { start });
  }

  async readAll(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw notFound(`blob ${digest} is not in the content store`);
      throw err;
    }
  }

  async delete(digest: string): Promise<boolean> {
    const hex = sha256Hex(digest);
    let existed = true;
    try {
      await rm(join(this.blobsDir, hex));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      existed = false;
    }
    await rm(this.labelsPath(hex), { force: true });
    return existed;
  }

  async *walk(): AsyncIterable<BlobInfo> {
    let names: string[];
    try {
      names = await readdir(this.blobsDir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    for (const name of names) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      const info = await this.info(`sha256:${name}`);
      if (info) yield info;
    }
  }

  async setLabels(digest: string, labels: Record<string, string>): Promise<BlobInfo> {
    const info = await this.requireInfo(digest);
    const merged = { ...info.labels, ...labels };
    // Labels are hints that are learnt again (where a blob came from, its unpacked size): atomic,
    // but not worth two fsyncs per blob of a pull.
    await writeJsonAtomic(this.labelsPath(sha256Hex(digest)), merged, { durable: false });
    return { ...info, labels: merged };
  }

  async writeBlob(
    data: Uint8Array,
    expected: Partial<ExpectedBlob> = {},
    labels?: Record<string, string>,
  ): Promise<BlobInfo> {
    const digest = sha256Of(data);
    if (expected.digest !== undefined && expected.digest !== digest) {
      throw new ContentVerificationError(`blob digest mismatch: expected ${expected.digest}, got ${digest}`);
    }
    if (expected.size !== undefined && expected.size !== data.length) {
      throw new ContentVerificationError(
        `blob ${digest} size mismatch: expected ${expected.size} bytes, got ${data.length}`,
      );
    }
    const result = await this.ingest(
      { digest, size: data.length },
      async (offset) => ({
        offset,
        stream: (async function* () {
          yield data.subarray(offset);
        })(),
      }),
      labels ? { labels } : {},
    );
    return result.info;
  }

  async ingest(
    expected: ExpectedBlob,
    source: BlobSource,
    options: IngestOptions = {},
  ): Promise<IngestResult> {
    validateExpected(expected);
    const existing = await this.info(expected.digest);
    if (existing) {
      if (existing.size !== expected.size) {
        throw new ContentVerificationError(
          `blob ${expected.digest} in the store has ${existing.size} bytes, expected ${expected.size}`,
        );
      }
      const info = options.labels ? await this.setLabels(expected.digest, options.labels) : existing;
      return { info, outcome: 'exists', resumedFrom: 0 };
    }
    const running = this.inflight.get(expected.digest);
    if (running) {
      const shared = await running;
      const info = options.labels ? await this.setLabels(expected.digest, options.labels) : shared.info;
      return { info, outcome: 'shared', resumedFrom: 0 };
    }
    const work = this.runIngest(expected, source, options);
    this.inflight.set(expected.digest, work);
    try {
      return await work;
    } finally {
      this.inflight.delete(expected.digest);
    }
  }

  private async runIngest(
    expected: ExpectedBlob,
    source: BlobSource,
    options: IngestOptions,
  ): Promise<IngestResult> {
    const hex = sha256Hex(expected.digest);
    // Another ingest may have committed between the caller's check and this one's start.
    const committed = await this.info(expected.digest);
    if (committed) {
      const info = options.labels ? await this.setLabels(expected.digest, options.labels) : committed;
      return { info, outcome: 'exists', resumedFrom: 0 };
    }
    const dir = join(this.ingestDir, INGEST_PREFIX + hex);
    await mkdir(dir, { recursive: true });
    const expectedPath = join(dir, 'expected.json');
    const previous = await readFile(expectedPath, 'utf8')
      .then((text) => JSON.parse(text) as ExpectedBlob)
      .catch(() => undefined);
    const dataPath = join(dir, 'data');
    if (!previous || previous.size !== expected.size || previous.digest !== expected.digest) {
      await rm(dataPath, { force: true });
      await writeJsonAtomic(expectedPath, { digest: expected.digest, size: expected.size });
    }
    let handle = await open(dataPath, READ_WRITE_CREATE);
    let resumedFrom: number;
    try {
      let attempt = await this.fill(handle, expected, source, options);
      resumedFrom = attempt.resumedFrom;
      // Partial data from before a crash may be damaged; a resumed ingest that fails verification
      // gets one fresh start before giving up.
      if (attempt.digest !== expected.digest && attempt.resumedFrom > 0) {
        await handle.close();
        await rm(dataPath, { force: true });
        handle = await open(dataPath, READ_WRITE_CREATE);
        attempt = await this.fill(handle, expected, source, options);
        resumedFrom = 0;
      }
      if (attempt.digest !== expected.digest) {
        await handle.close();
        await rm(dir, { recursive: true, force: true });
        throw new ContentVerificationError(
          `blob digest mismatch: expected ${expected.digest}, the content has ${attempt.digest}`,
        );
      }
      await handle.sync();
    } finally {
      await handle.close().catch(() => undefined);
    }
    await this.commit(hex, dataPath, dir);
    const info = options.labels
      ? await this.setLabels(expected.digest, options.labels)
      : await this.requireInfo(expected.digest);
    return { info, outcome: 'written', resumedFrom };
  }

  /** Bring the partial file to the expected size from `source`; returns the digest of what it holds. */
  private async fill(
    handle: FileHandle,
    expected: ExpectedBlob,
    source: BlobSource,
    options: IngestOptions,
  ): Promise<{ digest: string; resumedFrom: number }> {
    let hash = createHash('sha256');
    let current = (await handle.stat()).size;
    if (current > expected.size) {
      await handle.truncate(0);
      current = 0;
    }
    await hashFile(handle, current, hash);
    const resumedFrom = current;
    if (current < expected.size) {
      options.signal?.throwIfAborted();
      const opened = await source(current);
      if (opened.offset !== current) {
        if (opened.offset !== 0) {
          await opened.stream[Symbol.asyncIterator]().return?.();
          throw internal(`blob source for ${expected.digest} started at ${opened.offset}, not ${current}`);
        }
        await handle.truncate(0);
        hash = createHash('sha256');
        current = 0;
      }
      options.onProgress?.({ current, total: expected.size });
      for await (const chunk of opened.stream) {
        options.signal?.throwIfAborted();
        if (current + chunk.length > expected.size) {
          await handle.truncate(0);
          throw new ContentVerificationError(
            `blob ${expected.digest} size mismatch: more than the expected ${expected.size} bytes arrived`,
          );
        }
        let written = 0;
        while (written < chunk.length) {
          const { bytesWritten } = await handle.write(
            chunk,
            written,
            chunk.length - written,
            current + written,
          );
          written += bytesWritten;
        }
        hash.update(chunk);
        current += chunk.length;
        options.onProgress?.({ current, total: expected.size });
      }
      if (current < expected.size) {
        // The partial data stays for the next attempt to resume from.
        throw unavailable(
          `blob ${expected.digest} ended early: ${current} of ${expected.size} bytes arrived`,
        );
      }
    }
    return { digest: `sha256:${hash.digest('hex')}`, resumedFrom };
  }

  private async commit(hex: string, dataPath: string, ingestDir: string): Promise<void> {
    await mkdir(this.blobsDir, { recursive: true });
    await chmod(dataPath, 0o444);
    await rename(dataPath, join(this.blobsDir, hex));
    await syncDir(this.blobsDir);
    await rm(ingestDir, { recursive: true, force: true });
  }

  async listIngests(): Promise<IngestStatus[]> {
    let names: string[];
    try {
      names = await readdir(this.ingestDir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw err;
    }
    const found: IngestStatus[] = [];
    for (const ref of names) {
      try {
        const expected = JSON.parse(
          await readFile(join(this.ingestDir, ref, 'expected.json'), 'utf8'),
        ) as ExpectedBlob;
        const data = await stat(join(this.ingestDir, ref, 'data')).catch(() => undefined);
        found.push({ ref, expected, offset: data?.size ?? 0, updatedAt: data?.mtime ?? new Date(0) });
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
    }
    return found;
  }

  async abortIngest(ref: string): Promise<void> {
    if (!/^sha256-[0-9a-f]{64}$/.test(ref)) throw invalidArgument(`invalid ingest ref "${ref}"`);
    if (this.inflight.has(`sha256:${ref.slice(INGEST_PREFIX.length)}`)) {
      throw unavailable(`ingest ${ref} is running`);
    }
    await rm(join(this.ingestDir, ref), { recursive: true, force: true });
  }

  /** The stored blobs among `digests`. */
  private async *infos(digests: Iterable<string>): AsyncIterable<BlobInfo> {
    for (const digest of new Set(digests)) {
      const info = await this.info(digest);
      if (info) yield info;
    }
  }

  async gc(roots: Iterable<string>, options: GcOptions = {}): Promise<GcResult> {
    const live = new Set<string>();
    const queue: string[] = [];
    for (const root of roots) {
      sha256Hex(root, 'root digest');
      if (!live.has(root)) queue.push(root);
      live.add(root);
    }
    if (options.followReferences !== false) {
      // Each digest is queued at most once, so this ends after at most one pass over the store.
      while (queue.length > 0) {
        const digest = queue.shift() as string;
        const info = await this.info(digest);
        if (!info || info.size > MANIFEST_SIZE_MAX) continue;
        for (const child of referencedDescriptors(await this.readAll(digest))) {
          if (live.has(child.digest)) continue;
          live.add(child.digest);
          if (MANIFEST_MEDIA_TYPES.has(child.mediaType)) queue.push(child.digest);
        }
      }
    }
    const removed: string[] = [];
    let reclaimedBytes = 0;
    for await (const blob of options.only ? this.infos(options.only) : this.walk()) {
      if (live.has(blob.digest) || this.inflight.has(blob.digest)) continue;
      await options.onRemove?.(blob.digest);
      if (await this.delete(blob.digest)) {
        removed.push(blob.digest);
        reclaimedBytes += blob.size;
      }
    }
    return { live, removed, reclaimedBytes };
  }
}
