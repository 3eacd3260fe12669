/**
 * The image store: names (normalised references, tag or digest) -> image manifests, and images
 * identified by their config digest (Docker's image ID), persisted in records.ts. Blobs live in
 * the content store; this keeps which of them are images, and is the root set of content GC.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { conflict, internal, invalidArgument, notFound } from '../../common/errors.js';
import type { ContentStore, GcOptions } from '../../content/store.js';
import type { Descriptor, ImageConfig, ImageManifest } from '../../oci/image-spec.js';
import { chainId } from '../../snapshot/apply-layer.js';
import { familiarReference, parseReference } from '../reference.js';
import { ImageBlobs } from './blobs.js';
import { historyOf, runConfigOf, type HistoryItem, type ImageRunConfig } from './image-config.js';
import { unpackedLayerSize } from './layer-size.js';
import { Mutex } from './lock.js';
import {
  familiarName,
  fullImageId,
  imageIdPrefix,
  isDigestName,
  nameKey,
  parseName,
  shortId,
  tagName,
} from './names.js';
import {
  cloneRecords,
  readRecords,
  writeRecords,
  type ImageRecord,
  type ImageTarget,
  type NameRecord,
  type Records,
} from './records.js';
import { planRemoval, type ContainerUsage, type DeleteItem } from './removal.js';

export interface RecordEntry {
  target: ImageTarget;
  /** Names to point at the target (any reference form; they are normalised). */
  names: string[];
}

export interface RecordOutcome {
  id: string;
  /** The normalised names recorded. */
  names: string[];
  /** Names that pointed at another image before, and which one. */
  moved: Array<{ name: string; from: string }>;
  /** Names that already pointed at this very target. */
  unchanged: string[];
}

export interface ResolvedImage {
  id: string;
  record: ImageRecord;
  /** The stored name the input matched, when it was a name. */
  name?: string;
  /** The name's target, else the image's most recently recorded one. */
  target: ImageTarget;
}

export interface ImageSummary {
  id: string;
  /** `busybox:latest` */
  repoTags: string[];
  /** `busybox@sha256:...` */
  repoDigests: string[];
  /** The config's creation time (ISO 8601), when it has one. */
  created?: string;
  /** Sum of the layer blobs' sizes as stored (compressed or not). */
  size: number;
  /** Sum of the uncompressed layer sizes, when every one is known. */
  unpackedSize?: number;
  labels: Record<string, string>;
  /** When the image was first recorded and last tagged (ISO 8601). */
  added: string;
  lastTagged?: string;
}

export interface ImageDetails extends ImageSummary {
  architecture: string;
  os: string;
  variant?: string;
  author?: string;
  comment?: string;
  /** The config as stored. */
  imageConfig: ImageConfig;
  /** The container defaults it carries, normalised. */
  runConfig: ImageRunConfig;
  diffIds: string[];
  /** Chain IDs of the layers, base first: the snapshot names they unpack to. */
  chainIds: string[];
  target: ImageTarget;
}

export interface ImageGcResult {
  removed: string[];
  reclaimedBytes: number;
  /** Chain IDs of every recorded image's layers: snapshots not in here can go. */
  chainIds: Set<string>;
}

export interface RemoveOptions {
  force?: boolean;
  containerUsing?: ContainerUsage;
}

/** Chain IDs of layers with these diff IDs, base first. */
export function chainIdsOf(diffIds: string[]): string[] {
  const chain: string[] = [];
  for (const diffId of diffIds) chain.push(chainId(chain.at(-1), diffId));
  return chain;
}

/** dockerd's text: a name shown in its familiar form with its tag (`:latest` when it has none). */
function noSuchImage(input: string): Error {
  let shown = input;
  try {
    if (fullImageId(input) === undefined) shown = familiarReference(parseReference(input));
  } catch {
    // not a name: shown as given
  }
  return notFound(`No such image: ${shown}`);
}

const sameTarget = (a: ImageTarget, b: ImageTarget): boolean =>
  a.manifest.digest === b.manifest.digest && a.index?.digest === b.index?.digest;

function namesIn(records: Records, id: string): string[] {
  return [...records.names]
    .filter(([, record]) => record.image === id)
    .map(([name]) => name)
    .sort();
}

function targetOf(record: ImageRecord, name: NameRecord): ImageTarget {
  const target = record.targets.find(
    (t) => t.manifest.digest === name.manifest && t.index?.digest === name.index,
  );
  if (!target) throw internal(`image ${record.id} has no record of manifest ${name.manifest}`);
  return target;
}

