/**
 * Layer formats: which compression a layer uses (from its media type, verified by its magic
 * bytes), streaming decompression bounded by a size limit, and the diff ID (sha256 of the
 * uncompressed tar) computed on the way through.
 */
import { createHash } from 'node:crypto';
import { Readable, pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { BerthError, invalidArgument } from '../common/errors.js';
import { ByteSource } from './byte-source.js';
import { looksLikeTarHeader } from './tar-reader.js';
import { zstdDecompress } from './zstd.js';

export type LayerCompression = 'none' | 'gzip' | 'zstd';

/** Default bound on a layer's uncompressed size; callers pass their own. */
export const DEFAULT_MAX_LAYER_SIZE = 32 * 1024 ** 3;

/** The default bound, or BERTH_MAX_LAYER_SIZE (bytes) when the daemon's environment sets it. */
export function defaultMaxLayerSize(value = process.env.BERTH_MAX_LAYER_SIZE): number {
  if (value === undefined || value === '') return DEFAULT_MAX_LAYER_SIZE;
  const size = Number(value);
  if (!Number.isSafeInteger(size) || size <= 0)
    throw invalidArgument(
      `BERTH_MAX_LAYER_SIZE must be a positive number of bytes, not ${JSON.stringify(value)}`,
    );
  return size;
}

const LAYER_MEDIA_TYPES: Record<string, LayerCompression> = {
  'application/vnd.oci.image.layer.v1.tar': 'none',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
  'application/vnd.docker.image.rootfs.diff.tar': 'none',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
};

/** The compression a layer media type announces; an unknown media type is an error. */
export function compressionOfMediaType(mediaType: string): LayerCompression {
  const compression = LAYER_MEDIA_TYPES[mediaType];
  if (compression === undefined)
    throw invalidArgument(`unsupported layer media type ${JSON.stringify(mediaType)}`);
  return compression;
}

/** What the first bytes (512 of them for tar) say the layer is; undefined when none fits. */
export function sniffCompression(head: Uint8Array): LayerCompression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return 'zstd';
  return looksLikeTarHeader(Buffer.from(head.buffer, head.byteOffset, head.byteLength)) ? 'none' : undefined;
}

export interface LayerStreamOptions {
  /** The descriptor's media type; without it the format comes from the magic bytes alone. */
  mediaType?: string;
  /** Uncompressed bytes allowed before the layer is refused (default defaultMaxLayerSize()). */
  maxSize?: number;
}

/**
 * An uncompressed layer stream. Read `source` to the end, then `diffId` and `size` are final.
 */
export interface LayerStream {
  compression: LayerCompression;
  source: ByteSource;
  readonly diffId: string;
  readonly size: number;
}

async function* gunzip(input: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  // pipeline destroys both sides on an error or when the consumer stops early.
  const inflated = pipeline(Readable.from(input), createGunzip({ chunkSize: 128 * 1024 }), () => undefined);
  try {
    for await (const chunk of inflated) yield chunk as Buffer;
  } catch (err) {
    if (err instanceof BerthError) throw err;
    throw invalidArgument(
      `layer is not valid gzip data: ${err instanceof Error ? err.message : String(err)}`,
    );
  } finally {
    inflated.destroy();
  }
}

async function* bounded(
  chunks: AsyncIterable<Buffer>,
  maxSize: number,
  hash: ReturnType<typeof createHash>,
  counter: { size: number },
): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    counter.size += chunk.length;
    if (counter.size > maxSize)
      throw invalidArgument(`layer is larger than the limit of ${maxSize} bytes when uncompressed`);
    hash.update(chunk);
    yield chunk;
  }
}

/** Detect the format of `input`, check it against the media type, and decompress it. */
export async function openLayerStream(
  input: AsyncIterable<Uint8Array>,
  options: LayerStreamOptions = {},
): Promise<LayerStream> {
  const raw = new ByteSource(input);
  try {
    return await decompress(raw, options);
  } catch (err) {
    await raw.close();
    throw err;
  }
}

async function decompress(raw: ByteSource, options: LayerStreamOptions): Promise<LayerStream> {
  const head = await raw.read(512);
  raw.unshift(head);
  const sniffed = sniffCompression(head);
  if (sniffed === undefined)
    throw invalidArgument(
      head.length === 0
        ? 'layer is empty'
        : 'layer is neither gzip, zstd nor a tar archive (unknown magic bytes)',
    );
  if (options.mediaType !== undefined) {
    const announced = compressionOfMediaType(options.mediaType);
    if (announced !== sniffed)
      throw invalidArgument(
        `layer media type ${options.mediaType} announces ${announced === 'none' ? 'an uncompressed tar' : announced} but the content is ${sniffed === 'none' ? 'an uncompressed tar' : sniffed}`,
      );
  }
  const maxSize = options.maxSize ?? defaultMaxLayerSize();
  const decompressed =
    sniffed === 'gzip' ? gunzip(raw.rest()) : sniffed === 'zstd' ? zstdDecompress(raw.rest()) : raw.rest();
  const hash = createHash('sha256');
  const counter = { size: 0 };
  let digest: string | undefined;
  const source = new ByteSource(bounded(decompressed, maxSize, hash, counter));
  return {
    compression: sniffed,
    source,
    get diffId(): string {
      digest ??= `sha256:${hash.digest('hex')}`;
      return digest;
    },
    get size(): number {
      return counter.size;
    },
  };
}
