/**
 * The build cache as Docker's build cache records (`GET /system/df` BuildCache, `POST
 * /build/prune`): one `regular` record per cached step and one `exec.cachemount` record per
 * `RUN --mount=type=cache` directory.
 *
 * A step holds its image's config and manifest blobs and, when the step made a layer, that layer's
 * blob and snapshot. It is `Shared` when a recorded image holds the same thing (the final image of
 * a build, or a layer an image has too): removing the step then frees little or nothing.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageDocuments } from '../image/commit.js';
import type { ImageService } from '../image/image-service.js';
import { chainIdsOf } from '../image/store/image-store.js';
import { diskUsage } from '../snapshot/usage.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import type { BuildCache, CacheEntry } from './cache.js';

export type CacheRecordType = 'regular' | 'exec.cachemount';

/** One record, as Docker reports it (Go field names in dockerRecord()). */
export interface CacheRecord {
  /** Docker's ID: the first 25 characters of the step key or of the mount directory name. */
  id: string;
  kind: 'step' | 'mount';
  /** The index key of a step, the directory name of a cache mount. */
  key: string;
  type: CacheRecordType;
  description: string;
  parents: string[];
  inUse: boolean;
  shared: boolean;
  /** Bytes on disk that removing the record frees when it is not shared. */
  size: number;
  createdAt: string;
  lastUsedAt: string;
  usageCount: number;
}

/** A cached step with what it holds. */
export interface CachedStep {
  key: string;
  entry: CacheEntry;
  /** Config, manifest and layer digests. */
  blobs: string[];
  /** Chain IDs of its layers, bottom first. */
  chainIds: string[];
  /** The layer the step made, when it made one. */
  ownLayer?: { digest: string; chainId: string };
}

/** What recorded images hold: nothing of this may go with the cache. */
export interface ImageHoldings {
  ids: Set<string>;
  blobs: Set<string>;
  chainIds: Set<string>;
}

export interface CacheStores {
  images: ImageService;
  snapshotter: Snapshotter;
  cache: BuildCache;
}

export const recordId = (key: string): string => key.slice(0, 25);

/** Digests an image holds: config, manifest and layers. */
function blobsOf(documents: ImageDocuments, manifestDigest: string): string[] {
  return [
    manifestDigest,
    documents.manifest.config.digest,
    ...documents.manifest.layers.map((l) => l.digest),
  ];
}

/** The ids, blobs and layer chains of every recorded image (indexes and their manifests included). */
export async function imageHoldings(images: ImageService): Promise<ImageHoldings> {
  const holdings: ImageHoldings = { ids: new Set(), blobs: new Set(), chainIds: new Set() };
  const blobs = images.images.blobs;
  const addManifest = async (digest: string): Promise<void> => {
    holdings.blobs.add(digest);
    const manifest = await blobs.manifest(digest).catch(() => undefined);
    if (!manifest) return;
    holdings.blobs.add(manifest.config.digest);
    for (const layer of manifest.layers) holdings.blobs.add(layer.digest);
  };
  for (const record of images.images.records()) {
    holdings.ids.add(record.id);
    for (const target of record.targets) {
      await addManifest(target.manifest.digest);
      if (!target.index) continue;
      holdings.blobs.add(target.index.digest);
      const document = await blobs.document(target.index.digest).catch(() => undefined);
      if (document?.kind === 'index')
        for (const child of document.index.manifests)
          if (await images.content.info(child.digest)) await addManifest(child.digest);
    }
    const config = await blobs.config(record.id).catch(() => undefined);
    for (const chainId of chainIdsOf(config?.rootfs.diff_ids ?? [])) holdings.chainIds.add(chainId);
  }
  return holdings;
}

