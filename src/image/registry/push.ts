/**
 * Push: upload an image (or an index and its images) from the content store. Each blob is
 * skipped when the repository has it (HEAD), mounted when it is known to exist in another
 * repository of the same registry, else uploaded in one PUT or, above a size threshold, in
 * PATCH chunks. Manifests go last (children before the index that lists them).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { invalidArgument } from '../../common/errors.js';
import { shortDigest } from '../../content/digest.js';
import type { ContentStore } from '../../content/store.js';
import type { Descriptor } from '../../oci/image-spec.js';
import { formatReference, parseReference, type ImageReference } from '../reference.js';
import type { RegistryClient, RepositoryClient } from './client.js';
import { parseManifestDocument } from './manifest.js';
import { byteProgress, PUSH_STATUS, runBounded, type ProgressCallback } from './progress.js';
import { blobSources, recordBlobSource } from './source-label.js';
import { isTransientNetworkError } from './transport.js';

export interface PushOptions {
  store: ContentStore;
  /** The manifest or index to push; it and everything it refers to must be in the store. */
  manifestDigest: string;
  onProgress?: ProgressCallback;
  /** Blobs uploaded at once (default 5, like Docker's max-concurrent-uploads). */
  concurrency?: number;
  /** Blobs larger than this go up in chunks (default 64 MiB). */
  chunkThreshold?: number;
  /** Size of one PATCH chunk (default 16 MiB). */
  chunkSize?: number;
  /** Try cross-repository mounts from repositories recorded on the blobs (default true). */
  mount?: boolean;
  /** Attempts per blob upload, each a fresh upload session (default 3). */
  blobAttempts?: number;
}

export type BlobPushOutcome = 'exists' | 'mounted' | 'uploaded';

export interface PushResult {
  reference: ImageReference;
  digest: string;
  /** Size of the manifest (or index), as `docker push` prints it. */
  size: number;
  mediaType: string;
  /** What happened to each blob, by digest. */
  blobs: Map<string, BlobPushOutcome>;
}

interface PushContext {
  repo: RepositoryClient;
  options: PushOptions;
  blobs: Map<string, BlobPushOutcome>;
}

/** Push the image `manifestDigest` from the store to `reference` (which needs a tag or digest). */
export async function push(
  client: RegistryClient,
  reference: string | ImageReference,
  options: PushOptions,
): Promise<PushResult> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  if (ref.digest !== undefined && ref.digest !== options.manifestDigest) {
    throw invalidArgument(
      `cannot push ${options.manifestDigest} to ${formatReference(ref)}: the digests differ`,
    );
  }
  const endpoint = client.endpoints(ref.domain, 'push')[0];
  if (!endpoint) throw invalidArgument(`no endpoint to push to for ${ref.domain}`);
  const context: PushContext = {
    repo: client.repository(endpoint, ref.path, 'pull,push'),
    options,
    blobs: new Map(),
  };
  const { mediaType, data } = await pushManifestTree(
    context,
    options.manifestDigest,
    ref.tag ?? options.manifestDigest,
  );
  return {
    reference: ref,
    digest: options.manifestDigest,
    size: data.length,
    mediaType,
    blobs: context.blobs,
  };
}

/** Push a manifest's blobs (or an index's manifests) and then the document itself under `tag`. */
async function pushManifestTree(
  context: PushContext,
  digest: string,
  tag: string,
): Promise<{ mediaType: string; data: Buffer }> {
  const { store } = context.options;
  const data = await store.readAll(digest);
  const document = parseManifestDocument(data, undefined, `manifest ${digest}`);
  if (document.kind === 'index') {
    for (const child of document.index.manifests) await pushManifestTree(context, child.digest, child.digest);
  } else {
    const { config, layers } = document.manifest;
    const emit = context.options.onProgress;
    const unique = layers.filter((layer, i) => layers.findIndex((l) => l.digest === layer.digest) === i);
    const concurrency = Math.max(1, context.options.concurrency ?? 5);
    unique.forEach((layer) => emit?.({ id: shortDigest(layer.digest), status: PUSH_STATUS.preparing }));
    unique
      .slice(concurrency)
      .forEach((layer) => emit?.({ id: shortDigest(layer.digest), status: PUSH_STATUS.waiting }));
    await runBounded(unique, concurrency, (layer) => pushBlob(context, layer, emit));
    await pushBlob(context, config, undefined);
  }
  await context.repo.putManifest(tag, document.mediaType, data);
  await recordBlobSource(store, digest, context.repo.endpoint.registry, context.repo.path);
  return { mediaType: document.mediaType, data };
}

