/**
 * Uncompressed layer sizes. An uncompressed layer's size is its blob size; for a compressed one it
 * is learnt when the layer is decompressed (unpack, save, load, import) and kept as a label on
 * the blob, so listing images never decompresses anything.
 */
import { compressionOfMediaType, type LayerCompression } from '../../archive/layer-format.js';
import type { ContentStore } from '../../content/store.js';
import type { Descriptor } from '../../oci/image-spec.js';

export const UNPACKED_SIZE_LABEL = 'berth.image.layer.unpacked-size';

/** The compression a layer media type announces; undefined for a media type berth does not know. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  try {
    return compressionOfMediaType(mediaType);
  } catch {
    return undefined;
  }
}

/** The layer's uncompressed size when known. */
export async function unpackedLayerSize(
  content: ContentStore,
  layer: Descriptor,
): Promise<number | undefined> {
  if (layerCompression(layer.mediaType) === 'none') return layer.size;
  const label = (await content.info(layer.digest))?.labels[UNPACKED_SIZE_LABEL];
  const size = label === undefined ? NaN : Number(label);
  return Number.isSafeInteger(size) && size >= 0 ? size : undefined;
}

export async function recordUnpackedSize(content: ContentStore, digest: string, size: number): Promise<void> {
  const info = await content.info(digest);
  if (info && info.labels[UNPACKED_SIZE_LABEL] !== String(size)) {
    await content.setLabels(digest, { [UNPACKED_SIZE_LABEL]: String(size) });
  }
}
