/**
 * The input a fuzz worker process is running, in a small file: the worker writes each input
 * (with a sequence number) before it runs it, and the supervisor reads it back when the worker
 * hangs or dies, which is when a message could no longer be sent. A write is one pwrite at
 * offset 0 of a buffer kept for it, a few microseconds against the hundreds an input takes.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

const HEADER = 8;
/** Inputs are at most a target's maximum length, far below this. */
export const SLOT_CAPACITY = 1024 * 1024;

export class InputSlotWriter {
  private readonly fd: number;
  private readonly buffer = Buffer.alloc(HEADER + SLOT_CAPACITY);
  private sequence = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  write(input: Uint8Array): void {
    const length = Math.min(input.length, SLOT_CAPACITY);
    this.sequence = (this.sequence + 1) >>> 0;
    this.buffer.writeUInt32LE(this.sequence, 0);
    this.buffer.writeUInt32LE(length, 4);
    this.buffer.set(input.subarray(0, length), HEADER);
    writeSync(this.fd, this.buffer, 0, HEADER + length, 0);
  }

  close(): void {
    closeSync(this.fd);
  }
}

export class InputSlotReader {
  private readonly header = Buffer.alloc(HEADER);

  constructor(private readonly path: string) {}

  /** Changes with every input written; 0 before the first. */
  sequence(): number {
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'r');
      return readSync(fd, this.header, 0, HEADER, 0) === HEADER ? this.header.readUInt32LE(0) : 0;
    } catch {
      return 0;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** The last input written (empty when there was none). */
  read(): Buffer {
    let fd: number | undefined;
    try {
      fd = openSync(this.path, 'r');
      if (readSync(fd, this.header, 0, HEADER, 0) !== HEADER) return Buffer.alloc(0);
      const input = Buffer.alloc(Math.min(this.header.readUInt32LE(4), SLOT_CAPACITY));
      const read = readSync(fd, input, 0, input.length, HEADER);
      return input.subarray(0, read);
    } catch {
      return Buffer.alloc(0);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }
}
