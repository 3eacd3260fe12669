/**
 * Image names as the store keeps them: fully qualified references with either a tag or a digest
 * (`docker.io/library/busybox:latest`, `docker.io/library/busybox@sha256:...`), and image IDs
 * (the config digest) with Docker's short forms.
 */
import { invalidArgument } from '../../common/errors.js';
import {
  familiarReference,
  formatReference,
  parseReference,
  repositoryName,
  type ImageReference,
} from '../reference.js';

/** Parse and normalise a name to record. A digest pins content, so a tag beside it is dropped. */
export function normalizeName(input: string): ImageReference {
  const ref = parseReference(input);
  if (ref.digest !== undefined) delete ref.tag;
  return ref;
}

/** The key a name is stored under. */
export const nameKey = (input: string): string => formatReference(normalizeName(input));

/** A stored name parsed back (stored names are already normalised). */
export const parseName = (name: string): ImageReference => parseReference(name, { defaultTag: false });

export const isDigestName = (name: string): boolean => name.includes('@');

/** `docker.io/library/busybox` for `docker.io/library/busybox:latest`. */
export const repositoryOf = (name: string): string => repositoryName(parseName(name));

/** `busybox:latest`, as Docker shows a name. */
export const familiarName = (name: string): string => familiarReference(parseName(name));

/** A tag name (`busybox:latest`) for a tag; refuses digests, which cannot be given as tags. */
export function tagName(input: string): string {
  const ref = parseReference(input);
  if (ref.digest !== undefined) {
    throw invalidArgument(`refusing to create a tag with a digest reference: "${input}"`);
  }
  return formatReference(ref);
}

const FULL_ID = /^(?:sha256:)?([0-9a-f]{64})$/;
const ID_PREFIX = /^(?:sha256:)?([0-9a-f]{1,64})$/;

/** The image ID for a full ID (`sha256:<64 hex>` or the bare hex), else undefined. */
export function fullImageId(input: string): string | undefined {
  const match = FULL_ID.exec(input);
  return match ? `sha256:${match[1]}` : undefined;
}

/** The hex prefix of a short ID (`1a2b3c`, `sha256:1a2b`), else undefined. */
export function imageIdPrefix(input: string): string | undefined {
  return ID_PREFIX.exec(input)?.[1];
}

/** The 12 hex characters Docker shows for an image or container ID. */
export const shortId = (id: string): string => id.slice(id.indexOf(':') + 1).slice(0, 12);
