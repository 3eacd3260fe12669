/**
 * The build cache: step key -> the image that step produced, in one small JSON index under
 * `<dataRoot>/build-cache/` written atomically. A key is the sha256 of the parent image ID, the
 * instruction after expansion (its history text, which names the build args it saw and the
 * content checksums of what it copies) and whatever else changes the result (RUN mounts and
 * network). Entries are checked before use: an image whose blobs or snapshots were collected is
 * a miss, not an error.
 *
 * The index also keeps what `docker system df` and `docker builder prune` need: when each entry
 * and each `RUN --mount=type=cache` directory was made and last used, and how often.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../common/atomic-file.js';
import { errnoCode } from '../common/errors.js';

export interface CacheEntry {
  /** Image ID (config digest). */
  id: string;
  /** Manifest digest of that image. */
  manifest: string;
  /** The image the step started from ('' for scratch). */
  parent?: string;
  /** The step's history text. */
  description?: string;
  /** ISO 8601 times; entries from older indexes have none (the index's own time stands in). */
  created?: string;
  lastUsed?: string;
  usageCount?: number;
}

/** A `RUN --mount=type=cache` directory under `mounts/`, by directory name. */
export interface MountEntry {
  /** The mount's `id` (default: its target). */
  id: string;
  description: string;
  created: string;
  lastUsed: string;
  usageCount: number;
}

interface IndexDocument {
  version: 1;
  entries: Record<string, CacheEntry>;
  mounts?: Record<string, MountEntry>;
}

/** The key of a step. */
export function cacheKey(parentId: string | undefined, createdBy: string, extra: string[] = []): string {
  return createHash('sha256')
    .update(JSON.stringify([parentId ?? 'scratch', createdBy, ...extra]))
    .digest('hex');
}

export class BuildCache {
  private writes: Promise<void> = Promise.resolve();
  private dirty = false;

  private constructor(
    readonly dir: string,
    private readonly entries: Map<string, CacheEntry>,
    private readonly mountEntries: Map<string, MountEntry>,
    /** When the index was last written: the creation time of entries that have none. */
    readonly indexTime: string,
  ) {}

  static async open(dataRoot: string): Promise<BuildCache> {
    const dir = join(dataRoot, 'build-cache');
    const file = join(dir, 'index.json');
    let entries = new Map<string, CacheEntry>();
    let mounts = new Map<string, MountEntry>();
    let indexTime = new Date().toISOString();
    try {
      const document = JSON.parse(await readFile(file, 'utf8')) as IndexDocument;
      if (document.version === 1 && typeof document.entries === 'object') {
        entries = new Map(Object.entries(document.entries));
        mounts = new Map(Object.entries(document.mounts ?? {}));
      }
      indexTime = (await stat(file)).mtime.toISOString();
    } catch (err) {
      // A missing or unreadable index is an empty cache: it only costs a rebuild.
      if (errnoCode(err) !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
    }
    return new BuildCache(dir, entries, mounts, indexTime);
  }

  get(key: string): CacheEntry | undefined {
    return this.entries.get(key);
  }

  /** Every entry, by key. */
  list(): Array<[string, CacheEntry]> {
    return [...this.entries];
  }

  /** Every known cache mount directory, by name. */
  listMounts(): Array<[string, MountEntry]> {
    return [...this.mountEntries];
  }

  /** Remember a step's image; writes are serialised so the index on disk is always whole. */
  set(key: string, entry: Pick<CacheEntry, 'id' | 'manifest' | 'parent' | 'description'>): Promise<void> {
    const now = new Date().toISOString();
    this.entries.set(key, { ...entry, created: now, lastUsed: now, usageCount: 1 });
    return this.write();
  }

  /** A cache hit: the entry was used now (written with the next write or flush()). */
  touch(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.lastUsed = new Date().toISOString();
    entry.usageCount = (entry.usageCount ?? 1) + 1;
    this.dirty = true;
  }

  /** Forget an entry whose image is gone (written with the next write or flush()). */
  delete(key: string): void {
    if (this.entries.delete(key)) this.dirty = true;
  }

  /** Where `--mount=type=cache` directories live. */
  get mountsDir(): string {
    return join(this.dir, 'mounts');
  }

  /** The directory of cache mount `id`, noted as used now by `description`. */
  useMount(id: string, description: string): string {
    const name = cacheKey(undefined, id).slice(0, 32);
    const now = new Date().toISOString();
    const known = this.mountEntries.get(name);
    this.mountEntries.set(name, {
      id,
      description,
      created: known?.created ?? now,
      lastUsed: now,
      usageCount: (known?.usageCount ?? 0) + 1,
    });
    this.dirty = true;
    return join(this.mountsDir, name);
  }

  /** Drop entries and cache mount records (the caller removes what they held) and write the index. */
  remove(keys: Iterable<string>, mounts: Iterable<string> = []): Promise<void> {
    for (const key of keys) this.entries.delete(key);
    for (const name of mounts) this.mountEntries.delete(name);
    return this.write();
  }

  /** Write the index if hits or deletions changed it since the last write. */
  flush(): Promise<void> {
    return this.dirty ? this.write() : this.writes;
  }

  private write(): Promise<void> {
    this.dirty = false;
    const write = this.writes.then(() =>
      writeJsonAtomic(join(this.dir, 'index.json'), {
        version: 1,
        entries: Object.fromEntries(this.entries),
        mounts: Object.fromEntries(this.mountEntries),
      } satisfies IndexDocument),
    );
    this.writes = write.catch(() => undefined);
    return write;
  }
}
