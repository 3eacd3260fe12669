/**
 * `start`: the reading end of the container's exec.fifo. Opening it lets init's blocked
 * open(O_WRONLY) return; init writes one byte and goes on to exec (docs/shim-plan.md, WAIT_START).
 */
import { constants, openSync, readSync } from 'node:fs';
import { Socket } from 'node:net';
import { conflict, errnoCode } from '../common/errors.js';

/** How often init's liveness is checked while no byte has come, and for how long in all. */
const ALIVE_CHECK_MS = 20;
const GIVE_UP_MS = 10_000;

/** One byte if the fifo holds one now; false when it is empty or has no writer. */
function takeByte(fd: number): boolean {
  try {
    return readSync(fd, Buffer.alloc(1), 0, 1, null) === 1;
  } catch (err) {
    if (errnoCode(err) === 'EAGAIN') return false;
    throw err;
  }
}

/**
 * Opens the fifo for reading and waits, woken by the byte itself (not by polling), until init has
 * written it. `alive` tells whether init still exists: init that died before writing fails the
 * start instead of hanging it.
 */
export async function waitForStartByte(path: string, id: string, alive: () => boolean): Promise<void> {
  // Until a writer has opened it, a fifo's reading end reports neither data nor hang-up.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const socket = new Socket({ fd, readable: true, writable: false });
  try {
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const timer = setInterval(() => {
        if (!alive()) {
          // The byte may be in the pipe already: init wrote it, ran and ended in between.
          finish(takeByte(fd) ? undefined : conflict(`container ${id} exited before it was started`));
        } else if (Date.now() - started > GIVE_UP_MS) {
          finish(conflict(`container ${id} did not answer start`));
        }
      }, ALIVE_CHECK_MS);
      const finish = (error?: Error): void => {
        clearInterval(timer);
        socket.removeAllListeners('data');
        if (error) reject(error);
        else resolve();
      };
      socket.once('data', () => finish());
      socket.once('error', (err) => finish(err));
    });
  } finally {
    socket.destroy();
  }
}
