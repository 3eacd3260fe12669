/**
 * Pull: resolve a reference to a manifest (through a manifest list or OCI index by platform),
 * then download config and layers, verified, into the content store. Layers go in parallel
 * (bounded) with Docker-style progress events; manifests are stored last, so a stored manifest
 * always has its blobs. Unpacking layers is not done here.
 */
import { BerthError, invalidArgument, notFound } from '../../common/errors.js';
import { shortDigest } from '../../content/digest.js';
import { ContentVerificationError } from '../../content/fs-store.js';
import type { ContentStore } from '../../content/store.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from '../../oci/image-spec.js';
import { formatReference, manifestIdentifier, parseReference, type ImageReference } from '../reference.js';
import type { RegistryClient, RepositoryClient } from './client.js';
import { UnauthorizedError } from './errors.js';
import { parseManifestDocument, refuseForeignLayers } from './manifest.js';
import { formatPlatform, hostPlatform, normalizePlatform, selectManifest } from './platform.js';
import { byteProgress, PULL_STATUS, runBounded, type ProgressCallback } from './progress.js';
import { recordBlobSource } from './source-label.js';
import { isTransientNetworkError } from './transport.js';
import { setTimeout as sleep } from 'node:timers/promises';

export interface PullOptions {
  store: ContentStore;
  /** Wanted platform; default the host's (linux/amd64 here). An explicit one must match the image. */
  platform?: Platform;
  onProgress?: ProgressCallback;
  /** Layers downloaded at once (default 3, like Docker's max-concurrent-downloads). */
  concurrency?: number;
  /** Attempts per blob; each resumes what the previous one downloaded (default 3). */
  blobAttempts?: number;
  signal?: AbortSignal;
  /**
   * Work on the image while its layers download (unpacking, so layer 1 is applied while later
   * layers are still arriving). It starts once the config is stored; `stored(i)` resolves when
   * layer i is in the content store. The pull fails if it fails, and waits for it.
   */
  whileDownloading?: (plan: DownloadPlan) => Promise<void>;
}

export interface DownloadPlan {
  manifest: ImageManifest;
  config: ImageConfig;
  configDigest: string;
  stored(index: number): Promise<void>;
}

export interface PullResult {
  reference: ImageReference;
  manifestDigest: string;
  manifestMediaType: string;
  manifest: ImageManifest;
  config: ImageConfig;
  configDigest: string;
  layers: Descriptor[];
  /** Set when the reference named a manifest list or OCI index. */
  indexDigest?: string;
  indexMediaType?: string;
}

/** Pull `reference` (a string in Docker's grammar or a parsed reference). */
export async function pull(
  client: RegistryClient,
  reference: string | ImageReference,
  options: PullOptions,
): Promise<PullResult> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  const endpoints = client.endpoints(ref.domain, 'pull');
  for (let i = 0; ; i++) {
    const endpoint = endpoints[i] as (typeof endpoints)[number];
    try {
      return await pullFrom(client.repository(endpoint, ref.path, 'pull'), ref, options);
    } catch (err) {
      // A mirror that fails or lacks the image hands over to the next endpoint; errors about the
      // image itself (a schema 1 manifest, a missing platform) would repeat there.
      const fallBack =
        endpoint.mirror &&
        i + 1 < endpoints.length &&
        err instanceof BerthError &&
        (err.kind === 'unavailable' || err.kind === 'not-found' || err instanceof UnauthorizedError) &&
        !/no matching manifest/.test(err.message);
      if (!fallBack) throw err;
    }
  }
}

async function pullFrom(
  repo: RepositoryClient,
  ref: ImageReference,
  options: PullOptions,
): Promise<PullResult> {
  const { store, signal } = options;
  const name = formatReference(ref);
  const wanted = normalizePlatform(options.platform ?? hostPlatform());
  const top = await repo.getManifest(manifestIdentifier(ref), signal);
  let document = parseManifestDocument(top.data, top.contentType, `manifest for ${name}`);
  let manifestBytes = top.data;
  let manifestDigest = top.digest;
  let index: { digest: string; data: Buffer; mediaType: string } | undefined;
  if (document.kind === 'index') {
    index = { digest: top.digest, data: top.data, mediaType: document.mediaType };
    const chosen = selectManifest((document.index as ImageIndex).manifests, wanted);
    const fetched = await repo.getManifest(chosen.digest, signal);
    document = parseManifestDocument(
      fetched.data,
      fetched.contentType,
      `manifest ${chosen.digest} of ${name}`,
    );
    if (document.kind !== 'manifest') {
      throw invalidArgument(
        `manifest ${chosen.digest} of ${name} is a nested index, which berth does not support`,
      );
    }
    manifestBytes = fetched.data;
    manifestDigest = fetched.digest;
  }
  const { manifest, mediaType } = document;
  refuseForeignLayers(manifest, `image ${name}`);

  const fetch: Fetch = (descriptor, onProgress, fetchSignal = signal) =>
    fetchBlob(repo, store, descriptor, options.blobAttempts ?? 3, onProgress, fetchSignal);

  await fetch(manifest.config);
  const config = parseConfig(await store.readAll(manifest.config.digest), `config of ${name}`);
  if (options.platform && !index) {
    const actual = normalizePlatform({
      os: config.os,
      architecture: config.architecture,
      ...(config.variant ? { variant: config.variant } : {}),
    });
    if (actual.os !== wanted.os || actual.architecture !== wanted.architecture) {
      throw notFound(
        `image ${name} is for ${formatPlatform(actual)}, which does not match the requested platform ${formatPlatform(wanted)}`,
      );
    }
  }

  await downloadLayers(manifest, config, options, fetch);

  await store.writeBlob(manifestBytes, { digest: manifestDigest });
  await recordBlobSource(store, manifestDigest, repo.endpoint.registry, repo.path);
  if (index) {
    await store.writeBlob(index.data, { digest: index.digest });
    await recordBlobSource(store, index.digest, repo.endpoint.registry, repo.path);
  }
  const result: PullResult = {
    reference: ref,
    manifestDigest,
    manifestMediaType: mediaType,
    manifest,
    config,
    configDigest: manifest.config.digest,
    layers: manifest.layers,
  };
  if (index) {
    result.indexDigest = index.digest;
    result.indexMediaType = index.mediaType;
  }
  return result;
}

