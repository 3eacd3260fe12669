import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open, rename, mkdir, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** fsync a directory so a rename inside it survives a crash. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Write a file so that a reader sees either the old content or the new, never a mix:
 * temporary file in the same directory, fsync, rename over the target, fsync the directory.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const durable = options.durable ?? true;
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  if (!durable) {
    writeFileAtomicNow(path, temp, data, options.mode);
    return;
  }
  await mkdir(dir, { recursive: true });
  const handle = await open(temp, 'wx', options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

/**
 * Without fsync a record is a few syscalls that wait for nothing but the page cache: made in the
 * calling thread they take tens of microseconds, where five thread-pool round trips take a
 * millisecond or more on a busy machine (these records are written on every start and exit).
 */
function writeFileAtomicNow(path: string, temp: string, data: string | Uint8Array, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  try {
    writeFileSync(temp, data, { mode, flag: 'wx' });
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

export interface AtomicWriteOptions {
  mode?: number;
  /**
   * fsync the file and its directory (the default). Runtime state that a reboot wipes anyway
   * (under /run) needs only the rename's atomicity, not durability.
   */
  durable?: boolean;
}

export async function writeJsonAtomic(
  path: string,
  value: unknown,
  options: AtomicWriteOptions = {},
): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n', options);
}
