/** Manifest documents from a registry: classify, validate, and refuse what berth cannot pull. */
import { invalidArgument } from '../../common/errors.js';
import { parseDigest } from '../../content/digest.js';
import { MEDIA_TYPE, type Descriptor, type ImageIndex, type ImageManifest } from '../../oci/image-spec.js';

export const SCHEMA1_MEDIA_TYPES = [
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
];

/** Layers a registry may not serve (Windows base layers and the like), pulled from their `urls`. */
export const FOREIGN_LAYER_MEDIA_TYPES = new Set([
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

export const INDEX_MEDIA_TYPES = new Set<string>([MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerManifestList]);
export const IMAGE_MANIFEST_MEDIA_TYPES = new Set<string>([
  MEDIA_TYPE.ociManifest,
  MEDIA_TYPE.dockerManifest,
]);

/** The Accept header for manifest requests: every type berth understands (schema 1 is refused). */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPE.ociIndex,
  MEDIA_TYPE.dockerManifestList,
  MEDIA_TYPE.ociManifest,
  MEDIA_TYPE.dockerManifest,
].join(', ');

/** Registries (and berth's store) cap manifests at 4 MiB. */
export const MANIFEST_SIZE_LIMIT = 4 * 1024 * 1024;

export type ManifestDocument =
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest }
  | { kind: 'index'; mediaType: string; index: ImageIndex };

function validateDescriptor(value: unknown, where: string): Descriptor {
  if (typeof value !== 'object' || value === null) throw invalidArgument(`${where} is not a descriptor`);
  const d = value as Partial<Descriptor>;
  if (typeof d.mediaType !== 'string' || d.mediaType === '')
    throw invalidArgument(`${where} has no mediaType`);
  if (typeof d.digest !== 'string') throw invalidArgument(`${where} has no digest`);
  parseDigest(d.digest, `${where} digest`);
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw invalidArgument(`${where} has an invalid size`);
  }
  if (
    d.urls !== undefined &&
    d.urls !== null &&
    !(Array.isArray(d.urls) && d.urls.every((url: unknown) => typeof url === 'string'))
  )
    throw invalidArgument(`${where} has urls that are not a list of strings`);
  if (d.platform !== undefined) {
    const p = d.platform as unknown as Record<string, unknown>;
    if (typeof p !== 'object' || p === null || typeof p.os !== 'string' || typeof p.architecture !== 'string')
      throw invalidArgument(`${where} has a platform without a string os and architecture`);
    if (p.variant !== undefined && typeof p.variant !== 'string')
      throw invalidArgument(`${where} has a platform variant that is not a string`);
  }
  return value as Descriptor;
}

const schema1Error = (where: string): Error =>
  invalidArgument(
    `${where} is a Docker image manifest schema 1, which berth does not support; ` +
      'push the image again with a current Docker or skopeo to convert it to schema 2 or OCI',
  );

/**
 * Parse manifest bytes. The type comes from the document's `mediaType`, else from the HTTP
 * Content-Type, else from its shape (an OCI manifest may omit `mediaType`).
 */
export function parseManifestDocument(
  data: Uint8Array,
  contentType: string | undefined,
  where: string,
): ManifestDocument {
  const headerType = contentType?.split(';')[0]?.trim();
  if (headerType !== undefined && SCHEMA1_MEDIA_TYPES.includes(headerType)) throw schema1Error(where);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    throw invalidArgument(`${where} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw invalidArgument(`${where} is not a JSON object`);
  const document = parsed as Record<string, unknown>;
  if (
    document.schemaVersion === 1 ||
    (typeof document.mediaType === 'string' && SCHEMA1_MEDIA_TYPES.includes(document.mediaType))
  ) {
    throw schema1Error(where);
  }
  if (document.schemaVersion !== 2)
    throw invalidArgument(`${where} has unsupported schemaVersion ${String(document.schemaVersion)}`);
  const declared = typeof document.mediaType === 'string' ? document.mediaType : undefined;
  const mediaType =
    declared ??
    (headerType !== undefined &&
    (INDEX_MEDIA_TYPES.has(headerType) || IMAGE_MANIFEST_MEDIA_TYPES.has(headerType))
      ? headerType
      : Array.isArray(document.manifests)
        ? MEDIA_TYPE.ociIndex
        : MEDIA_TYPE.ociManifest);
  if (INDEX_MEDIA_TYPES.has(mediaType)) {
    if (!Array.isArray(document.manifests)) throw invalidArgument(`${where} is an index without "manifests"`);
    document.manifests.forEach((m, i) => validateDescriptor(m, `${where} manifests[${i}]`));
    return { kind: 'index', mediaType, index: document as unknown as ImageIndex };
  }
  if (IMAGE_MANIFEST_MEDIA_TYPES.has(mediaType)) {
    validateDescriptor(document.config, `${where} config`);
    if (!Array.isArray(document.layers)) throw invalidArgument(`${where} has no "layers"`);
    document.layers.forEach((l, i) => validateDescriptor(l, `${where} layers[${i}]`));
    return { kind: 'manifest', mediaType, manifest: document as unknown as ImageManifest };
  }
  throw invalidArgument(`${where} has unsupported media type "${mediaType}"`);
}

/** Refuse foreign (non-distributable) layers: they are not in the registry and berth does not fetch them. */
export function refuseForeignLayers(manifest: ImageManifest, where: string): void {
  for (const layer of manifest.layers) {
    if (
      FOREIGN_LAYER_MEDIA_TYPES.has(layer.mediaType) ||
      // `"urls": null` is an empty list, as Go reads it.
      (layer.urls ?? []).length > 0
    ) {
      throw invalidArgument(
        `${where} has a foreign (non-distributable) layer ${layer.digest} (${layer.mediaType}) that must be ` +
          'fetched from external URLs; berth does not pull foreign layers (they are used by Windows images)',
      );
    }
  }
}
