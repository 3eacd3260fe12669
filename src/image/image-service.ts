/**
 * The image service: what the engine and the API call. It ties the registry client, the content
 * store, the image store and the snapshotter together: pull -> store -> unpack -> record, and
 * push, list, inspect, history, tag, remove, save, load, import, prune.
 *
 * Locking: operations that store new content hold a shared lock until their image is recorded;
 * prune and gc hold it exclusively, so GC never sweeps blobs or snapshots of an image that is
 * still on its way in.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { notFound } from '../common/errors.js';
import { FsContentStore } from '../content/fs-store.js';
import type { ContentStore } from '../content/store.js';
import type { Platform } from '../oci/image-spec.js';
import type { Snapshotter } from '../snapshot/snapshotter.js';
import { readImportTarball, type ImportOptions } from './import.js';
import { readImageArchive, recordLoaded, type LoadOptions } from './load.js';
import { familiarReference, parseReference, repositoryName } from './reference.js';
import { RegistryClient } from './registry/client.js';
import { pull, type DownloadPlan } from './registry/pull.js';
import { push } from './registry/push.js';
import { planSave, writeSave } from './save.js';
import type { HistoryItem } from './store/image-config.js';
import {
  chainIdsOf,
  ImageStore,
  type ImageDetails,
  type ImageGcResult,
  type ImageSummary,
  type RecordOutcome,
} from './store/image-store.js';
import { SharedLock } from './store/lock.js';
import { familiarName, isDigestName, nameKey, parseName, repositoryOf } from './store/names.js';
import type { ImageProgressCallback } from './store/progress.js';
import type { ImageRecord, ImageTarget } from './store/records.js';
import type { ContainerUsage, DeleteItem } from './store/removal.js';
import { removeUnusedSnapshots } from './store/snapshot-gc.js';
import { snapshotUnpacker, type Unpacker } from './store/unpack.js';

export type ImageEventAction = 'pull' | 'push' | 'tag' | 'untag' | 'delete' | 'load' | 'import' | 'save';

/** What Docker reports on its event stream for images. */
export interface ImageEvent {
  action: ImageEventAction;
  /** Image ID. */
  id: string;
  /** The name involved, familiar form (`busybox:latest`). */
  name?: string;
}

export interface ImageServiceOptions {
  dataRoot: string;
  /** Default: the filesystem store under `<dataRoot>/content`. */
  content?: ContentStore;
  registry?: RegistryClient;
  /** Where images are unpacked (by chain ID). Without it and without `unpack`, images are only stored. */
  snapshotter?: Snapshotter;
  /** Replaces unpacking into `snapshotter`. */
  unpack?: Unpacker;
  /** Which container uses an image; removal and prune consult it. */
  containerUsing?: ContainerUsage;
  /**
   * Resolves once removed containers' snapshots are gone (the engine removes them after
   * answering): GC and store-wide removals wait for it, so a layer such a snapshot held goes too.
   */
  settle?: () => Promise<void>;
  /**
   * What another owner keeps of the store (the build cache: its steps' manifests and layer chain
   * IDs): a removed image's layers that it holds stay, as BuildKit's cache outlives `docker rmi`.
   */
  held?: () => Promise<{ manifests: string[]; chainIds: string[] }>;
  onEvent?: (event: ImageEvent) => void;
}

export interface PullImageOptions {
  platform?: Platform;
  /** A client with the request's own credentials (X-Registry-Auth) instead of the service's. */
  registry?: RegistryClient;
  onProgress?: ImageProgressCallback;
  signal?: AbortSignal;
}

export interface PullOutcome {
  id: string;
  /** Names recorded: the tag (if pulled by tag) and `repo@digest`. */
  names: string[];
  /** The digest the registry serves the reference as (the index's when there is one). */
  digest: string;
  /** The name already pointed at this very image. */
  upToDate: boolean;
}

export interface PushOutcome {
  name: string;
  digest: string;
  size: number;
}

