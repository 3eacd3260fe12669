/** Which blobs a manifest or index refers to: what garbage collection follows from its roots. */
import type { Descriptor } from '../oci/image-spec.js';
import { MEDIA_TYPE } from '../oci/image-spec.js';

/** Media types whose blobs are JSON documents that point at other blobs. */
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MEDIA_TYPE.ociManifest,
  MEDIA_TYPE.ociIndex,
  MEDIA_TYPE.dockerManifest,
  MEDIA_TYPE.dockerManifestList,
]);

/** Larger blobs are never manifests (registries cap manifests at 4 MiB). */
export const MANIFEST_SIZE_MAX = 4 * 1024 * 1024;

const isDescriptor = (value: unknown): value is Descriptor =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Descriptor).digest === 'string' &&
  typeof (value as Descriptor).mediaType === 'string';

/**
 * The descriptors a manifest (config, layers, subject) or an index (manifests, subject) refers to;
 * empty for anything that is not such a JSON document.
 */
export function referencedDescriptors(data: Uint8Array): Descriptor[] {
  if (data.length === 0 || data.length > MANIFEST_SIZE_MAX) return [];
  // JSON may start with whitespace, and registries serve manifests byte for byte: a manifest that
  // begins with a newline must still keep its blobs.
  const first = data.findIndex((byte) => byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d);
  if (first === -1 || data[first] !== 0x7b /* { */) return [];
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return [];
  }
  if (typeof document !== 'object' || document === null) return [];
  const fields = document as Record<string, unknown>;
  const found: Descriptor[] = [];
  const add = (value: unknown): void => {
    if (isDescriptor(value)) found.push(value);
  };
  if (Array.isArray(fields.manifests)) fields.manifests.forEach(add);
  add(fields.config);
  if (Array.isArray(fields.layers)) fields.layers.forEach(add);
  add(fields.subject);
  return found;
}
