/**
 * Apply workers, started on demand and kept for the next apply (starting one costs tens of
 * milliseconds). An idle worker does not keep the process alive.
 */
import { Worker } from 'node:worker_threads';

/** Idle workers kept beyond this are ended: more applies than this rarely run at once. */
const MAX_IDLE = 2;
const WORKER_URL = new URL('./apply-worker.js', import.meta.url);

const idle: Worker[] = [];

function start(): Worker {
  const worker = new Worker(WORKER_URL);
  // A worker that dies while idle must not be handed out again.
  worker.once('exit', () => {
    const index = idle.indexOf(worker);
    if (index !== -1) idle.splice(index, 1);
  });
  return worker;
}

export function takeWorker(): Worker {
  const worker = idle.pop() ?? start();
  worker.ref();
  return worker;
}

/** Give a worker back after an apply; one that failed is ended instead. */
export function releaseWorker(worker: Worker, healthy: boolean): void {
  if (!healthy || idle.length >= MAX_IDLE) {
    void worker.terminate();
    return;
  }
  worker.unref();
  idle.push(worker);
}
