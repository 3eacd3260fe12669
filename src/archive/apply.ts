/**
 * Apply a layer tarball to a directory with OCI/Docker semantics, streaming, one entry at a time.
 *
 * Modes:
 * - "flat": the target is a full tree (copy snapshotter, unpacking onto a directory); a whiteout
 *   `.wh.<name>` deletes <name>, `.wh..wh..opq` deletes what lower layers put in its directory.
 * - "overlay": the target is an empty overlayfs upper directory over `lowers`; a whiteout becomes
 *   a 0/0 character device, an opaque marker the xattr trusted.overlay.opaque=y.
 *
 * Safety: see tree-view.ts. Entries are refused (error, or skipped with onRefused: 'skip') when
 * their name or hardlink target climbs above the root, a hardlink target is missing or a
 * directory, a parent is not a directory, a whiteout names nothing valid, or a device node is not
 * allowed. Symlinks inside entry paths are resolved inside the root, so `link/passwd` with
 * `link -> /etc` writes <root>/etc/passwd. Whiteouts only act on what lower layers contain, as the
 * OCI spec says: an entry written earlier by the same layer survives them.
 *
 * Where: decompression, hashing, tar parsing and every filesystem call run in a worker thread
 * (applier.ts, apply-worker.ts); this thread only hands it the input's chunks (or, for a layer in
 * a file, only the file descriptor), so a large layer never holds up the event loop, and the
 * worker's blocking syscalls skip the thread pool's round trips (several per entry, which
 * dominated unpacking).
 */
import { MessageChannel } from 'node:worker_threads';
import { BerthError, internal } from '../common/errors.js';
import type { ApplyJob, InputMessage, OutputMessage } from './apply-protocol.js';
import type { ApplyOptions, ApplyResult } from './apply-types.js';
import { releaseWorker, takeWorker } from './worker-pool.js';

export type { ApplyMode, ApplyOptions, ApplyResult, IdMap, IdRange } from './apply-types.js';

/**
 * A layer in an open file (a content store blob): the worker reads it itself, so no chunk is
 * read or copied by this thread. The file must stay open until the apply settles.
 */
export interface LayerFile {
  fd: number;
  /** The bytes read so far, as the worker reports them (progress). */
  onBytes?: (total: number) => void;
}

const isLayerFile = (input: AsyncIterable<Uint8Array> | LayerFile): input is LayerFile =>
  typeof (input as LayerFile).fd === 'number';

/**
 * Stream the layer in `input` (gzip, zstd or plain tar) into `target`. Returns the diff ID
 * computed from the bytes applied. The target must not change under the apply. The promise
 * settles only once the worker has stopped touching `target`.
 */
export async function applyTar(
  input: AsyncIterable<Uint8Array> | LayerFile,
  target: string,
  options: ApplyOptions,
): Promise<ApplyResult> {
  const worker = takeWorker();
  const { port1: port, port2 } = new MessageChannel();
  const send = (message: InputMessage): void => port.postMessage(message);
  let credit = 0;
  let stopped = false;
  let wake: (() => void) | undefined;
  let inputError: unknown;
  let workerFailure: Error | undefined;

  const outcome = new Promise<ApplyResult>((resolve, reject) => {
    const settle = (): void => {
      stopped = true;
      wake?.();
      worker.off('error', onCrash);
      worker.off('exit', onCrash);
      port.close();
    };
    const onCrash = (err: unknown): void => {
      workerFailure = err instanceof Error ? err : internal(`the layer apply worker exited (${String(err)})`);
      settle();
      reject(internal(`layer apply worker failed: ${workerFailure.message}`, workerFailure));
    };
    worker.once('error', onCrash);
    worker.once('exit', onCrash);
    port.on('message', (message: OutputMessage) => {
      if (message.type === 'want') credit++;
      else if (message.type === 'stop') stopped = true;
      else if (message.type === 'progress') file?.onBytes?.(message.bytes);
      else {
        settle();
        if (message.type === 'done') resolve(message.result);
        else if (inputError !== undefined) reject(inputError);
        else reject(new BerthError(message.kind ?? 'internal', message.message));
      }
      wake?.();
    });
  });

  const file = isLayerFile(input) ? input : undefined;
  const pump = async (): Promise<void> => {
    if (isLayerFile(input)) return;
    const iterator = input[Symbol.asyncIterator]();
    let done = false;
    try {
      while (!stopped) {
        if (credit === 0) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        const next = await iterator.next();
        if (next.done === true) {
          done = true;
          if (!stopped) send({ type: 'end' });
          return;
        }
        credit--;
        if (!stopped) send({ type: 'chunk', data: next.value });
      }
    } catch (err) {
      done = true; // a throwing iterator is finished
      inputError = err;
      if (!stopped) send({ type: 'abort' });
    } finally {
      // Stopping early closes the input (a Node.js stream is destroyed, a generator returns).
      if (!done) await iterator.return?.();
    }
  };

  const job: ApplyJob = { port: port2, target, options, ...(file ? { fd: file.fd } : {}) };
  worker.postMessage(job, [port2]);
  const pumped = pump();
  try {
    const result = await outcome;
    await pumped;
    return result;
  } catch (err) {
    pumped.catch(() => undefined); // its error, if any, is the one thrown here
    throw err;
  } finally {
    releaseWorker(worker, workerFailure === undefined);
  }
}
