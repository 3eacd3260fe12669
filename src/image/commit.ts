/**
 * Creating an image from a parent image, at most one new layer and a container config: what
 * `docker commit` and every build step do. The layer is stored uncompressed, as Docker stores
 * layers locally (push sends blobs as they are). Its snapshot is made available without
 * unpacking the layer again when the caller hands over the active snapshot the layer was diffed
 * from (its upper directory is exactly that layer): it is committed under the new chain ID.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError } from '../common/errors.js';
import {
  MEDIA_TYPE,
  type ContainerConfig,
  type HistoryEntry,
  type ImageConfig,
  type ImageManifest,
  type Platform,
} from '../oci/image-spec.js';
import { applyLayer, chainId } from '../snapshot/apply-layer.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import type { ImageService } from './image-service.js';
import { hostPlatform, normalizePlatform } from './registry/platform.js';
import { chainIdsOf } from './store/image-store.js';
import type { ImageTarget } from './store/records.js';

export interface CommitHistory {
  created_by?: string;
  comment?: string;
  author?: string;
  /** Set for config-only steps; a commit without a layer always sets it. */
  empty_layer?: boolean;
}

/** An image given by its documents, for parents that are not recorded (intermediate build steps). */
export interface ImageDocuments {
  config: ImageConfig;
  manifest: ImageManifest;
}

export interface CommitOptions {
  /** The parent image (ID or name in the store); undefined (and no parentImage) = scratch. */
  parent?: string;
  /** The parent by its documents instead of a name; wins over `parent`. */
  parentImage?: ImageDocuments;
  /** The new layer as an uncompressed tar stream; undefined for a config-only image. */
  layer?: AsyncIterable<Uint8Array>;
  /** The new image's container config (replaces the parent's). */
  config: ContainerConfig;
  /** The history entry appended for this image. */
  history: CommitHistory;
  author?: string;
  comment?: string;
  /** Names to give the image (tags). */
  references?: string[];
  /** Record the image in the store (default true). Build steps keep intermediate images unrecorded. */
  record?: boolean;
  /** Where the layer's snapshot goes; without it the caller unpacks (ImageService.unpack). */
  snapshotter?: Snapshotter;
  /**
   * The active snapshot whose upper directory the layer was diffed from: committed as the layer's
   * snapshot instead of unpacking the layer again. It must not be mounted any more.
   */
  snapshotKey?: string;
  /** Creation time (ISO 8601); default now. */
  created?: string;
  /** For scratch images; default the host platform. */
  platform?: Platform;
}

export interface CommitResult {
  /** The image ID (config digest). */
  id: string;
  config: ImageConfig;
  manifest: ImageManifest;
  target: ImageTarget;
  /** The chain ID of the top layer (the snapshot to run containers on); undefined without layers. */
  topChainId?: string;
}

/** Copy `input` into a new file while hashing it. */
async function spool(
  input: AsyncIterable<Uint8Array>,
  file: string,
): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const handle = await open(file, 'wx', 0o600);
  try {
    for await (const chunk of input) {
      hash.update(chunk);
      size += chunk.length;
      await handle.write(chunk);
    }
  } finally {
    await handle.close();
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

async function committedExists(snapshotter: Snapshotter, name: string): Promise<boolean> {
  try {
    return (await snapshotter.stat(name)).kind === 'committed';
  } catch (err) {
    if (err instanceof BerthError && err.kind === 'not-found') return false;
    throw err;
  }
}

async function parentDocuments(
  images: ImageService,
  options: CommitOptions,
): Promise<ImageDocuments | undefined> {
  if (options.parentImage) return options.parentImage;
  if (options.parent === undefined) return undefined;
  const resolved = images.images.resolve(options.parent);
  return {
    config: await images.images.blobs.config(resolved.id),
    manifest: await images.images.blobs.manifest(resolved.target.manifest.digest),
  };
}

/**
 * Create an image: the parent's layers plus `layer`, the given config, the parent's history plus
 * one entry. Stores the layer, config and manifest blobs, makes the layer's snapshot available
 * when a snapshotter is given, and records the image with its names (unless `record: false`).
 */
export function commitImage(images: ImageService, options: CommitOptions): Promise<CommitResult> {
  return images.withStoreLock(() => commitUnlocked(images, options));
}

async function commitUnlocked(images: ImageService, options: CommitOptions): Promise<CommitResult> {
  const parent = await parentDocuments(images, options);
  const content = images.content;
  const created = options.created ?? new Date().toISOString();
  const platform = normalizePlatform(
    parent
      ? {
          architecture: parent.config.architecture,
          os: parent.config.os,
          ...(parent.config.variant ? { variant: parent.config.variant } : {}),
        }
      : (options.platform ?? hostPlatform()),
  );
  const diffIds = [...(parent?.config.rootfs.diff_ids ?? [])];
  const layers = [...(parent?.manifest.layers ?? [])];
  const parentChain = chainIdsOf(diffIds).at(-1);
  let topChainId = parentChain;

  if (options.layer !== undefined) {
    const tempDir = join(images.images.dir, 'tmp');
    await mkdir(tempDir, { recursive: true });
    const file = join(tempDir, `commit-${randomBytes(8).toString('hex')}`);
    try {
      const { digest, size } = await spool(options.layer, file);
      await content.ingest({ digest, size }, async (offset) => ({
        offset,
        stream: createReadStream(file, { start: offset }),
      }));
      diffIds.push(digest);
      layers.push({ mediaType: MEDIA_TYPE.ociLayer, digest, size });
      topChainId = chainId(parentChain, digest);
      const snapshotter = options.snapshotter;
      if (snapshotter && options.snapshotKey !== undefined) {
        if (await committedExists(snapshotter, topChainId)) await snapshotter.remove(options.snapshotKey);
        else await snapshotter.commit(topChainId, options.snapshotKey);
      } else if (snapshotter) {
        await applyLayer(snapshotter, createReadStream(file), parentChain, {
          diffId: digest,
          allowDevices: process.getuid?.() === 0,
        });
      }
    } finally {
      await rm(file, { force: true });
    }
  }

  const history: HistoryEntry = { created, ...options.history };
  if (options.layer === undefined) history.empty_layer = true;
  else delete history.empty_layer;
  const author = options.author ?? parent?.config.author;
  const config: ImageConfig & { comment?: string } = {
    created,
    ...(author !== undefined && author !== '' ? { author } : {}),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant !== undefined ? { variant: platform.variant } : {}),
    ...(options.comment !== undefined && options.comment !== '' ? { comment: options.comment } : {}),
    config: options.config,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: [...(parent?.config.history ?? []), history],
  };
  const configInfo = await content.writeBlob(Buffer.from(JSON.stringify(config)));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociManifest,
    config: { mediaType: MEDIA_TYPE.ociConfig, digest: configInfo.digest, size: configInfo.size },
    layers,
  };
  const manifestInfo = await content.writeBlob(Buffer.from(JSON.stringify(manifest)));
  const target: ImageTarget = {
    manifest: { mediaType: MEDIA_TYPE.ociManifest, digest: manifestInfo.digest, size: manifestInfo.size },
  };
  if (options.record !== false) await images.images.record(target, options.references ?? []);
  return {
    id: configInfo.digest,
    config,
    manifest,
    target,
    ...(topChainId !== undefined ? { topChainId } : {}),
  };
}
