/**
 * The image records on disk: `<dataRoot>/images/images.json`, one document written atomically
 * (temporary file, fsync, rename), so a load of several images is recorded all at once or not at
 * all and a reader never sees half a record.
 *
 *   images: config digest (the image ID) -> the manifests (and indexes) stored for it
 *   names:  normalised reference (tag or digest) -> image ID and the manifest it names
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../common/atomic-file.js';
import { errnoCode, internal } from '../../common/errors.js';
import type { Descriptor } from '../../oci/image-spec.js';

export const RECORDS_FILE = 'images.json';
const FORMAT_VERSION = 1;

/** What a name points at: an image manifest, and the index it was chosen from when there was one. */
export interface ImageTarget {
  manifest: Descriptor;
  index?: Descriptor;
}

export interface ImageRecord {
  /** The config digest: Docker's image ID. */
  id: string;
  /** Manifests stored for this config, most recently recorded first. */
  targets: ImageTarget[];
  /** When the image was first recorded (ISO 8601). */
  added: string;
  /** When a name was last added (ISO 8601), Docker's Metadata.LastTagTime. */
  lastTagged?: string;
}

export interface NameRecord {
  image: string;
  /** Digest of the image manifest the name resolves to. */
  manifest: string;
  /** Digest of the index the name resolved to, when it was pulled through one. */
  index?: string;
}

export interface Records {
  images: Map<string, ImageRecord>;
  names: Map<string, NameRecord>;
}

interface RecordsDocument {
  version: number;
  images: Record<string, ImageRecord>;
  names: Record<string, NameRecord>;
}

export const emptyRecords = (): Records => ({ images: new Map(), names: new Map() });

export function cloneRecords(records: Records): Records {
  return {
    images: new Map(
      [...records.images].map(([id, image]) => [id, { ...image, targets: [...image.targets] }]),
    ),
    names: new Map(records.names),
  };
}

export async function readRecords(dir: string): Promise<Records> {
  const path = join(dir, RECORDS_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return emptyRecords();
    throw err;
  }
  let document: RecordsDocument;
  try {
    document = JSON.parse(text) as RecordsDocument;
  } catch (err) {
    throw internal(`image records ${path} are not valid JSON`, err);
  }
  if (
    document?.version !== FORMAT_VERSION ||
    typeof document.images !== 'object' ||
    typeof document.names !== 'object'
  ) {
    throw internal(`image records ${path} have an unknown format (version ${String(document?.version)})`);
  }
  return {
    images: new Map(Object.entries(document.images)),
    names: new Map(Object.entries(document.names)),
  };
}

export async function writeRecords(dir: string, records: Records): Promise<void> {
  const sorted = <T>(map: Map<string, T>): Record<string, T> =>
    Object.fromEntries([...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const document: RecordsDocument = {
    version: FORMAT_VERSION,
    images: sorted(records.images),
    names: sorted(records.names),
  };
  await writeJsonAtomic(join(dir, RECORDS_FILE), document);
}
