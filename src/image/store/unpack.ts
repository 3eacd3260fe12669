/**
 * Unpacking an image into snapshots: each layer is applied on its parent chain and committed
 * under its chain ID (snapshot/apply-layer.ts), skipping chains already unpacked. Layers are
 * decompressed here so the uncompressed size is learnt on the way and kept as a blob label.
 */
import { openLayerStream } from '../../archive/layer-format.js';
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

/** Counts the compressed bytes read, for `Extracting` progress as Docker reports it. */
async function* counted(
  input: AsyncIterable<Uint8Array>,
  onBytes: (total: number) => void,
): AsyncGenerator<Uint8Array> {
  let total = 0;
  for await (const chunk of input) {
    total += chunk.length;
    onBytes(total);
    yield chunk;
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
      const id = shortDigest(layer.digest);
      const extracting = byteProgress(onProgress, id, 'Extracting');
      const blob = await content.read(layer.digest);
      const stream = await openLayerStream(
        counted(blob, (current) => extracting(current, layer.size)),
        { mediaType: layer.mediaType },
      );
      let applied: AppliedLayer;
      try {
        // Image layers may carry device nodes (a Debian root filesystem has /dev/console, ...):
        // like Docker, root creates them; they stay inside the snapshot either way.
        applied = await applyLayer(snapshotter, stream.source.rest(), parent, {
          diffId,
          allowDevices: process.getuid?.() === 0,
        });
      } finally {
        await stream.source.close(); // the blob is closed even when the apply never read it
      }
      await recordUnpackedSize(content, layer.digest, stream.size);
      onProgress?.({ id, status: 'Pull complete' });
      parent = applied.chainId;
    }
    return parent;
  };
}
