/**
 * Unpacking an image into snapshots: each layer is applied on its parent chain and committed
 * under its chain ID (snapshot/apply-layer.ts), skipping chains already unpacked. The apply
 * reports the uncompressed size, which is kept as a blob label.
 */
import { BerthError } from '../../common/errors.js';
import { shortDigest } from '../../content/digest.js';
import type { ContentStore } from '../../content/store.js';
import type { ImageConfig, ImageManifest } from '../../oci/image-spec.js';
import { applyLayer, chainId, type AppliedLayer } from '../../snapshot/apply-layer.js';
import type { Snapshotter } from '../../snapshot/snapshotter.js';
import { byteProgress } from '../registry/progress.js';
import { recordUnpackedSize } from './layer-size.js';
import type { ImageProgressCallback } from './progress.js';

export interface UnpackTarget {
  id: string;
  manifest: ImageManifest;
  config: ImageConfig;
  /** During a pull: resolves when layer i is in the content store (all are, without it). */
  stored?: (index: number) => Promise<void>;
}

/** Make an image's layers available as snapshots; returns the top chain ID (undefined without layers). */
export type Unpacker = (
  image: UnpackTarget,
  onProgress?: ImageProgressCallback,
) => Promise<string | undefined>;

async function isCommitted(snapshotter: Snapshotter, name: string): Promise<boolean> {
  try {
    return (await snapshotter.stat(name)).kind === 'committed';
  } catch (err) {
    if (err instanceof BerthError && err.kind === 'not-found') return false;
    throw err;
  }
}

export function snapshotUnpacker(snapshotter: Snapshotter, content: ContentStore): Unpacker {
  return async (image, onProgress) => {
    let parent: string | undefined;
    for (const [i, layer] of image.manifest.layers.entries()) {
      const diffId = image.config.rootfs.diff_ids[i] as string;
      const expected = chainId(parent, diffId);
      if (await isCommitted(snapshotter, expected)) {
        parent = expected;
        continue;
      }
      await image.stored?.(i);
      const id = shortDigest(layer.digest);
      const extracting = byteProgress(onProgress, id, 'Extracting');
      // The apply worker reads the blob's file itself.
      const blob = await content.open(layer.digest);
      // Image layers may carry device nodes (a Debian root filesystem has /dev/console, ...):
      // like Docker, root creates them; they stay inside the snapshot either way. The apply
      // decompresses (in its worker) and checks the media type against the magic bytes.
      let applied: AppliedLayer;
      try {
        applied = await applyLayer(
          snapshotter,
          { fd: blob.fd, onBytes: (current) => extracting(current, layer.size) },
          parent,
          { diffId, mediaType: layer.mediaType, allowDevices: process.getuid?.() === 0 },
        );
      } finally {
        await blob.close();
      }
      if (applied.size !== undefined) await recordUnpackedSize(content, layer.digest, applied.size);
      onProgress?.({ id, status: 'Pull complete' });
      parent = applied.chainId;
    }
    return parent;
  };
}