function byId(record: ImageRecord): ResolvedImage {
  const target = record.targets[0];
  if (!target) throw internal(`image ${record.id} has no manifest`);
  return { id: record.id, record, target };
}

/** Full ID, then name, then unambiguous ID prefix, as Docker looks images up. */
function resolveIn(records: Records, input: string): ResolvedImage {
  const id = fullImageId(input);
  if (id !== undefined) {
    const record = records.images.get(id);
    if (!record) throw noSuchImage(input);
    return byId(record);
  }
  let key: string | undefined;
  let parseError: unknown;
  try {
    key = nameKey(input);
  } catch (err) {
    parseError = err;
  }
  const name = key === undefined ? undefined : records.names.get(key);
  if (key !== undefined && name) {
    const record = records.images.get(name.image);
    if (!record) throw internal(`name ${key} points at image ${name.image}, which has no record`);
    return { id: record.id, record, name: key, target: targetOf(record, name) };
  }
  const prefix = imageIdPrefix(input);
  if (prefix !== undefined) {
    const matches = [...records.images.keys()].filter((candidate) =>
      candidate.startsWith(`sha256:${prefix}`),
    );
    if (matches.length > 1) {
      throw conflict(
        `image ID prefix "${input}" is ambiguous: it matches ${matches.length} images (${matches
          .map(shortId)
          .sort()
          .join(', ')}); give more characters`,
      );
    }
    const only = matches[0];
    if (only !== undefined) return byId(records.images.get(only) as ImageRecord);
  }
  if (parseError !== undefined) throw parseError;
  throw noSuchImage(input);
}

function applyRecord(records: Records, id: string, entry: RecordEntry, names: string[]): RecordOutcome {
  const now = new Date().toISOString();
  const previous = records.images.get(id);
  const image: ImageRecord = previous ? { ...previous } : { id, targets: [], added: now };
  image.targets = [entry.target, ...image.targets.filter((t) => !sameTarget(t, entry.target))];
  if (names.length > 0) image.lastTagged = now;
  records.images.set(id, image);
  const outcome: RecordOutcome = { id, names, moved: [], unchanged: [] };
  for (const name of names) {
    const before = records.names.get(name);
    if (
      before?.image === id &&
      before.manifest === entry.target.manifest.digest &&
      before.index === entry.target.index?.digest
    ) {
      outcome.unchanged.push(name);
      continue;
    }
    if (before && before.image !== id) outcome.moved.push({ name, from: before.image });
    const record: NameRecord = { image: id, manifest: entry.target.manifest.digest };
    if (entry.target.index) record.index = entry.target.index.digest;
    records.names.set(name, record);
  }
  return outcome;
}

export class ImageStore {
  readonly blobs: ImageBlobs;
  private readonly mutex = new Mutex();

  private constructor(
    readonly dir: string,
    readonly content: ContentStore,
    private state: Records,
  ) {
    this.blobs = new ImageBlobs(content);
  }

  /** Open (or create) the image records under `<dataRoot>/images`. */
  static async open(dataRoot: string, content: ContentStore): Promise<ImageStore> {
    const dir = join(dataRoot, 'images');
    await mkdir(dir, { recursive: true });
    return new ImageStore(dir, content, await readRecords(dir));
  }

  /** Apply a change to a copy of the records, write it, then make it current; one change at a time. */
  private mutate<T>(change: (records: Records) => T): Promise<T> {
    return this.mutex.run(async () => {
      const next = cloneRecords(this.state);
      const result = change(next);
      await writeRecords(this.dir, next);
      this.state = next;
      return result;
    });
  }

  private async requireBlob(descriptor: Descriptor, what: string): Promise<void> {
    const info = await this.content.info(descriptor.digest);
    if (!info) throw invalidArgument(`${what} ${descriptor.digest} is not in the content store`);
    if (info.size !== descriptor.size) {
      throw invalidArgument(
        `${what} ${descriptor.digest} has ${info.size} bytes in the content store, its descriptor says ${descriptor.size}`,
      );
    }
  }

