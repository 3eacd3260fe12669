/**
 * `docker save` as Docker 25+ writes it: one tar stream holding an OCI image layout
 * (`blobs/sha256/...`, `index.json`, `oci-layout`) plus the legacy `manifest.json` and
 * `repositories` that older `docker load` reads. Layers are written uncompressed, as Docker does,
 * decompressed while they stream out, so the manifest of an image with compressed layers is
 * rewritten (its config, and so its image ID, stays). Nothing is held in memory but JSON.
 */
import { createHash } from 'node:crypto';
import { openLayerStream, type LayerCompression } from '../archive/layer-format.js';
import { encodeTarHeader, tarPadding, tarTrailer, type TarEntry } from '../archive/tar-writer.js';
import { internal, invalidArgument } from '../common/errors.js';
import { sha256Of } from '../content/digest.js';
import type { ContentStore } from '../content/store.js';
import {
  MEDIA_TYPE,
  REF_NAME_ANNOTATION,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
} from '../oci/image-spec.js';
import { IMAGE_NAME_ANNOTATION } from './load.js';
import { familiarName as familiarRepository, parseReference, repositoryName } from './reference.js';
import type { ImageStore, ResolvedImage } from './store/image-store.js';
import type { ImageTarget } from './store/records.js';
import { layerCompression, recordUnpackedSize, UNPACKED_SIZE_LABEL } from './store/layer-size.js';
import { familiarName, isDigestName, parseName, repositoryOf } from './store/names.js';

interface SavedLayer {
  source: Descriptor;
  compression: LayerCompression;
  /** The uncompressed layer: what goes into the archive. */
  diffId: string;
  size: number;
}

interface SavedImage {
  id: string;
  config: Descriptor;
  layers: SavedLayer[];
  manifest: { descriptor: Descriptor; data: Buffer };
  /** Tag names to write (fully qualified). */
  tags: string[];
}

export interface SavePlan {
  images: SavedImage[];
}

const blobPath = (digest: string): string => `blobs/sha256/${digest.slice('sha256:'.length)}`;

/** Decompress a layer once to learn its uncompressed size, checking its diff ID on the way. */
async function measureLayer(content: ContentStore, layer: Descriptor, diffId: string): Promise<number> {
  const label = (await content.info(layer.digest))?.labels[UNPACKED_SIZE_LABEL];
  if (label !== undefined && Number.isSafeInteger(Number(label))) return Number(label);
  const stream = await openLayerStream(await content.read(layer.digest), { mediaType: layer.mediaType });
  for await (const chunk of stream.source.rest()) void chunk;
  if (stream.diffId !== diffId) {
    throw invalidArgument(
      `layer ${layer.digest} uncompresses to ${stream.diffId}, but the image config gives ${diffId}`,
    );
  }
  await recordUnpackedSize(content, layer.digest, stream.size);
  return stream.size;
}

interface Selection {
  input: string;
  /** The first name's (or the image's) manifest. */
  target: ImageTarget;
  tags: Set<string>;
}

/** Which images the arguments mean, with the tags to write for each. */
function selectImages(store: ImageStore, inputs: string[]): Map<string, Selection> {
  if (inputs.length === 0) throw invalidArgument('nothing to save: give at least one image name or ID');
  const selected = new Map<string, Selection>();
  const add = (input: string, resolved: ResolvedImage): void => {
    const entry = selected.get(resolved.id) ?? { input, target: resolved.target, tags: new Set<string>() };
    if (resolved.name !== undefined && !isDigestName(resolved.name)) entry.tags.add(resolved.name);
    selected.set(resolved.id, entry);
  };
  for (const input of inputs) {
    // A repository without tag or digest means every tag of it, as `docker save busybox` does.
    let repository: string | undefined;
    try {
      const ref = parseReference(input, { defaultTag: false });
      if (ref.tag === undefined && ref.digest === undefined) repository = repositoryName(ref);
    } catch {
      repository = undefined;
    }
    const tags = store
      .records()
      .flatMap((record) => store.namesOf(record.id))
      .filter((name) => !isDigestName(name) && repositoryOf(name) === repository);
    if (tags.length > 0) tags.forEach((name) => add(input, store.resolve(name)));
    else add(input, store.resolve(input));
  }
  return selected;
}

