/**
 * Messages between applyTar() (main thread) and the apply worker, over one MessageChannel per
 * apply. The worker asks for input chunk by chunk (`want`), so at most a few chunks are queued.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ErrorKind } from '../common/errors.js';
import type { ApplyOptions, ApplyResult } from './apply-types.js';

/** What the main thread sends the worker to start an apply (the port carries the rest). */
export interface ApplyJob {
  port: MessagePort;
  target: string;
  options: ApplyOptions;
  /** Read the layer from this open file instead of the port (the main thread keeps it open). */
  fd?: number;
}

/** Main thread -> worker, on the job's port. */
export type InputMessage =
  | { type: 'chunk'; data: Uint8Array }
  | { type: 'end' }
  /** The input failed; the main thread reports its own error, the worker only stops. */
  | { type: 'abort' };

/** Worker -> main thread, on the job's port. */
export type OutputMessage =
  | { type: 'want' }
  /** The apply stopped reading early: no more input is needed. */
  | { type: 'stop' }
  /** Bytes read so far from `fd` (input from a file only). */
  | { type: 'progress'; bytes: number }
  | { type: 'done'; result: ApplyResult }
  | { type: 'error'; kind: ErrorKind | undefined; message: string };

/** Chunks the worker asks for before it has consumed any: a little read-ahead. */
export const READ_AHEAD = 4;
