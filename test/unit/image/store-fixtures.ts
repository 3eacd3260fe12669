/** Helpers for the image store, save, load and import tests: temporary roots, small images, tar reading. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ByteSource } from '../../../src/archive/byte-source.js';
import { readTar } from '../../../src/archive/tar-reader.js';
import { tarArchive, type TarEntry } from '../../../src/archive/tar-writer.js';
import { sha256Of } from '../../../src/content/digest.js';
import { FsContentStore } from '../../../src/content/fs-store.js';
import type { ContentStore } from '../../../src/content/store.js';
import { ImageStore } from '../../../src/image/store/image-store.js';
import type { ImageTarget } from '../../../src/image/store/records.js';
import {
  MEDIA_TYPE,
  type ContainerConfig,
  type HistoryEntry,
  type ImageConfig,
  type ImageManifest,
} from '../../../src/oci/image-spec.js';

interface AfterHook {
  after(fn: () => Promise<void>): void;
}

export async function tempRoot(t: AfterHook): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'berth-images-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  return root;
}

export async function openStores(
  t: AfterHook,
): Promise<{ root: string; content: FsContentStore; images: ImageStore }> {
  const root = await tempRoot(t);
  const content = new FsContentStore(root);
  return { root, content, images: await ImageStore.open(root, content) };
}

export async function* chunks(data: Buffer, size = 7000): AsyncGenerator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.from(chunk));
  return Buffer.concat(parts);
}

/** Every member of a tar archive: path -> body (links as `-> target`). */
export async function tarMembers(archive: Buffer): Promise<Map<string, Buffer>> {
  const members = new Map<string, Buffer>();
  for await (const { header, body } of readTar(new ByteSource(chunks(archive)))) {
    if (header.type === 'file') members.set(header.path, await collect(body));
    else if (header.type !== 'directory') members.set(header.path, Buffer.from(`-> ${header.linkTarget}`));
  }
  return members;
}

/**
 * zstd frames made of raw (stored) blocks: valid zstd that any decoder reads, without needing a
 * compressor in the tests.
 */
export function zstdStored(data: Buffer): Buffer {
  const BLOCK = 128 * 1024;
  // Magic, then a frame header: no checksum, no content size, a 128 KiB window.
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3])];
  for (let at = 0; at === 0 || at < data.length; at += BLOCK) {
    const block = data.subarray(at, at + BLOCK);
    const last = at + BLOCK >= data.length ? 1 : 0;
    const header = (block.length << 3) | last; // type 0: raw
    parts.push(Buffer.from([header & 0xff, (header >> 8) & 0xff, (header >> 16) & 0xff]), block);
  }
  return Buffer.concat(parts);
}

export type Compression = 'none' | 'gzip' | 'zstd';

const LAYER_TYPES: Record<Compression, string> = {
  none: MEDIA_TYPE.ociLayer,
  gzip: MEDIA_TYPE.ociLayerGzip,
  zstd: MEDIA_TYPE.ociLayerZstd,
};

export function compress(data: Buffer, compression: Compression): Buffer {
  if (compression === 'gzip') return gzipSync(data);
  if (compression === 'zstd') return zstdStored(data);
  return data;
}

export const fileEntry = (path: string, content: string | Buffer, mode = 0o644): TarEntry => ({
  path,
  type: 'file',
  mode,
  content: Buffer.from(content),
});

export interface TestImageSpec {
  /** One tar per layer (files by path). */
  layers?: Array<Record<string, string>>;
  compression?: Compression;
  config?: ContainerConfig;
  history?: HistoryEntry[];
  created?: string;
  architecture?: string;
  /** Extra config field to make the config (and so the image ID) unique. */
  salt?: string;
}

export interface TestImage {
  id: string;
  target: ImageTarget;
  manifest: ImageManifest;
  config: ImageConfig;
  /** Uncompressed layer tars. */
  layers: Buffer[];
}

/** Build an image in the content store from a few files per layer. */
export async function storeImage(content: ContentStore, spec: TestImageSpec = {}): Promise<TestImage> {
  const compression = spec.compression ?? 'none';
  const layers = (spec.layers ?? [{ 'etc/hostname': 'test\n' }]).map((files) =>
    tarArchive(Object.entries(files).map(([path, text]) => fileEntry(path, text))),
  );
  const config: ImageConfig & { salt?: string } = {
    created: spec.created ?? '2024-01-02T03:04:05Z',
    architecture: spec.architecture ?? 'amd64',
    os: 'linux',
    config: spec.config ?? { Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map(sha256Of) },
    history:
      spec.history ?? layers.map((_, i) => ({ created: '2024-01-02T03:04:05Z', created_by: `layer ${i}` })),
    ...(spec.salt !== undefined ? { salt: spec.salt } : {}),
  };
  const configInfo = await content.writeBlob(Buffer.from(JSON.stringify(config)));
  const layerDescriptors = [];
  for (const layer of layers) {
    const blob = compress(layer, compression);
    const info = await content.writeBlob(blob);
    layerDescriptors.push({ mediaType: LAYER_TYPES[compression], digest: info.digest, size: info.size });
  }
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociManifest,
    config: { mediaType: MEDIA_TYPE.ociConfig, digest: configInfo.digest, size: configInfo.size },
    layers: layerDescriptors,
  };
  const manifestInfo = await content.writeBlob(Buffer.from(JSON.stringify(manifest)));
  return {
    id: configInfo.digest,
    target: {
      manifest: { mediaType: MEDIA_TYPE.ociManifest, digest: manifestInfo.digest, size: manifestInfo.size },
    },
    manifest,
    config,
    layers,
  };
}