/** The cached steps whose documents are still there, and the keys of those whose are not. */
export async function cachedSteps(stores: CacheStores): Promise<{ steps: CachedStep[]; stale: string[] }> {
  const blobs = stores.images.images.blobs;
  const steps: CachedStep[] = [];
  const stale: string[] = [];
  for (const [key, entry] of stores.cache.list()) {
    let documents: ImageDocuments;
    try {
      documents = { config: await blobs.config(entry.id), manifest: await blobs.manifest(entry.manifest) };
    } catch {
      stale.push(key);
      continue;
    }
    const chainIds = chainIdsOf(documents.config.rootfs.diff_ids);
    const last = documents.config.history?.at(-1);
    const layer = documents.manifest.layers.at(-1);
    const top = chainIds.at(-1);
    steps.push({
      key,
      entry,
      blobs: blobsOf(documents, entry.manifest),
      chainIds,
      // A step's own history entry is the last; a config-only step marks it empty_layer.
      ...(last && last.empty_layer !== true && layer && top
        ? { ownLayer: { digest: layer.digest, chainId: top } }
        : {}),
    });
  }
  return { steps, stale };
}

async function blobSize(images: ImageService, digest: string): Promise<number> {
  return (await images.content.info(digest))?.size ?? 0;
}

/** Cache mount directories: those the index knows and any other left in the mounts directory. */
async function mountRecords(cache: BuildCache, inUse: (key: string) => boolean): Promise<CacheRecord[]> {
  const known = new Map(cache.listMounts());
  const names = new Set([...known.keys(), ...(await readdir(cache.mountsDir).catch(() => [] as string[]))]);
  const records: CacheRecord[] = [];
  for (const name of names) {
    const path = join(cache.mountsDir, name);
    const info = await stat(path).catch(() => undefined);
    if (!info?.isDirectory()) continue;
    const entry = known.get(name);
    const made = info.birthtime.getTime() > 0 ? info.birthtime : info.mtime;
    records.push({
      id: recordId(name),
      kind: 'mount',
      key: name,
      type: 'exec.cachemount',
      description: entry?.description ?? 'cached mount',
      parents: [],
      inUse: inUse(name),
      shared: false,
      size: (await diskUsage(path).catch(() => ({ size: 0 }))).size,
      createdAt: entry?.created ?? made.toISOString(),
      lastUsedAt: entry?.lastUsed ?? info.mtime.toISOString(),
      usageCount: entry?.usageCount ?? 1,
    });
  }
  return records;
}

/** Every record of the cache; `inUse` tells which keys and mount names running builds use. */
export async function cacheRecords(
  stores: CacheStores,
  inUse: (key: string) => boolean,
  steps?: CachedStep[],
  holdings?: ImageHoldings,
): Promise<CacheRecord[]> {
  const list = steps ?? (await cachedSteps(stores)).steps;
  const held = holdings ?? (await imageHoldings(stores.images));
  const byImage = new Map(list.map((step) => [step.entry.id, recordId(step.key)]));
  const records: CacheRecord[] = [];
  for (const step of list) {
    const { entry, ownLayer } = step;
    let size = (await blobSize(stores.images, entry.manifest)) + (await blobSize(stores.images, entry.id));
    if (ownLayer) {
      size += await blobSize(stores.images, ownLayer.digest);
      size += await stores.snapshotter
        .usage(ownLayer.chainId)
        .then((usage) => usage.size)
        .catch(() => 0);
    }
    const parent = entry.parent ? byImage.get(entry.parent) : undefined;
    const created = entry.created ?? stores.cache.indexTime;
    records.push({
      id: recordId(step.key),
      kind: 'step',
      key: step.key,
      type: 'regular',
      description: entry.description ?? '',
      parents: parent ? [parent] : [],
      inUse: inUse(step.key),
      shared: held.ids.has(entry.id) || (ownLayer !== undefined && held.chainIds.has(ownLayer.chainId)),
      size,
      createdAt: created,
      lastUsedAt: entry.lastUsed ?? created,
      usageCount: entry.usageCount ?? 1,
    });
  }
  return [...records, ...(await mountRecords(stores.cache, inUse))];
}

/** A record in the Engine API's shape (`Parent` only for clients older than API 1.42). */
export function dockerRecord(record: CacheRecord, legacyParent: boolean): Record<string, unknown> {
  return {
    ID: record.id,
    ...(legacyParent ? { Parent: record.parents[0] ?? '' } : { Parents: record.parents }),
    Type: record.type,
    Description: record.description,
    InUse: record.inUse,
    Shared: record.shared,
    Size: record.size,
    CreatedAt: record.createdAt,
    LastUsedAt: record.lastUsedAt,
    UsageCount: record.usageCount,
  };
}