type Fetch = (
  descriptor: Descriptor,
  onProgress?: (current: number, total: number) => void,
  signal?: AbortSignal,
) => Promise<void>;

/** Download the layers, running options.whileDownloading alongside; both end before this returns. */
async function downloadLayers(
  manifest: ImageManifest,
  config: ImageConfig,
  options: PullOptions,
  fetch: Fetch,
): Promise<void> {
  const work = options.whileDownloading;
  if (work === undefined) return pullLayers(manifest.layers, options, fetch);
  // One side failing stops the other: the downloads through this signal, the work through
  // stored() rejecting.
  const abort = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, abort.signal]) : abort.signal;
  const waits = new Map<
    string,
    { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void }
  >();
  for (const layer of manifest.layers) {
    if (waits.has(layer.digest)) continue;
    let resolve = (): void => undefined;
    let reject = (_err: unknown): void => undefined;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined); // a layer nobody waits for yet may fail
    waits.set(layer.digest, { promise, resolve, reject });
  }
  const downloads = pullLayers(manifest.layers, { ...options, signal }, fetch, (digest) =>
    waits.get(digest)?.resolve(),
  ).catch((err: unknown) => {
    for (const wait of waits.values()) wait.reject(err);
    throw err;
  });
  const plan: DownloadPlan = {
    manifest,
    config,
    configDigest: manifest.config.digest,
    stored: (index) => {
      const digest = manifest.layers[index]?.digest;
      const wait = digest === undefined ? undefined : waits.get(digest);
      return wait?.promise ?? Promise.reject(invalidArgument(`image has no layer ${index}`));
    },
  };
  const working = work(plan).catch((err: unknown) => {
    abort.abort(err);
    throw err;
  });
  const [downloaded, worked] = await Promise.allSettled([downloads, working]);
  // The work's own error explains more than the abort it caused in the downloads.
  if (worked.status === 'rejected') throw worked.reason;
  if (downloaded.status === 'rejected') throw downloaded.reason;
}

async function pullLayers(
  layers: Descriptor[],
  options: PullOptions,
  fetch: Fetch,
  onStored?: (digest: string) => void,
): Promise<void> {
  const emit = options.onProgress;
  const concurrency = Math.max(1, options.concurrency ?? 3);
  const unique = layers.filter((layer, i) => layers.findIndex((l) => l.digest === layer.digest) === i);
  const missing: Descriptor[] = [];
  for (const layer of unique) {
    if (await options.store.info(layer.digest)) {
      emit?.({ id: shortDigest(layer.digest), status: PULL_STATUS.alreadyExists });
      onStored?.(layer.digest);
    } else {
      emit?.({ id: shortDigest(layer.digest), status: PULL_STATUS.pullingFsLayer });
      missing.push(layer);
    }
  }
  missing
    .slice(concurrency)
    .forEach((layer) => emit?.({ id: shortDigest(layer.digest), status: PULL_STATUS.waiting }));
  await runBounded(missing, concurrency, async (layer) => {
    const id = shortDigest(layer.digest);
    const downloading = byteProgress(emit, id, PULL_STATUS.downloading);
    let verifying = false;
    await fetch(
      layer,
      (current, total) => {
        if (verifying) return;
        downloading(current, total);
        if (current === total) {
          verifying = true;
          emit?.({ id, status: PULL_STATUS.verifyingChecksum });
        }
      },
      options.signal,
    );
    if (!verifying) emit?.({ id, status: PULL_STATUS.verifyingChecksum });
    emit?.({ id, status: PULL_STATUS.downloadComplete });
    onStored?.(layer.digest);
  });
}

/**
 * Download one blob into the store. A transient failure (a reset connection, a 5xx) is tried
 * again, resuming from the bytes already held; a verification failure is not.
 */
async function fetchBlob(
  repo: RepositoryClient,
  store: ContentStore,
  descriptor: Descriptor,
  attempts: number,
  onProgress: ((current: number, total: number) => void) | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await store.ingest(
        { digest: descriptor.digest, size: descriptor.size },
        (offset) => repo.openBlob(descriptor.digest, offset, signal),
        {
          ...(onProgress ? { onProgress: (p) => onProgress(p.current, p.total) } : {}),
          ...(signal ? { signal } : {}),
        },
      );
      await recordBlobSource(store, descriptor.digest, repo.endpoint.registry, repo.path);
      return;
    } catch (err) {
      signal?.throwIfAborted();
      const transient = !(err instanceof ContentVerificationError) && isTransientNetworkError(err);
      if (!transient || attempt + 1 >= attempts) throw err;
      await sleep(repo.registry.transport.backoff(attempt), undefined, signal ? { signal } : undefined);
    }
  }
}

function parseConfig(data: Buffer, where: string): ImageConfig {
  let config: unknown;
  try {
    config = JSON.parse(data.toString('utf8'));
  } catch {
    throw invalidArgument(`${where} is not valid JSON`);
  }
  if (typeof config !== 'object' || config === null || typeof (config as ImageConfig).os !== 'string') {
    throw invalidArgument(`${where} has no "os"`);
  }
  return config as ImageConfig;
}
