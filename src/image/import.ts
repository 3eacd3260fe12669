/**
 * `docker import`: a root filesystem tarball (plain, gzip or zstd) becomes a one-layer image.
 * The tarball is stored as it came (its compression decides the layer media type) while it is
 * spooled, hashed, decompressed and read through as a tar, which gives the diff ID and checks it
 * is one. `changes` are the Dockerfile instructions of store/changes.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openLayerStream, type LayerStream } from '../archive/layer-format.js';
import { readTar } from '../archive/tar-reader.js';
import { BerthError, invalidArgument } from '../common/errors.js';
import type { ContentStore } from '../content/store.js';
import { MEDIA_TYPE, type ImageConfig, type ImageManifest, type Platform } from '../oci/image-spec.js';
import { hostPlatform, normalizePlatform } from './registry/platform.js';
import { applyChanges } from './store/changes.js';
import type { ImageStore, RecordOutcome } from './store/image-store.js';
import { recordUnpackedSize } from './store/layer-size.js';
import { tagName } from './store/names.js';
import type { ImageTarget } from './store/records.js';

export interface ImportOptions {
  images: ImageStore;
  /** Where the tarball is spooled while its digest is computed. */
  tempDir: string;
  /** Dockerfile instructions applied to the image config. */
  changes?: string[];
  /** History comment; default `Imported from <source>`. */
  message?: string;
  /** Where the tarball came from, for the default message (`-` for a request body). */
  source?: string;
  platform?: Platform;
  /** A name to give the image. */
  tag?: string;
  signal?: AbortSignal;
}

export interface ImportedImage {
  id: string;
  target: ImageTarget;
  manifest: ImageManifest;
  config: ImageConfig;
  /** Normalised names to record. */
  names: string[];
}

const LAYER_MEDIA_TYPE = {
  none: MEDIA_TYPE.ociLayer,
  gzip: MEDIA_TYPE.ociLayerGzip,
  zstd: MEDIA_TYPE.ociLayerZstd,
};

/** Restate the tar reader's and decompressor's layer-worded errors for a tarball. */
function restated(err: unknown): unknown {
  if (!(err instanceof BerthError) || err.kind !== 'invalid-argument') return err;
  return invalidArgument(
    `invalid tarball to import: ${err.message.replace(/^layer tar: /, '').replace(/^layer /, 'it ')}`,
  );
}

/** Copy `input` into `file` while hashing it; yields the same bytes on. */
async function* spooled(
  input: AsyncIterable<Uint8Array>,
  file: string,
  seen: { hash: ReturnType<typeof createHash>; size: number },
): AsyncGenerator<Uint8Array> {
  const handle = await open(file, 'wx', 0o600);
  try {
    for await (const chunk of input) {
      seen.hash.update(chunk);
      seen.size += chunk.length;
      await handle.write(chunk);
      yield chunk;
    }
  } finally {
    await handle.close();
  }
}

/** Store the tarball as a layer and write its config and manifest; nothing is recorded yet. */
export async function readImportTarball(
  input: AsyncIterable<Uint8Array>,
  options: ImportOptions,
): Promise<ImportedImage> {
  // Refuse bad names and changes before reading a byte.
  const names = options.tag !== undefined ? [tagName(options.tag)] : [];
  const runConfig = applyChanges({}, options.changes ?? []);
  const platform = normalizePlatform(options.platform ?? hostPlatform());
  const content: ContentStore = options.images.content;

  await mkdir(options.tempDir, { recursive: true });
  const file = join(options.tempDir, `import-${randomBytes(8).toString('hex')}`);
  const raw = { hash: createHash('sha256'), size: 0 };
  try {
    let layer: LayerStream | undefined;
    try {
      layer = await openLayerStream(spooled(input, file, raw), { maxSize: Number.MAX_SAFE_INTEGER });
      for await (const _entry of readTar(layer.source)) options.signal?.throwIfAborted();
      for await (const chunk of layer.source.rest()) void chunk;
    } catch (err) {
      throw restated(err);
    } finally {
      await layer?.source.close();
    }
    const digest = `sha256:${raw.hash.digest('hex')}`;
    await content.ingest({ digest, size: raw.size }, async (offset) => ({
      offset,
      stream: createReadStream(file, { start: offset }),
    }));
    if (layer.compression !== 'none') await recordUnpackedSize(content, digest, layer.size);

    const created = new Date().toISOString();
    const comment = options.message || `Imported from ${options.source ?? '-'}`;
    const config: ImageConfig & { comment: string } = {
      created,
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
      comment,
      config: runConfig,
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, created_by: '', comment }],
    };
    const configInfo = await content.writeBlob(Buffer.from(JSON.stringify(config)));
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MEDIA_TYPE.ociManifest,
      config: { mediaType: MEDIA_TYPE.ociConfig, digest: configInfo.digest, size: configInfo.size },
      layers: [{ mediaType: LAYER_MEDIA_TYPE[layer.compression], digest, size: raw.size }],
    };
    const manifestInfo = await content.writeBlob(Buffer.from(JSON.stringify(manifest)));
    return {
      id: configInfo.digest,
      target: {
        manifest: { mediaType: MEDIA_TYPE.ociManifest, digest: manifestInfo.digest, size: manifestInfo.size },
      },
      manifest,
      config,
      names,
    };
  } finally {
    await rm(file, { force: true });
  }
}

/** Import a tarball as an image and record it (with its tag, if given). */
export async function importImage(
  input: AsyncIterable<Uint8Array>,
  options: ImportOptions,
): Promise<RecordOutcome> {
  const imported = await readImportTarball(input, options);
  return options.images.record(imported.target, imported.names);
}
