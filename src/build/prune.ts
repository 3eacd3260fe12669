/**
 * `POST /build/prune` (`docker builder prune`, and the build cache part of `docker system prune`):
 * which records go, by BuildKit's rules as dockerd applies them, and removing them.
 *
 * - Without `all`, only records no image shares ("dangling" ones) go; with it, every record that
 *   no build is using. A shared step loses its index entry; what an image still holds stays.
 * - Filters: `until` (or its old name `unused-for`: records not used for that long, or since that
 *   time), `id` (part of the ID), `parent`, `type`, `description`, `inuse`, `shared`, `private`,
 *   and `label`/`label!` (which `docker system prune --filter label=...` passes on): records carry
 *   no labels, so `label` matches none and `label!` every one.
 * - `keep-storage` (`reserved-space` from API 1.48), `max-used-space` and `min-free-space` bound
 *   how much goes: the least recently used records go first until the cache fits.
 */
import { rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Filters } from '../api/filters.js';
import type { Query } from '../api/query.js';
import { invalidArgument } from '../common/errors.js';
import type { SnapshotInfo } from '../snapshot/snapshotter.js';
import { diskUsage } from '../snapshot/usage.js';
import {
  cacheRecords,
  cachedSteps,
  imageHoldings,
  type CacheRecord,
  type CacheStores,
  type CachedStep,
} from './cache-usage.js';

export const PRUNE_FILTERS = [
  'until',
  'unused-for',
  'id',
  'parent',
  'type',
  'description',
  'inuse',
  'shared',
  'private',
  'label',
  'label!',
] as const;

export interface PruneOptions {
  all: boolean;
  /** Records last used before this time (ms since the epoch) may go; undefined: any. */
  unusedSince?: number;
  id?: string;
  parent?: string;
  type?: string;
  description?: string;
  inUse?: boolean;
  shared?: boolean;
  /** A `label` filter was given: no record has labels, so none matches. */
  labelled?: boolean;
  /** Bytes of cache always kept (`keep-storage`, `reserved-space`). */
  reservedSpace: number;
  /** Prune until the cache uses at most this much (0: no bound). */
  maxUsedSpace: number;
  /** Prune until the disk has this much free (0: no bound). */
  minFreeSpace: number;
}

export interface PruneReport {
  CachesDeleted: string[];
  SpaceReclaimed: number;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.ParseDuration, in milliseconds; undefined when `text` is not a duration. */
function durationMs(text: string): number | undefined {
  const sign = text.startsWith('-') ? -1 : 1;
  let rest = text.replace(/^[-+]/, '');
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  while (rest !== '') {
    const match = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (match === null) return undefined;
    total += Number(match[1]) * (DURATION_UNITS[match[2] as string] as number);
    rest = rest.slice(match[0].length);
  }
  return sign * total;
}

/** dockerd's `until`: a duration before now, an RFC 3339 time, or Unix seconds. */
function untilTime(key: string, text: string, now: number): number {
  const duration = durationMs(text);
  if (duration !== undefined) return now - duration;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const time = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(time))
    throw invalidArgument(`"${key}" filter expects a duration (e.g., '24h') or a timestamp, got "${text}"`);
  return time;
}

function single(filters: Filters, key: string): string | undefined {
  const values = filters.get(key);
  if (values.length > 1) throw invalidArgument('filters expect only one value');
  return values[0];
}

function boolFilter(filters: Filters, key: string): boolean | undefined {
  const value = single(filters, key);
  if (value === undefined) return undefined;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw invalidArgument(`invalid filter '${key}=${value}': expected true or false`);
}

function bytes(query: Query, name: string): number {
  const text = query.string(name);
  if (text === undefined || text === '') return 0;
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)))
    throw invalidArgument(`${name} is in bytes and expects an integer, got ${text}`);
  return Number(text);
}

/** The prune options of a request. */
export function parsePruneQuery(query: Query, now = Date.now()): PruneOptions {
  const filters = query.filters(PRUNE_FILTERS);
  if (filters.contains('until') && filters.contains('unused-for'))
    throw invalidArgument('conflicting filters: "until" and "unused-for"');
  const untilKey = filters.contains('unused-for') ? 'unused-for' : 'until';
  const until = single(filters, untilKey);
  const shared = boolFilter(filters, 'shared');
  const privateOnly = boolFilter(filters, 'private');
  if (shared !== undefined && privateOnly !== undefined && shared === privateOnly)
    throw invalidArgument('conflicting filters: "shared" and "private"');
  const sharedWanted = shared ?? (privateOnly === undefined ? undefined : !privateOnly);
  const options: PruneOptions = {
    all: query.bool('all'),
    reservedSpace: Math.max(bytes(query, 'keep-storage'), bytes(query, 'reserved-space')),
    maxUsedSpace: bytes(query, 'max-used-space'),
    minFreeSpace: bytes(query, 'min-free-space'),
  };
  if (until !== undefined) options.unusedSince = untilTime(untilKey, until, now);
  for (const key of ['id', 'parent', 'type', 'description'] as const) {
    const value = single(filters, key);
    if (value !== undefined) options[key] = value;
  }
  const inUse = boolFilter(filters, 'inuse');
  if (inUse !== undefined) options.inUse = inUse;
  if (sharedWanted !== undefined) options.shared = sharedWanted;
  if (filters.get('label').length > 0) options.labelled = true;
  return options;
}