  /** Check that every blob of a target is stored and consistent; returns the image ID and documents. */
  async readTarget(
    target: ImageTarget,
  ): Promise<{ id: string; manifest: ImageManifest; config: ImageConfig }> {
    if (target.index) {
      await this.requireBlob(target.index, 'index');
      const index = await this.blobs.index(target.index.digest);
      if (!index.manifests.some((d) => d.digest === target.manifest.digest)) {
        throw invalidArgument(
          `index ${target.index.digest} does not list manifest ${target.manifest.digest}`,
        );
      }
    }
    await this.requireBlob(target.manifest, 'manifest');
    const manifest = await this.blobs.manifest(target.manifest.digest);
    await this.requireBlob(manifest.config, 'image config');
    const config = await this.blobs.config(manifest.config.digest);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw invalidArgument(
        `image config ${manifest.config.digest} lists ${config.rootfs.diff_ids.length} diff IDs for ${manifest.layers.length} layers`,
      );
    }
    for (const layer of manifest.layers) await this.requireBlob(layer, 'layer');
    return { id: manifest.config.digest, manifest, config };
  }

  async record(target: ImageTarget, names: string[] = []): Promise<RecordOutcome> {
    return (await this.recordMany([{ target, names }]))[0] as RecordOutcome;
  }

  /** Record several images and their names in one atomic write: all of them or none. */
  async recordMany(entries: RecordEntry[]): Promise<RecordOutcome[]> {
    const prepared: Array<{ id: string; entry: RecordEntry; names: string[] }> = [];
    for (const entry of entries) {
      const { id } = await this.readTarget(entry.target);
      const names = [...new Set(entry.names.map(nameKey))];
      for (const name of names.filter(isDigestName)) {
        const digest = parseName(name).digest;
        if (digest !== entry.target.manifest.digest && digest !== entry.target.index?.digest) {
          throw invalidArgument(`name ${name} does not match manifest ${entry.target.manifest.digest}`);
        }
      }
      prepared.push({ id, entry, names });
    }
    return this.mutate((records) =>
      prepared.map(({ id, entry, names }) => applyRecord(records, id, entry, names)),
    );
  }

  resolve(input: string): ResolvedImage {
    return resolveIn(this.state, input);
  }

  /** The image's names, fully qualified and sorted. */
  namesOf(id: string): string[] {
    return namesIn(this.state, id);
  }

  /** The stored name record for a reference, if any. */
  nameRecord(input: string): NameRecord | undefined {
    return this.state.names.get(nameKey(input));
  }

  records(): ImageRecord[] {
    return [...this.state.images.values()];
  }

  /** Add a name (a tag) to the image `source` names; it moves away from any image it named before. */
  async tag(source: string, target: string): Promise<RecordOutcome> {
    const name = tagName(target);
    return this.mutate((records) => {
      const resolved = resolveIn(records, source);
      return applyRecord(records, resolved.id, { target: resolved.target, names: [name] }, [name]);
    });
  }

  /** Remove a name only; the image stays, unnamed if it was its last name. Returns the image ID. */
  async untag(input: string): Promise<string> {
    const key = nameKey(input);
    return this.mutate((records) => {
      const record = records.names.get(key);
      if (!record) throw noSuchImage(input);
      records.names.delete(key);
      return record.image;
    });
  }

  /** `docker rmi`: see removal.ts for the rules. Blobs stay until gc(). */
  async remove(input: string, options: RemoveOptions = {}): Promise<DeleteItem[]> {
    return this.mutate((records) => {
      const resolved = resolveIn(records, input);
      const usedBy = options.containerUsing?.(resolved.id);
      const plan = planRemoval({
        imageId: resolved.id,
        names: namesIn(records, resolved.id),
        ...(resolved.name !== undefined ? { matchedName: resolved.name } : {}),
        input,
        force: options.force === true,
        ...(usedBy ? { usedBy } : {}),
      });
      const items: DeleteItem[] = [];
      for (const name of plan.untag) {
        records.names.delete(name);
        items.push({ untagged: familiarName(name) });
      }
      if (plan.deleteImage) {
        records.images.delete(resolved.id);
        items.push({ deleted: resolved.id });
      }
      return items;
    });
  }

  /** Remove images no container uses: unnamed ones, or all of them with `all`. */
  async prune(options: { all?: boolean; containerUsing?: ContainerUsage } = {}): Promise<DeleteItem[]> {
    return this.mutate((records) => {
      const items: DeleteItem[] = [];
      for (const id of [...records.images.keys()]) {
        const names = namesIn(records, id);
        if ((names.length > 0 && options.all !== true) || options.containerUsing?.(id)) continue;
        for (const name of names) {
          records.names.delete(name);
          items.push({ untagged: familiarName(name) });
        }
        records.images.delete(id);
        items.push({ deleted: id });
      }
      return items;
    });
  }

  private async layerSizes(
    manifest: ImageManifest,
  ): Promise<{ size: number; unpacked: Array<number | undefined> }> {
    let size = 0;
    const unpacked: Array<number | undefined> = [];
    for (const layer of manifest.layers) {
      size += layer.size;
      unpacked.push(await unpackedLayerSize(this.content, layer));
    }
    return { size, unpacked };
  }

  private async summarize(record: ImageRecord, target: ImageTarget): Promise<ImageSummary> {
    const manifest = await this.blobs.manifest(target.manifest.digest);
    const config = await this.blobs.config(record.id);
    const { size, unpacked } = await this.layerSizes(manifest);
    const names = this.namesOf(record.id);
    const summary: ImageSummary = {
      id: record.id,
      repoTags: names.filter((name) => !isDigestName(name)).map(familiarName),
      repoDigests: names.filter(isDigestName).map(familiarName),
      size,
      labels: runConfigOf(config).labels,
      added: record.added,
    };
    if (config.created !== undefined) summary.created = config.created;
    if (unpacked.every((n) => n !== undefined)) {
      summary.unpackedSize = unpacked.reduce((sum: number, n) => sum + (n as number), 0);
    }
    if (record.lastTagged !== undefined) summary.lastTagged = record.lastTagged;
    return summary;
  }

  /** Every image, newest (by config creation time) first. */
  async list(): Promise<ImageSummary[]> {
    const summaries = await Promise.all(
      this.records().map((record) => this.summarize(record, byId(record).target)),
    );
    const time = (summary: ImageSummary): number => Date.parse(summary.created ?? '') || 0;
    return summaries.sort((a, b) => time(b) - time(a) || a.id.localeCompare(b.id));
  }

  async config(input: string): Promise<ImageConfig> {
    return this.blobs.config(this.resolve(input).id);
  }

  async inspect(input: string): Promise<ImageDetails> {
    const resolved = this.resolve(input);
    const config = await this.blobs.config(resolved.id);
    const extra = config as ImageConfig & { comment?: unknown };
    const details: ImageDetails = {
      ...(await this.summarize(resolved.record, resolved.target)),
      architecture: config.architecture,
      os: config.os,
      imageConfig: config,
      runConfig: runConfigOf(config),
      diffIds: [...config.rootfs.diff_ids],
      chainIds: chainIdsOf(config.rootfs.diff_ids),
      target: resolved.target,
    };
    if (config.variant !== undefined) details.variant = config.variant;
    if (config.author !== undefined) details.author = config.author;
    if (typeof extra.comment === 'string') details.comment = extra.comment;
    return details;
  }

  /** `docker history`: newest first; layer sizes uncompressed where known, else as stored. */
  async history(input: string): Promise<HistoryItem[]> {
    const resolved = this.resolve(input);
    const manifest = await this.blobs.manifest(resolved.target.manifest.digest);
    const config = await this.blobs.config(resolved.id);
    const { unpacked } = await this.layerSizes(manifest);
    const sizes = manifest.layers.map((layer, i) => unpacked[i] ?? layer.size);
    const tags = this.namesOf(resolved.id)
      .filter((name) => !isDigestName(name))
      .map(familiarName);
    return historyOf(resolved.id, config, sizes, tags);
  }

  /** Chain IDs of every recorded image's layers. */
  async chainIdsInUse(): Promise<Set<string>> {
    const inUse = new Set<string>();
    for (const record of this.records()) {
      for (const id of chainIdsOf((await this.blobs.config(record.id)).rootfs.diff_ids)) inUse.add(id);
    }
    return inUse;
  }

  /**
   * Sweep the content store of every blob no image record reaches (from each manifest and
   * index). The caller must keep new content from being stored meanwhile (ImageService does).
   */
  async gc(
    options: Pick<GcOptions, 'onRemove' | 'only'> & { roots?: Iterable<string> } = {},
  ): Promise<ImageGcResult> {
    const roots = new Set<string>(options.roots);
    for (const record of this.records()) {
      for (const target of record.targets) {
        roots.add(target.manifest.digest);
        if (target.index) roots.add(target.index.digest);
      }
    }
    const result = await this.content.gc(roots, {
      ...(options.onRemove ? { onRemove: options.onRemove } : {}),
      ...(options.only ? { only: options.only } : {}),
    });
    return {
      removed: result.removed,
      reclaimedBytes: result.reclaimedBytes,
      chainIds: await this.chainIdsInUse(),
    };
  }
}
