/**
 * Which repositories a blob is known to exist in, kept as a content-store label per registry
 * (`berth.distribution.source.<registry>` = comma-separated repositories, as containerd does), so a
 * push can mount the blob from there instead of uploading it.
 */
import type { BlobInfo, ContentStore } from '../../content/store.js';

export const SOURCE_LABEL_PREFIX = 'berth.distribution.source.';
/** Enough candidates for a mount; the oldest are dropped. */
const MAX_SOURCES = 5;

export function blobSources(info: BlobInfo, registry: string): string[] {
  const value = info.labels[SOURCE_LABEL_PREFIX + registry];
  return value ? value.split(',').filter(Boolean) : [];
}

export async function recordBlobSource(
  store: ContentStore,
  digest: string,
  registry: string,
  repository: string,
): Promise<void> {
  const info = await store.info(digest);
  if (!info) return;
  const sources = blobSources(info, registry).filter((repo) => repo !== repository);
  sources.unshift(repository);
  await store.setLabels(digest, {
    [SOURCE_LABEL_PREFIX + registry]: sources.slice(0, MAX_SOURCES).join(','),
  });
}