async function pushBlob(
  context: PushContext,
  descriptor: Descriptor,
  emit: ProgressCallback | undefined,
): Promise<void> {
  const { repo, options } = context;
  const id = shortDigest(descriptor.digest);
  const attempts = options.blobAttempts ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      const outcome = await pushBlobOnce(context, descriptor, emit);
      context.blobs.set(descriptor.digest, outcome.result);
      await recordBlobSource(options.store, descriptor.digest, repo.endpoint.registry, repo.path);
      if (outcome.result === 'exists') emit?.({ id, status: PUSH_STATUS.layerAlreadyExists });
      else if (outcome.result === 'mounted')
        emit?.({ id, status: `${PUSH_STATUS.mountedFrom} ${outcome.from}` });
      else emit?.({ id, status: PUSH_STATUS.pushed });
      return;
    } catch (err) {
      if (!isTransientNetworkError(err) || attempt + 1 >= attempts) throw err;
      await sleep(repo.registry.transport.backoff(attempt));
    }
  }
}

async function pushBlobOnce(
  context: PushContext,
  descriptor: Descriptor,
  emit: ProgressCallback | undefined,
): Promise<{ result: BlobPushOutcome; from?: string }> {
  const { repo, options } = context;
  const { store } = options;
  const info = await store.info(descriptor.digest);
  if (!info) throw invalidArgument(`blob ${descriptor.digest} to push is not in the content store`);
  if (info.size !== descriptor.size) {
    throw invalidArgument(
      `blob ${descriptor.digest} has ${info.size} bytes in the store, the manifest says ${descriptor.size}`,
    );
  }
  if ((await repo.blobSize(descriptor.digest)) !== undefined) return { result: 'exists' };

  let location: string | undefined;
  if (options.mount !== false) {
    // The most recent repository the blob was seen in; a refused mount still opens an upload session.
    const from = blobSources(info, repo.endpoint.registry).find((source) => source !== repo.path);
    if (from !== undefined) {
      const mounted = await repo.mountBlob(descriptor.digest, from);
      if (mounted === true) return { result: 'mounted', from };
      location = mounted.location;
    }
  }
  location ??= await repo.startUpload();

  const progress = byteProgress(emit, shortDigest(descriptor.digest), PUSH_STATUS.pushing);
  const threshold = options.chunkThreshold ?? 64 * 1024 * 1024;
  if (descriptor.size <= threshold) {
    await repo.completeUpload(location, descriptor.digest, {
      size: descriptor.size,
      data: () => streamBlob(store, descriptor, progress),
    });
    return { result: 'uploaded' };
  }
  const chunkSize = Math.max(1, options.chunkSize ?? 16 * 1024 * 1024);
  for (let start = 0; start < descriptor.size; start += chunkSize) {
    const chunk = await readRange(
      store,
      descriptor.digest,
      start,
      Math.min(chunkSize, descriptor.size - start),
    );
    location = await repo.uploadChunk(location, start, chunk);
    progress(start + chunk.length, descriptor.size);
  }
  await repo.completeUpload(location, descriptor.digest);
  return { result: 'uploaded' };
}

async function* streamBlob(
  store: ContentStore,
  descriptor: Descriptor,
  progress: (current: number, total: number) => void,
): AsyncIterable<Uint8Array> {
  let sent = 0;
  for await (const chunk of await store.read(descriptor.digest)) {
    sent += (chunk as Buffer).length;
    yield chunk as Buffer;
    progress(sent, descriptor.size);
  }
}

/** `length` bytes of a blob from `start`. */
async function readRange(
  store: ContentStore,
  digest: string,
  start: number,
  length: number,
): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  let filled = 0;
  const stream = await store.read(digest, { offset: start });
  try {
    for await (const chunk of stream) {
      const piece = (chunk as Buffer).subarray(0, length - filled);
      piece.copy(buffer, filled);
      filled += piece.length;
      if (filled === length) break;
    }
  } finally {
    stream.destroy();
  }
  if (filled !== length)
    throw invalidArgument(`blob ${digest} is shorter than expected at ${start + filled}`);
  return buffer;
}