export interface GcOutcome extends ImageGcResult {
  /** Snapshots removed because no image uses them. */
  snapshotsRemoved: string[];
}

export class ImageService {
  private readonly lock = new SharedLock();
  private readonly unpacker: Unpacker | undefined;
  private readonly tempDir: string;

  private constructor(
    readonly images: ImageStore,
    readonly registry: RegistryClient,
    private readonly options: ImageServiceOptions,
  ) {
    this.tempDir = join(images.dir, 'tmp');
    this.unpacker =
      options.unpack ??
      (options.snapshotter ? snapshotUnpacker(options.snapshotter, images.content) : undefined);
  }

  static async open(options: ImageServiceOptions): Promise<ImageService> {
    const content = options.content ?? new FsContentStore(options.dataRoot);
    const images = await ImageStore.open(options.dataRoot, content);
    const service = new ImageService(images, options.registry ?? new RegistryClient(), options);
    // Spool files left by a crash are of no use.
    await rm(service.tempDir, { recursive: true, force: true });
    return service;
  }

  get content(): ContentStore {
    return this.images.content;
  }

  private event(action: ImageEventAction, id: string, name?: string): void {
    this.options.onEvent?.({ action, id, ...(name !== undefined ? { name } : {}) });
  }

  /** Unpack an image (pulled, loaded or imported) when a snapshotter or unpacker is configured. */
  private async unpackImage(
    id: string,
    manifestDigest: string,
    onProgress?: ImageProgressCallback,
  ): Promise<void> {
    if (!this.unpacker) return;
    const manifest = await this.images.blobs.manifest(manifestDigest);
    const config = await this.images.blobs.config(id);
    await this.unpacker({ id, manifest, config }, onProgress);
  }

