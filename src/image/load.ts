/**
 * `docker load`: images from a `docker save` tarball (manifest.json, with or without an OCI
 * layout beside it; layers as `<id>/layer.tar` or `blobs/sha256/<hex>`) or from an OCI archive
 * (index.json only, as `skopeo copy ... oci-archive:` writes). Blobs are stored while the archive
 * streams past; names and manifests are resolved at the end, every digest and diff ID is checked,
 * and the images are recorded in one atomic write, so a bad archive records nothing.
 */
import { openLayerStream, sniffCompression, type LayerStream } from '../archive/layer-format.js';
import type { ContentStore } from '../content/store.js';
import {
  MEDIA_TYPE,
  REF_NAME_ANNOTATION,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  type Platform,
} from '../oci/image-spec.js';
import { parseManifestDocument, type ManifestDocument } from './registry/manifest.js';
import { hostPlatform, normalizePlatform, selectManifest } from './registry/platform.js';
import {
  archiveError,
  findMemberBlob,
  ingestArchive,
  memberBlob,
  type ArchiveContents,
} from './store/archive-ingest.js';
import type { ImageStore, RecordOutcome } from './store/image-store.js';
import { layerCompression, recordUnpackedSize } from './store/layer-size.js';
import { familiarName, nameKey } from './store/names.js';
import type { ImageProgressCallback } from './store/progress.js';
import type { ImageTarget } from './store/records.js';

/** containerd's annotation for an image's full name in an OCI layout (Docker 25+ writes it too). */
export const IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';

export interface LoadOptions {
  images: ImageStore;
  /** Where archive members are spooled while their digest is computed. */
  tempDir: string;
  /** Repository for images an OCI archive names by tag alone (`latest`), like `ctr import --base-name`. */
  baseName?: string;
  /** Platform to choose from a multi-platform index (default the host's). */
  platform?: Platform;
  onProgress?: ImageProgressCallback;
  signal?: AbortSignal;
}

export interface LoadedImage {
  id: string;
  target: ImageTarget;
  manifest: ImageManifest;
  config: ImageConfig;
  /** Normalised names to record. */
  names: string[];
}

interface LegacyManifestItem {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

const descriptorOf = (d: Descriptor): Descriptor => ({
  mediaType: d.mediaType,
  digest: d.digest,
  size: d.size,
});

function parseJson(data: Buffer, file: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    throw archiveError(`${file} is not valid JSON`);
  }
}

function parseLegacyManifest(data: Buffer): LegacyManifestItem[] {
  const value = parseJson(data, 'manifest.json');
  if (!Array.isArray(value) || value.length === 0) throw archiveError('manifest.json lists no images');
  value.forEach((item: Partial<LegacyManifestItem>, i) => {
    const ok =
      typeof item === 'object' &&
      item !== null &&
      typeof item.Config === 'string' &&
      Array.isArray(item.Layers) &&
      item.Layers.every((layer) => typeof layer === 'string') &&
      (item.RepoTags === undefined ||
        item.RepoTags === null ||
        (Array.isArray(item.RepoTags) && item.RepoTags.every((tag) => typeof tag === 'string')));
    if (!ok) throw archiveError(`manifest.json entry ${i} needs "Config", "Layers" and optional "RepoTags"`);
  });
  return value as LegacyManifestItem[];
}

/** `repositories`: `{ "busybox": { "latest": "<top layer id>" } }`, as `name:tag` by layer id. */
function parseRepositories(data: Buffer | undefined): Map<string, string[]> {
  const byLayer = new Map<string, string[]>();
  if (!data) return byLayer;
  const value = parseJson(data, 'repositories');
  if (typeof value !== 'object' || value === null) throw archiveError('repositories is not a JSON object');
  for (const [repository, tags] of Object.entries(value as Record<string, unknown>)) {
    if (typeof tags !== 'object' || tags === null) continue;
    for (const [tag, layer] of Object.entries(tags as Record<string, unknown>)) {
      if (typeof layer !== 'string') continue;
      byLayer.set(layer, [...(byLayer.get(layer) ?? []), `${repository}:${tag}`]);
    }
  }
  return byLayer;
}

/**
 * Names `repositories` gives an image. It keys the top layer by its legacy directory (`<id>/layer.tar`,
 * which may be a link to the layer file, as skopeo writes it) or, since Docker 25, by its digest.
 */
function repositoryNames(
  contents: ArchiveContents,
  repositories: Map<string, string[]>,
  item: LegacyManifestItem,
  topDigest: string | undefined,
): string[] {
  if (topDigest === undefined || repositories.size === 0) return [];
  const ids = new Set([topDigest.slice('sha256:'.length)]);
  const legacy = /^([^/]+)\/layer\.tar$/;
  for (const path of [item.Layers.at(-1) ?? '', ...contents.links.keys()]) {
    const id = legacy.exec(path)?.[1];
    if (id === undefined) continue;
    if (findMemberBlob(contents, path)?.digest === topDigest) ids.add(id);
  }
  return [...ids].flatMap((id) => repositories.get(id) ?? []);
}

