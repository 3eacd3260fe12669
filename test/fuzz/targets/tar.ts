/**
 * Layer tarballs on in-memory bytes: format detection and decompression with a size limit
 * (openLayerStream) and the tar reader, every body read or skipped, then the rest hashed for the
 * diff ID. Rejections are BerthErrors; what is accepted is sane: sizes and owners are safe
 * non-negative integers, each body has exactly its header's size, and the uncompressed total
 * never passes the limit.
 */
import { openLayerStream } from '../../../src/archive/layer-format.js';
import { readTar } from '../../../src/archive/tar-reader.js';
import { mutateTar } from '../tar-mutate.js';
import { invariant, type FuzzTarget } from '../target.js';

/** Small, so that a gzip bomb among the inputs hits it within milliseconds. */
export const MAX_LAYER_SIZE = 8 * 1024 * 1024;

export async function* once(bytes: Buffer): AsyncGenerator<Uint8Array> {
  yield bytes;
}

export const target: FuzzTarget = {
  name: 'tar',
  description: 'layer tars (plain, gzip, zstd): decompression with a size limit and the tar reader',
  maxLength: 256 * 1024,
  dictionary: [
    'ustar\x0000',
    'ustar  \x00',
    '\x1f\x8b\x08\x00',
    '\x28\xb5\x2f\xfd',
    '././@LongLink',
    '../',
    '.wh.',
  ],
  mutate: mutateTar,
  async run(input) {
    const layer = await openLayerStream(once(input), { maxSize: MAX_LAYER_SIZE });
    try {
      let index = 0;
      for await (const { header, body } of readTar(layer.source)) {
        for (const [name, value] of Object.entries({ size: header.size, uid: header.uid, gid: header.gid }))
          invariant(Number.isSafeInteger(value) && value >= 0, () => `${header.path}: ${name} ${value}`);
        invariant(header.mode >= 0 && header.mode <= 0o7777, () => `${header.path}: mode ${header.mode}`);
        // Every other body is read, the rest are left for the reader to skip.
        if (index++ % 2 === 0) {
          let read = 0;
          for await (const chunk of body) read += chunk.length;
          invariant(read === header.size, () => `${header.path}: read ${read} bytes of ${header.size}`);
        }
      }
      for await (const chunk of layer.source.rest()) void chunk;
      invariant(layer.size <= MAX_LAYER_SIZE, () => `${layer.size} uncompressed bytes passed the limit`);
      invariant(/^sha256:[0-9a-f]{64}$/.test(layer.diffId), () => `diff ID ${layer.diffId}`);
    } finally {
      await layer.source.close();
    }
  },
};
