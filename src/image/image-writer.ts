import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdir, writeFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  MEDIA_TYPE,
  REF_NAME_ANNOTATION,
  type ContainerConfig,
  type Descriptor,
  type HistoryEntry,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
} from '../oci/image-spec.js';
import { tarArchive, type TarEntry } from '../archive/tar-writer.js';

/** An image assembled in memory: uncompressed layer tars plus its container config. */
export interface ImageSource {
  /** Uncompressed layer tarballs, base layer first. */
  layers: Buffer[];
  config: ContainerConfig;
  history: HistoryEntry[];
  architecture?: string;
  created?: string;
}

export const sha256Digest = (data: Uint8Array): string =>
  `sha256:${createHash('sha256').update(data).digest('hex')}`;
const hexOf = (digest: string): string => digest.slice('sha256:'.length);

interface Blob {
  descriptor: Descriptor;
  data: Buffer;
}

function blob(mediaType: string, data: Buffer): Blob {
  return { descriptor: { mediaType, digest: sha256Digest(data), size: data.length }, data };
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

function imageConfigBlob(source: ImageSource): Blob {
  const config: ImageConfig = {
    created: source.created ?? '1970-01-01T00:00:00Z',
    architecture: source.architecture ?? 'amd64',
    os: 'linux',
    config: source.config,
    rootfs: { type: 'layers', diff_ids: source.layers.map(sha256Digest) },
    history: source.history,
  };
  return blob(MEDIA_TYPE.ociConfig, json(config));
}

/** Every blob of one image (layers compressed or not), with the manifest last. */
function imageBlobs(source: ImageSource, compress: boolean): { blobs: Blob[]; manifest: Blob; config: Blob } {
  const config = imageConfigBlob(source);
  const layers = source.layers.map((layer) =>
    compress
      ? blob(MEDIA_TYPE.ociLayerGzip, gzipSync(layer, { level: 6 }))
      : blob(MEDIA_TYPE.ociLayer, layer),
  );
  const manifestValue: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociManifest,
    config: config.descriptor,
    layers: layers.map((layer) => layer.descriptor),
  };
  const manifest = blob(MEDIA_TYPE.ociManifest, json(manifestValue));
  return { blobs: [config, ...layers, manifest], manifest, config };
}

/**
 * Write an OCI image layout directory holding one image tagged `tag`, with gzip layers.
 * The directory is written beside `dir` and renamed into place, so it is complete or absent.
 */
export async function writeOciLayout(dir: string, source: ImageSource, tag: string): Promise<Descriptor> {
  const { blobs, manifest } = imageBlobs(source, true);
  const temp = `${dir}.partial-${randomBytes(4).toString('hex')}`;
  await mkdir(join(temp, 'blobs', 'sha256'), { recursive: true });
  for (const { descriptor, data } of blobs) {
    await writeFile(join(temp, 'blobs', 'sha256', hexOf(descriptor.digest)), data);
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociIndex,
    manifests: [{ ...manifest.descriptor, annotations: { [REF_NAME_ANNOTATION]: tag } }],
  };
  await writeFile(join(temp, 'index.json'), json(index));
  await writeFile(join(temp, 'oci-layout'), json({ imageLayoutVersion: '1.0.0' }));
  await rm(dir, { recursive: true, force: true });
  await rename(temp, dir);
  return manifest.descriptor;
}

/**
 * A `docker save` archive as Docker 25+ writes it: an OCI layout (uncompressed layers) plus the
 * legacy manifest.json and repositories files that older `docker load` reads.
 */
export function dockerSaveArchive(source: ImageSource, repoTag: string): Buffer {
  const { blobs, manifest, config } = imageBlobs(source, false);
  const layers = blobs.filter((b) => b.descriptor.mediaType === MEDIA_TYPE.ociLayer);
  const colon = repoTag.lastIndexOf(':');
  const repository = repoTag.slice(0, colon);
  const tag = repoTag.slice(colon + 1);
  const topLayerId = hexOf(sha256Digest(source.layers.at(-1) ?? Buffer.alloc(0)));
  const file = (path: string, content: Buffer): TarEntry => ({ path, type: 'file', mode: 0o644, content });
  const dirEntry = (path: string): TarEntry => ({ path, type: 'directory', mode: 0o755 });
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociIndex,
    manifests: [
      {
        ...manifest.descriptor,
        annotations: {
          'io.containerd.image.name': `docker.io/library/${repoTag}`,
          [REF_NAME_ANNOTATION]: tag,
        },
      },
    ],
  };
  const entries: TarEntry[] = [
    dirEntry('blobs'),
    dirEntry('blobs/sha256'),
    ...blobs.map((b) => file(`blobs/sha256/${hexOf(b.descriptor.digest)}`, b.data)),
    file('index.json', json(index)),
    file(
      'manifest.json',
      json([
        {
          Config: `blobs/sha256/${hexOf(config.descriptor.digest)}`,
          RepoTags: [repoTag],
          Layers: layers.map((l) => `blobs/sha256/${hexOf(l.descriptor.digest)}`),
        },
      ]),
    ),
    file('oci-layout', json({ imageLayoutVersion: '1.0.0' })),
    file('repositories', json({ [repository]: { [tag]: topLayerId } })),
  ];
  return tarArchive(entries);
}
