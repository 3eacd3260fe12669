/** In-process locks: one process owns a data root, so these replace file locks. */

/** Runs tasks one at a time, in call order; a failed task does not stop the ones after it. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * Many shared holders or one exclusive holder. Writers of new content (pull, load, import) hold
 * it shared; garbage collection holds it exclusive, so it never sweeps blobs that an operation
 * has stored but not yet recorded.
 */
export class SharedLock {
  private shared = 0;
  private exclusive = false;
  private readonly waiting: Array<{ exclusive: boolean; wake: () => void }> = [];

  private acquire(exclusive: boolean): Promise<void> {
    const free = !this.exclusive && (!exclusive || this.shared === 0);
    // Anyone waiting goes first (FIFO), so a stream of shared holders cannot starve GC.
    if (free && this.waiting.length === 0) {
      this.take(exclusive);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push({ exclusive, wake: resolve }));
  }

  private take(exclusive: boolean): void {
    if (exclusive) this.exclusive = true;
    else this.shared++;
  }

  private release(exclusive: boolean): void {
    if (exclusive) this.exclusive = false;
    else this.shared--;
    while (this.waiting.length > 0) {
      const next = this.waiting[0] as { exclusive: boolean; wake: () => void };
      if (this.exclusive || (next.exclusive && this.shared > 0)) return;
      this.waiting.shift();
      this.take(next.exclusive);
      next.wake();
      if (next.exclusive) return;
    }
  }

  async withShared<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await task();
    } finally {
      this.release(false);
    }
  }

  async withExclusive<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try {
      return await task();
    } finally {
      this.release(true);
    }
  }

  /** Take the lock shared until `release` is called (for streams that outlive a call). */
  async holdShared(): Promise<() => void> {
    await this.acquire(false);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release(false);
    };
  }
}
