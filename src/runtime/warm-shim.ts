/**
 * Shims for the common case: stdio all 'ignore' and no preserved fds (berthd's containers, whose
 * stdio the shim holds, and library runs). They are started by berth-spawn (spawn-helper.ts) when
 * it is built, else by Node's spawn, which forks the whole Node process and waits for the exec,
 * milliseconds of the event loop that grow with the heap.
 *
 * One is kept started ahead of need: a shim started while this process is idle waits on its fd 3,
 * and taking it costs only writing the plan (its exec and start-up are done). The next one is
 * started from the event loop once the caller's container runs (after `start`, after `exec`).
 * Such a shim is a session leader from the start (as a detached one is); in foreground runs that
 * changes nothing, since it holds no terminal. When this process exits, the waiting shim reads an
 * empty plan and exits 0.
 */
import type { StdioOptions } from 'node:child_process';
import { spawnShim, type PendingShim, type ShimOptions } from './shim-process.js';
import { spawnShimViaHelper } from './spawn-helper.js';

const WARM: ShimOptions = { stdio: ['ignore', 'ignore', 'ignore'], detached: true };

function allIgnored(stdio: StdioOptions): boolean {
  if (!Array.isArray(stdio)) return stdio === 'ignore';
  return stdio.length === 3 && stdio.every((s) => s === 'ignore');
}

/** A shim of the common case, from berth-spawn when there is one. */
function startCommon(): PendingShim {
  return spawnShimViaHelper() ?? spawnShim(WARM);
}

export class WarmShim {
  private ready: PendingShim | undefined;
  private refilling = false;

  /** A started shim for these options: the warm one when they fit it, else a new one. */
  take(options: ShimOptions): PendingShim {
    if ((options.preserveFds ?? 0) > 0 || !allIgnored(options.stdio)) return spawnShim(options);
    const warm = this.ready;
    this.ready = undefined;
    if (warm?.alive()) {
      warm.ref();
      return warm;
    }
    return startCommon();
  }

  /** Start the next shim soon, unless one waits already. */
  refill(): void {
    if (this.refilling) return;
    this.refilling = true;
    setImmediate(() => {
      this.refilling = false;
      if (this.ready?.alive()) return;
      try {
        this.ready = startCommon();
        this.ready.unref();
      } catch {
        // no shim to start (not built): take() reports that when a container needs one
      }
    }).unref();
  }
}
