/**
 * One berth-shim started ahead of need. Spawning from Node forks the whole Node process and waits
 * for the exec, milliseconds that grow with the heap; a shim started while Node is idle waits on
 * its fd 3, and taking it costs only writing the plan. The next one is started from the event
 * loop once the caller's container runs (after `start`, after `exec`): a fork of Node blocks its
 * event loop, and during `create` that would hold up the shim's answers.
 *
 * Only the common case is served: stdio all 'ignore' and no preserved fds (berthd's containers,
 * whose stdio the shim holds, and library runs). A warm shim is a session leader from the start
 * (as a detached one is); in foreground runs that changes nothing, since it holds no terminal.
 * When this process exits, the waiting shim reads an empty plan and exits 0.
 */
import type { StdioOptions } from 'node:child_process';
import { spawnShim, type PendingShim, type ShimOptions } from './shim-process.js';

const WARM: ShimOptions = { stdio: ['ignore', 'ignore', 'ignore'], detached: true };

function allIgnored(stdio: StdioOptions): boolean {
  if (!Array.isArray(stdio)) return stdio === 'ignore';
  return stdio.length === 3 && stdio.every((s) => s === 'ignore');
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
    return spawnShim(options);
  }

  /** Start the next shim soon, unless one waits already. */
  refill(): void {
    if (this.refilling) return;
    this.refilling = true;
    setImmediate(() => {
      this.refilling = false;
      if (this.ready?.alive()) return;
      try {
        this.ready = spawnShim(WARM);
        this.ready.unref();
      } catch {
        // no shim to start (not built): take() reports that when a container needs one
      }
    }).unref();
  }
}
