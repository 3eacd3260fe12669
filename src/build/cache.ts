/**
 * The build cache: step key -> the image that step produced, in one small JSON index under
 * `<dataRoot>/build-cache/` written atomically. A key is the sha256 of the parent image ID, the
 * instruction after expansion (its history text, which names the build args it saw and the
 * content checksums of what it copies) and whatever else changes the result (RUN mounts and
 * network). Entries are checked before use: an image whose blobs or snapshots were collected is
 * a miss, not an error.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../common/atomic-file.js';
import { errnoCode } from '../common/errors.js';

export interface CacheEntry {
  /** Image ID (config digest). */
  id: string;
  /** Manifest digest of that image. */
  manifest: string;
}

interface IndexDocument {
  version: 1;
  entries: Record<string, CacheEntry>;
}

/** The key of a step. */
export function cacheKey(parentId: string | undefined, createdBy: string, extra: string[] = []): string {
  return createHash('sha256')
    .update(JSON.stringify([parentId ?? 'scratch', createdBy, ...extra]))
    .digest('hex');
}

export class BuildCache {
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly entries: Map<string, CacheEntry>,
  ) {}

  static async open(dataRoot: string): Promise<BuildCache> {
    const dir = join(dataRoot, 'build-cache');
    let entries = new Map<string, CacheEntry>();
    try {
      const document = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as IndexDocument;
      if (document.version === 1 && typeof document.entries === 'object')
        entries = new Map(Object.entries(document.entries));
    } catch (err) {
      // A missing or unreadable index is an empty cache: it only costs a rebuild.
      if (errnoCode(err) !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
    }
    return new BuildCache(dir, entries);
  }

  get(key: string): CacheEntry | undefined {
    return this.entries.get(key);
  }

  /** Remember a step's image; writes are serialised so the index on disk is always whole. */
  set(key: string, entry: CacheEntry): Promise<void> {
    this.entries.set(key, entry);
    const write = this.writes.then(() =>
      writeJsonAtomic(join(this.dir, 'index.json'), {
        version: 1,
        entries: Object.fromEntries(this.entries),
      } satisfies IndexDocument),
    );
    this.writes = write.catch(() => undefined);
    return write;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Where `--mount=type=cache` directories live. */
  get mountsDir(): string {
    return join(this.dir, 'mounts');
  }
}
