/** The content store: blobs addressed by digest, written only through verified ingests. */
import type { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';

export interface BlobInfo {
  digest: string;
  size: number;
  /** When the blob was committed (file modification time). */
  committedAt: Date;
  /** Free-form labels (for example where the blob was pulled from). */
  labels: Record<string, string>;
}

export interface ExpectedBlob {
  digest: string;
  size: number;
}

/** What a blob source returns: a byte stream that starts at `offset` of the blob. */
export interface SourceStream {
  /** Where the stream starts; 0 when the source could not honour the requested offset. */
  offset: number;
  stream: AsyncIterable<Uint8Array>;
}

/**
 * Opens the blob's bytes from `offset` (an HTTP Range request, a file read, a buffer slice).
 * It may answer from 0 instead; the store then starts over.
 */
export type BlobSource = (offset: number) => Promise<SourceStream>;

export interface IngestProgress {
  /** Bytes of the blob held so far (including bytes resumed from an earlier attempt). */
  current: number;
  total: number;
}

export interface IngestOptions {
  /** Called as bytes arrive. */
  onProgress?: (progress: IngestProgress) => void;
  /** Labels to set on the committed blob (merged with existing ones). */
  labels?: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * How an ingest ended: `written` (this call wrote the blob), `exists` (it was already there),
 * `shared` (another ingest of the same digest in this process wrote it while this one waited).
 */
export type IngestOutcome = 'written' | 'exists' | 'shared';

export interface IngestResult {
  info: BlobInfo;
  outcome: IngestOutcome;
  /** Bytes of partial data reused from an interrupted earlier ingest. */
  resumedFrom: number;
}

export interface IngestStatus {
  ref: string;
  expected: ExpectedBlob;
  /** Bytes held in the partial file. */
  offset: number;
  updatedAt: Date;
}

export interface GcOptions {
  /**
   * Follow manifests and indexes found among the roots (and their children) to config, layer and
   * manifest blobs, so the roots can be just the image records' manifest digests. Default true.
   */
  followReferences?: boolean;
  /** Called for each blob before it is removed, e.g. so snapshot GC can drop what it unpacked. */
  onRemove?: (digest: string) => Promise<void> | void;
  /**
   * Sweep only these digests (those of a removed image) instead of every stored blob, so blobs
   * an operation under way stored without recording them yet are not looked at.
   */
  only?: Iterable<string>;
}

export interface GcResult {
  /** Every digest still referenced after the sweep. */
  live: Set<string>;
  removed: string[];
  reclaimedBytes: number;
}

export interface ContentStore {
  /** Information about a blob, or undefined when the store does not hold it. */
  info(digest: string): Promise<BlobInfo | undefined>;
  /** A stream of the blob's bytes from `offset`; throws notFound when absent. */
  read(digest: string, options?: { offset?: number }): Promise<Readable>;
  readAll(digest: string): Promise<Buffer>;
  /** The blob's file, open for reading (the caller closes it); throws notFound when absent. */
  open(digest: string): Promise<FileHandle>;
  /** Remove a blob; false when it was not there. */
  delete(digest: string): Promise<boolean>;
  /** Every committed blob, in no particular order. */
  walk(): AsyncIterable<BlobInfo>;
  /**
   * Copy a blob from `source` into the store, verifying digest and size, and commit it atomically.
   * An interrupted ingest keeps its partial data; the next ingest of the same digest continues from it.
   */
  ingest(expected: ExpectedBlob, source: BlobSource, options?: IngestOptions): Promise<IngestResult>;
  /** Store bytes already in memory (manifests, configs). */
  writeBlob(
    data: Uint8Array,
    expected?: Partial<ExpectedBlob>,
    labels?: Record<string, string>,
  ): Promise<BlobInfo>;
  setLabels(digest: string, labels: Record<string, string>): Promise<BlobInfo>;
  /** Partial downloads left by interrupted ingests. */
  listIngests(): Promise<IngestStatus[]>;
  abortIngest(ref: string): Promise<void>;
  /** Mark-and-sweep: remove every blob not reachable from `roots`. */
  gc(roots: Iterable<string>, options?: GcOptions): Promise<GcResult>;
}