  async pull(reference: string, options: PullImageOptions = {}): Promise<PullOutcome> {
    const ref = parseReference(reference);
    if (ref.digest !== undefined) delete ref.tag;
    const emit = options.onProgress;
    emit?.({ id: ref.tag ?? ref.digest ?? '', status: `Pulling from ${ref.path}` });
    return this.lock.withShared(async () => {
      const unpacker = this.unpacker;
      const result = await pull(options.registry ?? this.registry, ref, {
        store: this.content,
        ...(options.platform ? { platform: options.platform } : {}),
        ...(emit ? { onProgress: emit } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        // Unpacked while later layers download, and before the image is recorded: a layer that
        // cannot be applied fails the pull.
        ...(unpacker
          ? {
              whileDownloading: async (plan: DownloadPlan) => {
                const { configDigest: id, manifest, config, stored } = plan;
                await unpacker({ id, manifest, config, stored }, emit);
              },
            }
          : {}),
      });
      const size = async (digest: string): Promise<number> => (await this.content.info(digest))?.size ?? 0;
      const target: ImageTarget = {
        manifest: {
          mediaType: result.manifestMediaType,
          digest: result.manifestDigest,
          size: await size(result.manifestDigest),
        },
      };
      if (result.indexDigest !== undefined) {
        target.index = {
          mediaType: result.indexMediaType as string,
          digest: result.indexDigest,
          size: await size(result.indexDigest),
        };
      }
      const digest = result.indexDigest ?? result.manifestDigest;
      const digestName = `${repositoryName(ref)}@${digest}`;
      const primary = nameKey(reference);
      const outcome = await this.images.record(
        target,
        ref.digest !== undefined ? [digestName] : [primary, digestName],
      );
      const upToDate = outcome.unchanged.includes(primary);
      emit?.({ status: `Digest: ${digest}` });
      emit?.({
        status: `Status: ${upToDate ? 'Image is up to date' : 'Downloaded newer image'} for ${familiarReference(ref)}`,
      });
      this.event('pull', outcome.id, familiarReference(ref));
      return { id: outcome.id, names: outcome.names, digest, upToDate };
    });
  }

  /** Push a name, or every tag of a repository when the reference has neither tag nor digest. */
  async push(
    reference: string,
    options: { onProgress?: ImageProgressCallback; registry?: RegistryClient } = {},
  ): Promise<PushOutcome[]> {
    const ref = parseReference(reference, { defaultTag: false });
    const repository = repositoryName(ref);
    const names =
      ref.tag === undefined && ref.digest === undefined
        ? this.images
            .records()
            .flatMap((record) => this.images.namesOf(record.id))
            .filter((name) => !isDigestName(name) && repositoryOf(name) === repository)
            .sort()
        : [nameKey(reference)].filter((name) => this.images.nameRecord(name) !== undefined);
    if (names.length === 0) throw notFound(`An image does not exist locally with the tag: ${reference}`);
    const emit = options.onProgress;
    emit?.({ status: `The push refers to repository [${repository}]` });
    return this.lock.withShared(async () => {
      const outcomes: PushOutcome[] = [];
      for (const name of names) {
        const resolved = this.images.resolve(name);
        const pushed = await push(options.registry ?? this.registry, name, {
          store: this.content,
          manifestDigest: resolved.target.manifest.digest,
          ...(emit ? { onProgress: emit } : {}),
        });
        const tag = parseName(name).tag ?? pushed.digest;
        emit?.({ status: `${tag}: digest: ${pushed.digest} size: ${pushed.size}` });
        // The registry now serves the image under its digest too (Docker's RepoDigests).
        await this.images.record(resolved.target, [`${repository}@${pushed.digest}`]);
        this.event('push', resolved.id, familiarName(name));
        outcomes.push({ name, digest: pushed.digest, size: pushed.size });
      }
      return outcomes;
    });
  }

  /** Run `store` while GC cannot run: for callers that add content and record an image (commit, build). */
  withStoreLock<T>(store: () => Promise<T>): Promise<T> {
    return this.lock.withShared(store);
  }

  /**
   * Run `remove` while nothing stores content: for callers that delete blobs and snapshots outside
   * GC (build-cache prune), so a pull cannot find a layer present and record an image on it as it goes.
   */
  withExclusiveStoreLock<T>(remove: () => Promise<T>): Promise<T> {
    return this.lock.withExclusive(async () => {
      await this.options.settle?.();
      return remove();
    });
  }

  list(): Promise<ImageSummary[]> {
    return this.images.list();
  }

  inspect(input: string): Promise<ImageDetails> {
    return this.images.inspect(input);
  }

  history(input: string): Promise<HistoryItem[]> {
    return this.images.history(input);
  }

  async tag(source: string, target: string): Promise<RecordOutcome> {
    const outcome = await this.images.tag(source, target);
    this.event('tag', outcome.id, familiarName(outcome.names[0] as string));
    return outcome;
  }

  async remove(input: string, options: { force?: boolean } = {}): Promise<DeleteItem[]> {
    const resolved = this.images.resolve(input);
    const content = await this.contentOf(resolved.record).catch(() => undefined);
    const items = await this.images.remove(input, {
      ...options,
      ...(this.options.containerUsing ? { containerUsing: this.options.containerUsing } : {}),
    });
    for (const item of items) {
      if ('untagged' in item) this.event('untag', resolved.id, item.untagged);
      else this.event('delete', item.deleted);
    }
    // Like dockerd, a deleted image's layers and blobs go with it, unless another image, a
    // container or the build cache holds them.
    if (content && items.some((item) => 'deleted' in item))
      await this.lock.withExclusive(() => this.collectRemoved(content));
    return items;
  }

  /** The blobs (manifests, index, config, layers) and layer chain IDs of an image. */
  private async contentOf(record: ImageRecord): Promise<{ blobs: string[]; chainIds: string[] }> {
    const blobs = [record.id];
    for (const target of record.targets) {
      blobs.push(target.manifest.digest, ...(target.index ? [target.index.digest] : []));
      const manifest = await this.images.blobs.manifest(target.manifest.digest);
      blobs.push(...manifest.layers.map((layer) => layer.digest));
    }
    const config = await this.images.blobs.config(record.id);
    return { blobs, chainIds: chainIdsOf(config.rootfs.diff_ids) };
  }

  /**
   * Sweep only what a removed image had, of what no recorded image, container snapshot or build
   * cache entry still holds: a blob or layer another operation stored and has not recorded yet
   * is never a candidate.
   */
  private async collectRemoved(removed: { blobs: string[]; chainIds: string[] }): Promise<void> {
    await this.options.settle?.();
    const held = (await this.options.held?.()) ?? { manifests: [], chainIds: [] };
    const result = await this.images.gc({ roots: held.manifests, only: removed.blobs });
    if (this.options.snapshotter)
      await removeUnusedSnapshots(
        this.options.snapshotter,
        new Set([...result.chainIds, ...held.chainIds]),
        new Set(removed.chainIds),
      );
  }

  /** The `docker save` stream of the named images; names are resolved before it is returned. */
  async save(inputs: string[]): Promise<AsyncGenerator<Buffer>> {
    const plan = await this.lock.withShared(() => planSave(this.images, inputs));
    for (const image of plan.images) this.event('save', image.id);
    const { lock, images } = this;
    return (async function* () {
      // Held while the stream is read, so GC cannot sweep blobs being written out.
      const release = await lock.holdShared();
      try {
        yield* writeSave(images, plan);
      } finally {
        release();
      }
    })();
  }

  async load(
    input: AsyncIterable<Uint8Array>,
    options: Pick<LoadOptions, 'baseName' | 'platform' | 'onProgress' | 'signal'> = {},
  ): Promise<RecordOutcome[]> {
    return this.lock.withShared(async () => {
      const loaded = await readImageArchive(input, {
        ...options,
        images: this.images,
        tempDir: this.tempDir,
      });
      for (const image of loaded) await this.unpackImage(image.id, image.target.manifest.digest);
      const outcomes = await recordLoaded(this.images, loaded, options.onProgress);
      for (const outcome of outcomes) this.event('load', outcome.id);
      return outcomes;
    });
  }

  async import(
    input: AsyncIterable<Uint8Array>,
    options: Omit<ImportOptions, 'images' | 'tempDir'> = {},
  ): Promise<RecordOutcome> {
    return this.lock.withShared(async () => {
      const imported = await readImportTarball(input, {
        ...options,
        images: this.images,
        tempDir: this.tempDir,
      });
      await this.unpackImage(imported.id, imported.target.manifest.digest);
      const outcome = await this.images.record(imported.target, imported.names);
      this.event('import', outcome.id);
      return outcome;
    });
  }

  /** Make sure an image's layers are unpacked (before a container is created from it). */
  async unpack(input: string): Promise<void> {
    await this.lock.withShared(async () => {
      const resolved = this.images.resolve(input);
      await this.unpackImage(resolved.id, resolved.target.manifest.digest);
    });
  }

  private async collect(): Promise<GcOutcome> {
    await this.options.settle?.();
    const result = await this.images.gc();
    const snapshotsRemoved = this.options.snapshotter
      ? await removeUnusedSnapshots(this.options.snapshotter, result.chainIds)
      : [];
    return { ...result, snapshotsRemoved };
  }

  /** Remove blobs and layer snapshots that no image uses. */
  gc(): Promise<GcOutcome> {
    return this.lock.withExclusive(() => this.collect());
  }

  /** `docker image prune`: unnamed images (all unused ones with `all`), then GC. */
  prune(options: { all?: boolean } = {}): Promise<{ items: DeleteItem[]; gc: GcOutcome }> {
    return this.lock.withExclusive(async () => {
      const items = await this.images.prune({
        ...options,
        ...(this.options.containerUsing ? { containerUsing: this.options.containerUsing } : {}),
      });
      for (const item of items) if ('deleted' in item) this.event('delete', item.deleted);
      return { items, gc: await this.collect() };
    });
  }
}
