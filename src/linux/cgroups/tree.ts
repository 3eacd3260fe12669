/** Walking and removing a cgroup directory tree, the same on v1 and v2. */
// Synchronous calls: cgroupfs answers from the kernel at once (see cgroupfs.ts).
import { readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { conflict, describeError, errnoCode, internal } from '../../common/errors.js';

/** Sub-cgroups of a directory (every subdirectory is one); none when it does not exist. */
async function children(directory: string): Promise<string[]> {
  try {
    const entries = readdirSync(directory, { withFileTypes: true });
    return entries.filter((entry) => entry.isDirectory()).map((entry) => join(directory, entry.name));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw internal(`listing ${directory} failed: ${describeError(err)}`, err);
  }
}

/** The process ids in a cgroup and all its descendants, sorted. */
export async function processesIn(directory: string): Promise<number[]> {
  const found = new Set<number>();
  const visit = async (dir: string): Promise<void> => {
    let text = '';
    try {
      text = readFileSync(join(dir, 'cgroup.procs'), 'utf8');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') {
        throw internal(`reading ${join(dir, 'cgroup.procs')} failed: ${describeError(err)}`, err);
      }
    }
    for (const line of text.split('\n')) if (/^\d+$/.test(line)) found.add(Number(line));
    for (const child of await children(dir)) await visit(child);
  };
  await visit(directory);
  return [...found].sort((a, b) => a - b);
}

const BUSY_RETRIES = 50;
const BUSY_DELAY_MS = 10;

/**
 * Removes a cgroup and its sub-cgroups, deepest first. The cgroup is listed only when rmdir
 * refuses it (usually it has no sub-cgroups). A cgroup whose last process has just exited can stay
 * busy for a moment, so EBUSY is retried briefly; a cgroup that is already gone is fine.
 */
export async function removeTree(directory: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(directory);
      return;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return;
      const subs = code === 'EBUSY' || code === 'ENOTEMPTY' ? await children(directory) : [];
      if (subs.length > 0) {
        for (const child of subs) await removeTree(child);
        continue;
      }
      if (code !== 'EBUSY') throw internal(`removing cgroup ${directory} failed: ${describeError(err)}`, err);
      if (attempt >= BUSY_RETRIES)
        throw conflict(`cannot remove cgroup ${directory}: it still has processes`);
      await sleep(BUSY_DELAY_MS);
    }
  }
}

/** Polls `settled` until it is true, up to about ten seconds; returns whether it became true. */
export async function waitUntil(settled: () => Promise<boolean>): Promise<boolean> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    if (await settled()) return true;
    await sleep(attempt < 10 ? 1 : 10);
  }
  return false;
}
