/**
 * Reader of the json-file logs berth-shim writes (LOG_JSON_FILE, Docker's format): one JSON object
 * per line, `{"log":"...","stream":"stdout","time":"<RFC 3339, nanoseconds>"}`, rotated as
 * `path` -> `path.1` -> ... (the highest number is the oldest). Entries come oldest first across
 * the rotated files; with `follow` the reader waits for more and follows rotations.
 */
import { watch, type FSWatcher } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { errnoCode } from '../common/errors.js';

export interface LogEntry {
  stream: 'stdout' | 'stderr';
  /** The text as written, `\n` included (absent on a line split at 16 KiB or cut off at the end). */
  log: string;
  /** As written in the file (RFC 3339, UTC, up to nanoseconds). */
  time: string;
  /** `time` in nanoseconds since the epoch. */
  timeNs: bigint;
}

/** A point in time: a Date, or nanoseconds since the epoch. */
export type Instant = Date | bigint;

export interface ReadJsonLogOptions {
  /** Keep waiting for new entries (and rotated files) after the end. */
  follow?: boolean;
  /** Only the last `tail` entries of the log (before since/until filter them, as Docker does). */
  tail?: number;
  /** Entries at or after this time. */
  since?: Instant;
  /** Entries at or before this time; the reader stops at the first later one (and, following, once the clock passes it). */
  until?: Instant;
  /** Stop (quietly) when aborted. */
  signal?: AbortSignal;
  /** Following: once this settles (the container exited), read to the end and stop. */
  exited?: Promise<unknown>;
}

/** How long a follower sleeps when no file-system event wakes it (events can be missed). */
const POLL_MS = 500;
const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

const toNs = (instant: Instant): bigint =>
  typeof instant === 'bigint' ? instant : BigInt(instant.getTime()) * 1_000_000n;

const TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/** Nanoseconds since the epoch of an RFC 3339 time, undefined if it is not one. */
export function parseLogTime(time: string): bigint | undefined {
  const match = TIME.exec(time);
  const ms = match ? Date.parse(`${match[1]}${match[3]}`) : NaN;
  if (!match || Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((match[2] ?? '').padEnd(9, '0'));
}

/** One line of the file as an entry; undefined for a line that is not one (a torn write, say). */
function parseEntry(line: Buffer): LogEntry | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { log, stream, time } = value as Record<string, unknown>;
  if ((stream !== 'stdout' && stream !== 'stderr') || typeof time !== 'string') return undefined;
  if (log !== undefined && typeof log !== 'string') return undefined; // Docker omits an empty log
  const timeNs = parseLogTime(time);
  return timeNs === undefined ? undefined : { stream, log: log ?? '', time, timeNs };
}

/** An open log file read forward from `pos`; `rest` is a line not yet complete. */
interface LogFile {
  handle: FileHandle;
  ino: number;
  pos: number;
  rest: Buffer;
}

