/**
 * Streaming zstd decompression over fzstd, bounded in memory: fzstd allocates each frame's
 * window as the frame header declares it (up to 2 GiB), so a guard reads the frame headers first
 * and refuses windows above the reference decoder's default limit; input is fed in small slices
 * so one slice can only expand to a bounded number of 128 KiB blocks.
 */
import { Decompress } from 'fzstd';
import { invalidArgument } from '../common/errors.js';

/** zstd's default decoder limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT = 27). */
export const MAX_ZSTD_WINDOW = 1 << 27;
/** At most 64 blocks (8 MiB) of output can come from one slice. */
const SLICE = 256;

const ZSTD_MAGIC = 0xfd2fb528;

/** Walks frame and block headers of a zstd stream to check window sizes before fzstd sees them. */
class FrameGuard {
  private need = 4;
  private state: 'magic' | 'skippable-size' | 'descriptor' | 'frame-header' | 'block' = 'magic';
  private header: number[] = [];
  private skipBytes = 0;
  private checksum = false;
  private descriptor = 0;

  check(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.skipBytes > 0) {
        const take = Math.min(this.skipBytes, chunk.length - offset);
        this.skipBytes -= take;
        offset += take;
        continue;
      }
      this.header.push(chunk[offset++] as number);
      if (this.header.length === this.need) this.advance();
    }
  }

  private advance(): void {
    const bytes = this.header;
    this.header = [];
    const u32 = (at: number): number =>
      ((bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16)) +
      (bytes[at + 3] as number) * 0x1000000;
    switch (this.state) {
      case 'magic': {
        const magic = u32(0);
        if (magic === ZSTD_MAGIC) {
          this.state = 'descriptor';
          this.need = 1;
        } else if (magic >>> 4 === 0x184d2a5) {
          this.state = 'skippable-size';
          this.need = 4;
        } else throw invalidArgument('layer is not valid zstd data: bad frame magic');
        return;
      }
      case 'skippable-size':
        this.skipBytes = u32(0);
        this.state = 'magic';
        this.need = 4;
        return;
      case 'descriptor': {
        const flags = bytes[0] as number;
        if (flags & 0x08) throw invalidArgument('layer is not valid zstd data: reserved frame flag set');
        const singleSegment = (flags >> 5) & 1;
        const dictBytes = [0, 1, 2, 4][flags & 3] as number;
        const sizeFlag = flags >> 6;
        const sizeBytes = sizeFlag === 0 ? singleSegment : 1 << sizeFlag;
        this.checksum = ((flags >> 2) & 1) === 1;
        this.descriptor = flags;
        this.state = 'frame-header';
        this.need = (singleSegment ? 0 : 1) + dictBytes + sizeBytes;
        if (this.need === 0) this.advance();
        return;
      }
      case 'frame-header': {
        const flags = this.descriptor;
        const singleSegment = (flags >> 5) & 1;
        let window: number;
        if (singleSegment) {
          // The window is the frame content size, the last field of the header.
          const sizeFlag = flags >> 6;
          const sizeBytes = sizeFlag === 0 ? 1 : 1 << sizeFlag;
          const start = bytes.length - sizeBytes;
          window = 0;
          for (let i = sizeBytes - 1; i >= 0; i--) window = window * 256 + (bytes[start + i] as number);
          if (sizeFlag === 1) window += 256;
        } else {
          const descriptor = bytes[0] as number;
          const base = 2 ** (10 + (descriptor >> 3));
          window = base + (base / 8) * (descriptor & 7);
        }
        if (window > MAX_ZSTD_WINDOW)
          throw invalidArgument(
            `layer zstd frame needs a ${window}-byte window, more than the ${MAX_ZSTD_WINDOW}-byte limit`,
          );
        this.state = 'block';
        this.need = 3;
        return;
      }
      case 'block': {
        const value = (bytes[0] as number) | ((bytes[1] as number) << 8) | ((bytes[2] as number) << 16);
        const last = value & 1;
        const type = (value >> 1) & 3;
        const size = value >>> 3;
        if (type === 3) throw invalidArgument('layer is not valid zstd data: reserved block type');
        this.skipBytes = type === 1 ? 1 : size;
        if (last) {
          this.skipBytes += this.checksum ? 4 : 0;
          this.state = 'magic';
          this.need = 4;
        } else this.need = 3;
        return;
      }
    }
  }

  /** True when the stream ended between frames. */
  get complete(): boolean {
    return this.state === 'magic' && this.header.length === 0 && this.skipBytes === 0;
  }
}

/** Decompress a zstd stream chunk by chunk. */
export async function* zstdDecompress(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const guard = new FrameGuard();
  let output: Uint8Array[] = [];
  const decoder = new Decompress((chunk) => {
    if (chunk.length > 0) output.push(chunk);
  });
  const push = (data: Uint8Array, final: boolean): void => {
    try {
      decoder.push(data, final);
    } catch (err) {
      throw invalidArgument(
        `layer is not valid zstd data: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  };
  for await (const chunk of source) {
    for (let offset = 0; offset < chunk.length; offset += SLICE) {
      const slice = chunk.subarray(offset, offset + SLICE);
      guard.check(slice);
      push(slice, false);
      if (output.length > 0) {
        const ready = output;
        output = [];
        for (const piece of ready) yield Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      }
    }
  }
  if (!guard.complete) throw invalidArgument('layer is not valid zstd data: the stream is truncated');
  push(new Uint8Array(0), true);
  for (const piece of output) yield Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
}