/** How many bytes of cache may stay; undefined when nothing bounds it (every match goes). */
function keepBytes(total: number, free: number, options: PruneOptions): number | undefined {
  const { maxUsedSpace, minFreeSpace, reservedSpace } = options;
  if (maxUsedSpace === 0 && minFreeSpace === 0) return reservedSpace === 0 ? undefined : reservedSpace;
  let keep = maxUsedSpace > 0 ? maxUsedSpace : total;
  if (minFreeSpace > 0) keep = Math.min(keep, total - Math.max(0, minFreeSpace - free));
  return Math.max(keep, reservedSpace);
}

/** The records to remove, least recently used first. `free` is the disk's free space in bytes. */
export function selectForPrune(records: CacheRecord[], options: PruneOptions, free: number): CacheRecord[] {
  const matches = (record: CacheRecord): boolean =>
    !record.inUse &&
    options.labelled !== true &&
    (options.all || !record.shared) &&
    (options.unusedSince === undefined || Date.parse(record.lastUsedAt) < options.unusedSince) &&
    (options.id === undefined || record.id.includes(options.id)) &&
    (options.parent === undefined || record.parents.includes(options.parent)) &&
    (options.type === undefined || record.type === options.type) &&
    (options.description === undefined || record.description === options.description) &&
    (options.inUse === undefined || record.inUse === options.inUse) &&
    (options.shared === undefined || record.shared === options.shared);
  const eligible = records
    .filter(matches)
    .sort((a, b) => Date.parse(a.lastUsedAt) - Date.parse(b.lastUsedAt) || a.id.localeCompare(b.id));
  let total = records.filter((r) => !r.shared).reduce((sum, r) => sum + r.size, 0);
  const keep = keepBytes(total, free, options);
  if (keep === undefined) return eligible;
  const chosen: CacheRecord[] = [];
  for (const record of eligible) {
    if (total <= keep) break;
    chosen.push(record);
    if (!record.shared) total -= record.size;
  }
  return chosen;
}

/**
 * Remove committed snapshots among `candidates` that nothing else is built on, children first.
 * Returns the bytes they held.
 */
async function removeSnapshots(stores: CacheStores, candidates: Set<string>): Promise<number> {
  const all: SnapshotInfo[] = [];
  await stores.snapshotter.walk((info) => {
    all.push(info);
  });
  const children = new Map<string, number>();
  for (const info of all)
    if (info.parent !== undefined) children.set(info.parent, (children.get(info.parent) ?? 0) + 1);
  const removable = new Map(
    all.filter((info) => info.kind === 'committed' && candidates.has(info.name)).map((i) => [i.name, i]),
  );
  let freed = 0;
  // Each pass removes the leaves, so there are at most as many passes as candidates.
  const passes = removable.size;
  for (let pass = 0; pass < passes && removable.size > 0; pass++) {
    const leaves = [...removable.values()].filter((info) => (children.get(info.name) ?? 0) === 0);
    if (leaves.length === 0) break;
    for (const info of leaves) {
      removable.delete(info.name);
      const size = (await stores.snapshotter.usage(info.name).catch(() => ({ size: 0 }))).size;
      await stores.snapshotter.remove(info.name);
      freed += size;
      if (info.parent !== undefined) children.set(info.parent, (children.get(info.parent) ?? 1) - 1);
    }
  }
  return freed;
}

/**
 * Prune the cache. The caller keeps builds from running meanwhile and holds the image store's
 * lock exclusively; `free` reports the disk's free bytes (for `min-free-space`).
 */
export async function pruneBuildCache(
  stores: CacheStores,
  options: PruneOptions,
  free: () => Promise<number>,
): Promise<PruneReport> {
  const { steps, stale } = await cachedSteps(stores);
  const holdings = await imageHoldings(stores.images);
  const records = await cacheRecords(stores, () => false, steps, holdings);
  const chosen = selectForPrune(records, options, await free());
  const goingKeys = new Set(chosen.filter((r) => r.kind === 'step').map((r) => r.key));
  const goingMounts = chosen.filter((r) => r.kind === 'mount').map((r) => r.key);
  const going: CachedStep[] = steps.filter((step) => goingKeys.has(step.key));
  const kept = steps.filter((step) => !goingKeys.has(step.key));
  const liveBlobs = new Set([...holdings.blobs, ...kept.flatMap((step) => step.blobs)]);
  const liveChains = new Set([...holdings.chainIds, ...kept.flatMap((step) => step.chainIds)]);
  // The index goes first: a crash after it leaves blobs no entry names (image GC takes them),
  // never an entry whose blobs are gone.
  await stores.cache.remove([...goingKeys, ...stale], goingMounts);
  let reclaimed = await removeSnapshots(
    stores,
    new Set(going.flatMap((step) => step.chainIds).filter((chain) => !liveChains.has(chain))),
  );
  for (const digest of new Set(going.flatMap((step) => step.blobs))) {
    if (liveBlobs.has(digest)) continue;
    const size = (await stores.images.content.info(digest))?.size ?? 0;
    if (await stores.images.content.delete(digest)) reclaimed += size;
  }
  for (const name of goingMounts) {
    const path = join(stores.cache.mountsDir, name);
    reclaimed += (await diskUsage(path).catch(() => ({ size: 0 }))).size;
    await rm(path, { recursive: true, force: true });
  }
  return { CachesDeleted: chosen.map((r) => r.id), SpaceReclaimed: reclaimed };
}

/** Free bytes on the filesystem of `path`, for `min-free-space`. */
export async function freeSpace(path: string): Promise<number> {
  const stats = await statfs(path);
  return stats.bavail * stats.bsize;
}