/** Resolve names and work out every layer's uncompressed size, before the first byte is written. */
export async function planSave(store: ImageStore, inputs: string[]): Promise<SavePlan> {
  const images: SavedImage[] = [];
  for (const [id, { tags, input, target }] of selectImages(store, inputs)) {
    const manifest = await store.blobs.manifest(target.manifest.digest);
    const config = await store.blobs.config(id);
    const layers: SavedLayer[] = [];
    for (const [i, layer] of manifest.layers.entries()) {
      const diffId = config.rootfs.diff_ids[i] as string;
      const compression = layerCompression(layer.mediaType);
      if (compression === undefined) {
        throw invalidArgument(
          `cannot save ${input}: layer ${layer.digest} has unsupported media type "${layer.mediaType}"`,
        );
      }
      if (compression === 'none' && layer.digest !== diffId) {
        throw invalidArgument(`cannot save ${input}: layer ${layer.digest} does not match diff ID ${diffId}`);
      }
      const size = compression === 'none' ? layer.size : await measureLayer(store.content, layer, diffId);
      layers.push({ source: layer, compression, diffId, size });
    }
    const verbatim =
      (manifest.mediaType ?? target.manifest.mediaType) === MEDIA_TYPE.ociManifest &&
      manifest.layers.every((layer) => layer.mediaType === MEDIA_TYPE.ociLayer);
    let data: Buffer;
    let descriptor: Descriptor;
    if (verbatim) {
      data = await store.content.readAll(target.manifest.digest);
      descriptor = {
        mediaType: MEDIA_TYPE.ociManifest,
        digest: target.manifest.digest,
        size: data.length,
      };
    } else {
      const rewritten: ImageManifest = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.ociManifest,
        config: {
          mediaType: MEDIA_TYPE.ociConfig,
          digest: manifest.config.digest,
          size: manifest.config.size,
        },
        layers: layers.map((layer) => ({
          mediaType: MEDIA_TYPE.ociLayer,
          digest: layer.diffId,
          size: layer.size,
        })),
      };
      data = Buffer.from(JSON.stringify(rewritten));
      descriptor = { mediaType: MEDIA_TYPE.ociManifest, digest: sha256Of(data), size: data.length };
    }
    images.push({
      id,
      config: manifest.config,
      layers,
      manifest: { descriptor, data },
      tags: [...tags].sort(),
    });
  }
  return { images };
}

const fileEntry = (path: string): TarEntry => ({ path, type: 'file', mode: 0o644 });

function* smallFile(path: string, data: Buffer): Generator<Buffer> {
  yield* encodeTarHeader(fileEntry(path), data.length);
  yield data;
  yield tarPadding(data.length);
}

/** A layer's uncompressed bytes, checked against its diff ID and size as they go. */
async function* layerFile(content: ContentStore, layer: SavedLayer): AsyncGenerator<Buffer> {
  yield* encodeTarHeader(fileEntry(blobPath(layer.diffId)), layer.size);
  const raw = await content.read(layer.source.digest);
  const chunks: AsyncIterable<Uint8Array> =
    layer.compression === 'none'
      ? raw
      : (await openLayerStream(raw, { mediaType: layer.source.mediaType })).source.rest();
  const hash = createHash('sha256');
  let written = 0;
  for await (const chunk of chunks) {
    written += chunk.length;
    if (written > layer.size) break;
    hash.update(chunk);
    yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  }
  if (written !== layer.size || `sha256:${hash.digest('hex')}` !== layer.diffId) {
    throw internal(`layer ${layer.source.digest} changed while it was being saved`);
  }
  yield tarPadding(layer.size);
}

function indexOf(plan: SavePlan): ImageIndex {
  const manifests: Descriptor[] = [];
  for (const image of plan.images) {
    if (image.tags.length === 0) manifests.push(image.manifest.descriptor);
    for (const tag of image.tags) {
      manifests.push({
        ...image.manifest.descriptor,
        annotations: { [IMAGE_NAME_ANNOTATION]: tag, [REF_NAME_ANNOTATION]: parseName(tag).tag as string },
      });
    }
  }
  return { schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex, manifests };
}

function legacyManifest(plan: SavePlan): unknown[] {
  return plan.images.map((image) => ({
    Config: blobPath(image.config.digest),
    RepoTags: image.tags.map(familiarName),
    Layers: image.layers.map((layer) => blobPath(layer.diffId)),
  }));
}

/** `{ "busybox": { "latest": "<top layer diff ID hex>" } }` */
function repositories(plan: SavePlan): Record<string, Record<string, string>> {
  const result: Record<string, Record<string, string>> = {};
  for (const image of plan.images) {
    const top = image.layers.at(-1);
    if (!top) continue;
    for (const tag of image.tags) {
      const ref = parseName(tag);
      const repository = familiarRepository(ref);
      result[repository] = { ...result[repository], [ref.tag as string]: top.diffId.slice('sha256:'.length) };
    }
  }
  return result;
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

/** The archive's bytes, chunk by chunk. */
export async function* writeSave(store: ImageStore, plan: SavePlan): AsyncGenerator<Buffer> {
  yield* encodeTarHeader({ path: 'blobs', type: 'directory', mode: 0o755 });
  yield* encodeTarHeader({ path: 'blobs/sha256', type: 'directory', mode: 0o755 });
  const written = new Set<string>();
  for (const image of plan.images) {
    for (const layer of image.layers) {
      if (written.has(layer.diffId)) continue;
      written.add(layer.diffId);
      yield* layerFile(store.content, layer);
    }
    for (const blob of [image.config, image.manifest.descriptor]) {
      if (written.has(blob.digest)) continue;
      written.add(blob.digest);
      const data = blob === image.config ? await store.content.readAll(blob.digest) : image.manifest.data;
      yield* smallFile(blobPath(blob.digest), data);
    }
  }
  yield* smallFile('index.json', json(indexOf(plan)));
  yield* smallFile('manifest.json', json(legacyManifest(plan)));
  yield* smallFile('oci-layout', json({ imageLayoutVersion: '1.0.0' }));
  yield* smallFile('repositories', json(repositories(plan)));
  yield tarTrailer();
}

/** Plan (so unknown names fail before any byte), then stream the archive. */
export async function saveImages(store: ImageStore, inputs: string[]): Promise<AsyncGenerator<Buffer>> {
  return writeSave(store, await planSave(store, inputs));
}
