/**
 * The apply worker thread: takes one ApplyJob at a time from the main thread, reads the layer's
 * bytes from the job's port (or from the job's open file) and applies it with applyInThread().
 */
import { readSync } from 'node:fs';
import { parentPort, type MessagePort } from 'node:worker_threads';
import { BerthError } from '../common/errors.js';
import { applyInThread } from './applier.js';
import { READ_AHEAD, type ApplyJob, type InputMessage, type OutputMessage } from './apply-protocol.js';

/** The job's input as an async iterable; asks for one chunk per chunk consumed. */
async function* received(port: MessagePort): AsyncGenerator<Uint8Array> {
  const queue: InputMessage[] = [];
  let wake: (() => void) | undefined;
  port.on('message', (message: InputMessage) => {
    queue.push(message);
    wake?.();
  });
  const send = (message: OutputMessage): void => port.postMessage(message);
  for (let i = 0; i < READ_AHEAD; i++) send({ type: 'want' });
  let finished = false;
  try {
    while (true) {
      const message = queue.shift();
      if (message === undefined) {
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        continue;
      }
      if (message.type === 'end') {
        finished = true;
        return;
      }
      if (message.type === 'abort') {
        finished = true;
        throw new Error('the layer input failed');
      }
      send({ type: 'want' });
      yield message.data;
    }
  } finally {
    if (!finished) send({ type: 'stop' });
  }
}

/** The layer read straight from an open file, in large chunks, reporting progress as it goes. */
async function* fromFile(fd: number, port: MessagePort): AsyncGenerator<Uint8Array> {
  let position = 0;
  while (true) {
    const chunk = Buffer.allocUnsafe(FILE_CHUNK);
    const length = readSync(fd, chunk, 0, FILE_CHUNK, position);
    if (length === 0) return;
    position += length;
    port.postMessage({ type: 'progress', bytes: position } satisfies OutputMessage);
    yield chunk.subarray(0, length);
  }
}

const FILE_CHUNK = 1 << 20;

async function run(job: ApplyJob): Promise<void> {
  const { port } = job;
  const send = (message: OutputMessage): void => port.postMessage(message);
  try {
    const input = job.fd === undefined ? received(port) : fromFile(job.fd, port);
    send({ type: 'done', result: await applyInThread(input, job.target, job.options) });
  } catch (err) {
    send({
      type: 'error',
      kind: err instanceof BerthError ? err.kind : undefined,
      message: err instanceof Error ? err.message : String(err),
    });
  } finally {
    port.close();
  }
}

parentPort?.on('message', (job: ApplyJob) => void run(job));