/** Names an OCI index entry carries: the full name, else a full `ref.name`, else `baseName:ref.name`. */
function annotatedNames(annotations: Record<string, string> | undefined, baseName?: string): string[] {
  const full = annotations?.[IMAGE_NAME_ANNOTATION];
  if (full) return [full];
  const ref = annotations?.[REF_NAME_ANNOTATION];
  if (!ref) return [];
  if (/[/:@]/.test(ref)) return [ref];
  return baseName !== undefined ? [`${baseName}:${ref}`] : [];
}

function normalisedNames(names: string[], where: string): string[] {
  const keys = new Set<string>();
  for (const name of names) {
    try {
      keys.add(nameKey(name));
    } catch (err) {
      throw archiveError(
        `${where} names the image "${name}", which is not a valid reference (${(err as Error).message})`,
      );
    }
  }
  return [...keys];
}

/** The first bytes of a stored blob, to tell a tar from gzip or zstd. */
async function blobHead(content: ContentStore, digest: string): Promise<Buffer> {
  const stream = await content.read(digest);
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of stream) {
      chunks.push(chunk as Buffer);
      length += (chunk as Buffer).length;
      if (length >= 512) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks).subarray(0, 512);
}

const LAYER_MEDIA_TYPE = {
  none: MEDIA_TYPE.ociLayer,
  gzip: MEDIA_TYPE.ociLayerGzip,
  zstd: MEDIA_TYPE.ociLayerZstd,
};

/** Check a layer against its diff ID: by digest when uncompressed, else by decompressing it. */
async function verifyLayer(
  content: ContentStore,
  layer: Descriptor,
  diffId: string,
  where: string,
): Promise<void> {
  const compression = layerCompression(layer.mediaType);
  if (compression === undefined)
    throw archiveError(`${where} has unsupported media type "${layer.mediaType}"`);
  if (compression === 'none') {
    if (layer.digest !== diffId) {
      throw archiveError(`${where} has digest ${layer.digest}, but the image config gives diff ID ${diffId}`);
    }
    return;
  }
  let stream: LayerStream;
  try {
    stream = await openLayerStream(await content.read(layer.digest), { mediaType: layer.mediaType });
    for await (const chunk of stream.source.rest()) void chunk;
  } catch (err) {
    throw archiveError(`${where} cannot be read: ${(err as Error).message}`);
  }
  if (stream.diffId !== diffId) {
    throw archiveError(
      `${where} uncompresses to diff ID ${stream.diffId}, but the image config gives ${diffId}`,
    );
  }
  await recordUnpackedSize(content, layer.digest, stream.size);
}

async function verifyImage(
  images: ImageStore,
  target: ImageTarget,
  names: string[],
  where: string,
): Promise<LoadedImage> {
  const { id, manifest, config } = await images.readTarget(target).catch((err: Error) => {
    throw archiveError(`${where}: ${err.message}`);
  });
  for (const [i, layer] of manifest.layers.entries()) {
    await verifyLayer(images.content, layer, config.rootfs.diff_ids[i] as string, `layer ${i} of ${where}`);
  }
  return { id, target, manifest, config, names };
}

interface LayoutEntry {
  target: ImageTarget;
  annotations?: Record<string, string>;
}

/** Index entries of an OCI layout, with the manifest each one (or its platform's manifest) is. */
async function layoutTargets(
  images: ImageStore,
  contents: ArchiveContents,
  options: LoadOptions,
): Promise<LayoutEntry[]> {
  const data = contents.metadata.get('index.json');
  if (!data) return [];
  let document: ManifestDocument;
  try {
    document = parseManifestDocument(data, undefined, 'index.json');
  } catch (err) {
    throw archiveError((err as Error).message);
  }
  if (document.kind !== 'index') throw archiveError('index.json is not an image index');
  const wanted = normalizePlatform(options.platform ?? hostPlatform());
  const targets: LayoutEntry[] = [];
  for (const entry of document.index.manifests) {
    const kind = (
      await images.blobs.document(entry.digest).catch((err: Error) => {
        throw archiveError(`index.json refers to ${entry.digest}: ${err.message}`);
      })
    ).kind;
    const target: ImageTarget =
      kind === 'index'
        ? {
            manifest: descriptorOf(
              selectManifest((await images.blobs.index(entry.digest)).manifests, wanted),
            ),
            index: descriptorOf(entry),
          }
        : { manifest: descriptorOf(entry) };
    targets.push({ target, ...(entry.annotations ? { annotations: entry.annotations } : {}) });
  }
  return targets;
}

