/** DNS over TCP framing (RFC 1035 4.2.2, RFC 7766): every message is preceded by its 2-byte length. */

export function frame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(message.length);
  return Buffer.concat([prefix, message]);
}

/**
 * Collects stream chunks and hands out whole messages. Chunks are joined only once a message is
 * complete, so a peer trickling single bytes costs linear, not quadratic, copying.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private total = 0;

  /** Bytes received and not yet handed out. */
  get buffered(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** The next complete message, or undefined until more bytes arrive. */
  next(): Buffer | undefined {
    if (this.total < 2) return undefined;
    if (this.chunks[0]!.length < 2) this.join();
    const length = this.chunks[0]!.readUInt16BE(0);
    if (this.total < 2 + length) return undefined;
    this.join();
    const all = this.chunks[0]!;
    const message = all.subarray(2, 2 + length);
    const rest = all.subarray(2 + length);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.total = rest.length;
    return message;
  }

  private join(): void {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.total)];
  }
}
