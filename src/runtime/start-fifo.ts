/**
 * `start`: the reading end of the container's exec.fifo. Opening it lets init's blocked
 * open(O_WRONLY) return; init runs the startContainer hooks and answers `0` (it goes on to exec)
 * or `1` and why it did not (docs/shim-plan.md, WAIT_START).
 */
import { constants, openSync, readSync } from 'node:fs';
import { Socket } from 'node:net';
import { BerthError, conflict, errnoCode } from '../common/errors.js';

/** How often init's liveness is checked while no answer has come. */
const ALIVE_CHECK_MS = 20;
/** How long init may take to answer when it runs no startContainer hook. */
export const START_ANSWER_MS = 10_000;

/** init will not run the user's program: a startContainer hook failed (the message says which and how). */
export class StartHookError extends BerthError {
  constructor(id: string, detail: string) {
    super('internal', `cannot start container ${id}: ${detail}`);
  }
}

/** init's answer if the fifo holds one now; undefined when it is empty or has no writer. */
function takeAnswer(fd: number): string | undefined {
  const buffer = Buffer.alloc(2048);
  try {
    const n = readSync(fd, buffer, 0, buffer.length, null);
    return n > 0 ? buffer.toString('utf8', 0, n) : undefined;
  } catch (err) {
    if (errnoCode(err) === 'EAGAIN') return undefined;
    throw err;
  }
}

/** Resolves for `0`; a StartHookError for `1<message>` (one write from init, so it comes whole). */
function answerError(id: string, answer: string): Error | undefined {
  return answer.startsWith('0') ? undefined : new StartHookError(id, answer.slice(1));
}

/**
 * Opens the fifo for reading and waits, woken by the answer itself (not by polling), until init has
 * written it. `alive` tells whether init still exists: init that died before answering fails the
 * start instead of hanging it. `giveUpMs` bounds the wait for an init that is alive but silent
 * (Infinity while startContainer hooks without a timeout may run).
 */
export async function waitForStartByte(
  path: string,
  id: string,
  alive: () => boolean,
  giveUpMs = START_ANSWER_MS,
): Promise<void> {
  // Until a writer has opened it, a fifo's reading end reports neither data nor hang-up.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const socket = new Socket({ fd, readable: true, writable: false });
  try {
    await new Promise<void>((resolve, reject) => {
      const started = Date.now();
      const timer = setInterval(() => {
        if (!alive()) {
          // The answer may be in the pipe already: init wrote it, ran and ended in between.
          const answer = takeAnswer(fd);
          finish(answer ? answerError(id, answer) : conflict(`container ${id} exited before it was started`));
        } else if (Date.now() - started > giveUpMs) {
          finish(conflict(`container ${id} did not answer start`));
        }
      }, ALIVE_CHECK_MS);
      const finish = (error?: Error): void => {
        clearInterval(timer);
        socket.removeAllListeners('data');
        if (error) reject(error);
        else resolve();
      };
      socket.once('data', (chunk: Buffer) => finish(answerError(id, chunk.toString('utf8'))));
      socket.once('error', (err) => finish(err));
    });
  } finally {
    socket.destroy();
  }
}