/** Rotation indexes present beside `path` (1 for path.1, ...), ascending. */
async function rotatedIndexes(path: string): Promise<number[]> {
  const prefix = `${basename(path)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  return names
    .filter((name) => name.startsWith(prefix) && /^[1-9]\d*$/.test(name.slice(prefix.length)))
    .map((name) => Number(name.slice(prefix.length)))
    .sort((a, b) => a - b);
}

/**
 * Open the log's files newest first, so that a rotation while opening repeats a file rather than
 * skipping one (repeats are dropped by inode), and stop at the file with inode `stopAt` (one
 * already read). Returns them oldest first; `opened` tracks every handle for closing.
 */
async function openFiles(path: string, opened: Set<FileHandle>, stopAt?: number): Promise<LogFile[]> {
  const files: LogFile[] = [];
  for (const index of [0, ...(await rotatedIndexes(path))]) {
    let handle: FileHandle;
    try {
      handle = await open(index === 0 ? path : `${path}.${index}`, 'r');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') continue; // rotated away meanwhile
      throw err;
    }
    opened.add(handle);
    const { ino } = await handle.stat();
    if (ino === stopAt || files.some((file) => file.ino === ino)) {
      await closeHandle(handle, opened);
      if (ino === stopAt) break;
      continue;
    }
    files.push({ handle, ino, pos: 0, rest: Buffer.alloc(0) });
  }
  return files.reverse();
}

async function closeHandle(handle: FileHandle, opened: Set<FileHandle>): Promise<void> {
  if (opened.delete(handle)) await handle.close();
}

/** Complete lines from `file.pos` to the current end of the file. */
async function* readLines(file: LogFile): AsyncGenerator<Buffer> {
  const buffer = Buffer.alloc(CHUNK);
  for (;;) {
    const { bytesRead } = await file.handle.read(buffer, 0, CHUNK, file.pos);
    if (bytesRead === 0) return;
    file.pos += bytesRead;
    let data = file.rest.length
      ? Buffer.concat([file.rest, buffer.subarray(0, bytesRead)])
      : buffer.subarray(0, bytesRead);
    let newline: number;
    while ((newline = data.indexOf(NEWLINE)) >= 0) {
      yield data.subarray(0, newline);
      data = data.subarray(newline + 1);
    }
    file.rest = Buffer.from(data);
  }
}

/**
 * Where the last `need` complete lines of a file begin, scanning backwards; `lines` is how many it
 * found (fewer than `need` when the file has fewer: then `start` is 0). Bytes after the last \n are
 * an entry still being written and do not count.
 */
async function tailStart(handle: FileHandle, need: number): Promise<{ start: number; lines: number }> {
  const { size } = await handle.stat();
  const buffer = Buffer.alloc(CHUNK);
  let end: number | undefined; // just past the last \n
  let found = 0;
  for (let chunkEnd = size; chunkEnd > 0; chunkEnd -= CHUNK) {
    const chunkStart = Math.max(0, chunkEnd - CHUNK);
    const { bytesRead } = await handle.read(buffer, 0, chunkEnd - chunkStart, chunkStart);
    for (let k = bytesRead - 1; k >= 0; k--) {
      if (buffer[k] !== NEWLINE) continue;
      const at = chunkStart + k;
      if (end === undefined) {
        end = at + 1;
        if (need === 0) return { start: end, lines: 0 };
      } else if (++found === need) {
        return { start: at + 1, lines: need };
      }
    }
  }
  return { start: 0, lines: end === undefined ? 0 : found + 1 };
}

/** Position the files so that only the last `count` complete lines are left; older files are closed and dropped. */
async function seekTail(files: LogFile[], count: number, opened: Set<FileHandle>): Promise<LogFile[]> {
  let need = count;
  for (let i = files.length - 1; i >= 0; i--) {
    const file = files[i] as LogFile;
    const { start, lines } = await tailStart(file.handle, need);
    if (lines >= need) {
      file.pos = start;
      for (const older of files.slice(0, i)) await closeHandle(older.handle, opened);
      return files.slice(i);
    }
    need -= lines;
  }
  return files;
}

/**
 * The entries of a json-file log, oldest first, across its rotated files. Unparseable lines are
 * skipped. A missing log reads as empty (and, following, is waited for).
 */
export async function* readJsonLog(path: string, options: ReadJsonLogOptions = {}): AsyncGenerator<LogEntry> {
  const { follow, signal } = options;
  const since = options.since === undefined ? undefined : toNs(options.since);
  const until = options.until === undefined ? undefined : toNs(options.until);
  const opened = new Set<FileHandle>();
  let watcher: FSWatcher | undefined;
  let wake: (() => void) | undefined;
  const poke = (): void => wake?.();
  let pastUntil = false;
  const stop = (): boolean => pastUntil || signal?.aborted === true;

  /** The entries among a file's new lines; sets pastUntil at the first entry after `until`. */
  async function* entries(file: LogFile): AsyncGenerator<LogEntry> {
    for await (const line of readLines(file)) {
      const entry = parseEntry(line);
      if (!entry || (since !== undefined && entry.timeNs < since)) continue;
      if (until !== undefined && entry.timeNs > until) {
        pastUntil = true;
        return;
      }
      yield entry;
      if (stop()) return;
    }
  }

  try {
    let files = await openFiles(path, opened);
    if (options.tail !== undefined)
      files = await seekTail(files, Math.max(0, Math.floor(options.tail)), opened);
    let current = follow ? files.pop() : undefined;
    for (const file of files) {
      yield* entries(file);
      await closeHandle(file.handle, opened);
      if (stop()) return;
    }
    if (!follow) return;

    let exited = false;
    const settle = (): void => {
      exited = true;
      poke();
    };
    options.exited?.then(settle, settle);
    signal?.addEventListener('abort', poke, { once: true });
    try {
      watcher = watch(dirname(path), poke);
      watcher.on('error', () => watcher?.close());
    } catch {
      watcher = undefined; // no directory yet, or no inotify: polling alone
    }

    for (;;) {
      const finalPass = exited; // settled before this pass: the pass reads everything there is
      if (current) yield* entries(current);
      if (stop()) return;
      // A different file at `path`: ours was rotated (and is complete) or the log was just created.
      const ino = await stat(path).then(
        (st) => st.ino,
        () => undefined,
      );
      if (ino !== undefined && ino !== current?.ino) {
        const newer = await openFiles(path, opened, current?.ino);
        if (current) {
          yield* entries(current);
          await closeHandle(current.handle, opened);
        }
        current = newer.pop();
        for (const file of newer) {
          if (stop()) return;
          yield* entries(file);
          await closeHandle(file.handle, opened);
        }
        continue;
      }
      if (finalPass) return;
      if (exited) continue; // settled during this pass: one more
      const now = BigInt(Date.now()) * 1_000_000n;
      if (until !== undefined && now > until) return;
      const timeout =
        until === undefined ? POLL_MS : Math.min(POLL_MS, Number((until - now) / 1_000_000n) + 1);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeout);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    watcher?.close();
    signal?.removeEventListener('abort', poke);
    await Promise.all([...opened].map((handle) => handle.close().catch(() => undefined)));
  }
}
