/**
 * Pull-based reader over an async stream of byte chunks: exact reads for headers, bounded
 * streaming for bodies, without copying more than a header's worth of bytes.
 */
export class ByteSource {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private ended = false;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Pull one more chunk; false at the end of the stream. */
  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.iterator.next();
    if (next.done === true) {
      this.ended = true;
      return false;
    }
    const chunk = Buffer.isBuffer(next.value)
      ? next.value
      : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    if (chunk.length > 0) {
      this.pending.push(chunk);
      this.pendingLength += chunk.length;
    }
    return true;
  }

  /** Up to `max` bytes from what is buffered or the next chunk; empty at the end. */
  async readSome(max: number): Promise<Buffer> {
    while (this.pendingLength === 0) if (!(await this.pull())) return Buffer.alloc(0);
    const first = this.pending[0] as Buffer;
    if (first.length <= max) {
      this.pending.shift();
      this.pendingLength -= first.length;
      return first;
    }
    this.pending[0] = first.subarray(max);
    this.pendingLength -= max;
    return first.subarray(0, max);
  }

  /** Exactly `n` bytes, or fewer only when the stream ends first. */
  async read(n: number): Promise<Buffer> {
    while (this.pendingLength < n) if (!(await this.pull())) break;
    const take = Math.min(n, this.pendingLength);
    const all = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    const result = all.subarray(0, take);
    const rest = all.subarray(take);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingLength = rest.length;
    return result;
  }

  /** Put bytes back in front (used after sniffing a header). */
  unshift(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.pending.unshift(bytes);
    this.pendingLength += bytes.length;
  }

  /** Discard `n` bytes; returns how many were actually there. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const chunk = await this.readSome(left);
      if (chunk.length === 0) break;
      left -= chunk.length;
    }
    return n - left;
  }

  /** Everything that is left, chunk by chunk; stopping early closes the source. */
  async *rest(): AsyncGenerator<Buffer> {
    try {
      while (true) {
        const chunk = await this.readSome(Number.MAX_SAFE_INTEGER);
        if (chunk.length === 0) return;
        yield chunk;
      }
    } finally {
      await this.close();
    }
  }

  /** Stop reading: the source is told (a Node.js stream is destroyed, a generator returns). */
  async close(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.pending = [];
    this.pendingLength = 0;
    await this.iterator.return?.();
  }
}