async function legacyImages(
  images: ImageStore,
  contents: ArchiveContents,
  items: LegacyManifestItem[],
  options: LoadOptions,
): Promise<LoadedImage[]> {
  const layout = await layoutTargets(images, contents, options);
  const repositories = parseRepositories(contents.metadata.get('repositories'));
  const loaded: LoadedImage[] = [];
  for (const [i, item] of items.entries()) {
    const where = `manifest.json entry ${i}`;
    const configBlob = memberBlob(contents, item.Config, where);
    const layerBlobs = item.Layers.map((layer) => memberBlob(contents, layer, where));
    const names = [...(item.RepoTags ?? [])];
    names.push(...repositoryNames(contents, repositories, item, layerBlobs.at(-1)?.digest));

    // The OCI layout's own manifest when there is one for this image: its digest is kept.
    const match = await findLayoutManifest(images, layout, configBlob.digest, layerBlobs);
    let target: ImageTarget;
    if (match) {
      target = match.target;
      names.push(...annotatedNames(match.annotations, options.baseName));
    } else {
      const layers: Descriptor[] = [];
      for (const blob of layerBlobs) {
        const compression = sniffCompression(await blobHead(images.content, blob.digest));
        if (compression === undefined)
          throw archiveError(`${where} has a layer that is not a tar, gzip or zstd`);
        layers.push({ mediaType: LAYER_MEDIA_TYPE[compression], digest: blob.digest, size: blob.size });
      }
      const manifest: ImageManifest = {
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.ociManifest,
        config: { mediaType: MEDIA_TYPE.ociConfig, digest: configBlob.digest, size: configBlob.size },
        layers,
      };
      const info = await images.content.writeBlob(Buffer.from(JSON.stringify(manifest)));
      target = { manifest: { mediaType: MEDIA_TYPE.ociManifest, digest: info.digest, size: info.size } };
    }
    loaded.push(await verifyImage(images, target, normalisedNames(names, where), where));
  }
  return loaded;
}

async function findLayoutManifest(
  images: ImageStore,
  layout: LayoutEntry[],
  configDigest: string,
  layers: Array<{ digest: string }>,
): Promise<LayoutEntry | undefined> {
  for (const candidate of layout) {
    const manifest = await images.blobs.manifest(candidate.target.manifest.digest);
    if (
      manifest.config.digest === configDigest &&
      manifest.layers.length === layers.length &&
      manifest.layers.every((layer, i) => layer.digest === layers[i]?.digest)
    ) {
      return candidate;
    }
  }
  return undefined;
}

/** Store an archive's blobs and resolve its images, verified; nothing is recorded yet. */
export async function readImageArchive(
  input: AsyncIterable<Uint8Array>,
  options: LoadOptions,
): Promise<LoadedImage[]> {
  const contents = await ingestArchive(input, {
    content: options.images.content,
    tempDir: options.tempDir,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const legacy = contents.metadata.get('manifest.json');
  if (legacy) return legacyImages(options.images, contents, parseLegacyManifest(legacy), options);
  if (!contents.metadata.has('index.json')) {
    throw archiveError('it has neither manifest.json nor index.json (is it a docker save or OCI archive?)');
  }
  const loaded: LoadedImage[] = [];
  for (const [i, { target, annotations }] of (
    await layoutTargets(options.images, contents, options)
  ).entries()) {
    const where = `index.json entry ${i}`;
    loaded.push(
      await verifyImage(
        options.images,
        target,
        normalisedNames(annotatedNames(annotations, options.baseName), where),
        where,
      ),
    );
  }
  if (loaded.length === 0) throw archiveError('index.json lists no images');
  return loaded;
}

/** Record loaded images at once and report them as `docker load` does. */
export async function recordLoaded(
  images: ImageStore,
  loaded: LoadedImage[],
  onProgress?: ImageProgressCallback,
): Promise<RecordOutcome[]> {
  const outcomes = await images.recordMany(loaded.map(({ target, names }) => ({ target, names })));
  for (const outcome of outcomes) {
    for (const { name, from } of outcome.moved) {
      onProgress?.({
        status: `The image ${familiarName(name)} already exists, renaming the old one with ID ${from} to empty string`,
      });
    }
    if (outcome.names.length === 0) onProgress?.({ status: `Loaded image ID: ${outcome.id}` });
    for (const name of outcome.names) onProgress?.({ status: `Loaded image: ${familiarName(name)}` });
  }
  return outcomes;
}

/** Load every image of an archive and record it. */
export async function loadImages(
  input: AsyncIterable<Uint8Array>,
  options: LoadOptions,
): Promise<RecordOutcome[]> {
  const loaded = await readImageArchive(input, options);
  return recordLoaded(options.images, loaded, options.onProgress);
}
