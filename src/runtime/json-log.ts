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
  const names = await readdir(dirname(path));
  return names
    .filter((name) => name.startsWith(prefix) && /^[1-9]\d*$/.test(name.slice(prefix.length)))
    .map((name) => Number(name.slice(prefix.length)))
    .sort((a, b) => a - b);
}

/**
 * Open the log's files newest first (so a rotation while opening repeats a file rather than skipping
 * one: repeats are dropped by inode), stopping at the file with inode `stopAt` (one already read).
 * Returns them oldest first.
 */
async function openFiles(path: string, stopAt?: number): Promise<LogFile[]> {
  const files: LogFile[] = [];
  try {
    for (const index of [0, ...(await rotatedIndexes(path))]) {
      let handle: FileHandle;
      try {
        handle = await open(index === 0 ? path : `${path}.${index}`, 'r');
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue; // rotated away meanwhile
        throw err;
      }
      const { ino } = await handle.stat();
      if (ino === stopAt || files.some((file) => file.ino === ino)) {
        await handle.close();
        if (ino === stopAt) break;
        continue;
      }
      files.push({ handle, ino, pos: 0, rest: Buffer.alloc(0) });
    }
  } catch (err) {
    await Promise.all(files.map((file) => file.handle.close()));
    if (errnoCode(err) === 'ENOENT') return []; // no log directory: no log
    throw err;
  }
  return files.reverse();
}

/** Complete lines from `file.pos` to the current end of the file. */
async function* readLines(file: LogFile): AsyncGenerator<Buffer> {
  const buffer = Buffer.alloc(CHUNK);
  for (;;) {
    const { bytesRead } = await file.handle.read(buffer, 0, CHUNK, file.pos);
    if (bytesRead === 0) return;
    file.pos += bytesRead;
    let data = Buffer.concat([file.rest, buffer.subarray(0, bytesRead)]);
    let newline: number;
    while ((newline = data.indexOf(NEWLINE)) >= 0) {
      const line = data.subarray(0, newline);
      data = data.subarray(newline + 1);
      yield line;
    }
    file.rest = Buffer.from(data);
  }
}

/**
 * Position the files so that only the last `count` complete lines remain to be read: counts
 * newlines backwards from the newest file. Files left with nothing to read are dropped.
 */
async function seekTail(files: LogFile[], count: number): Promise<LogFile[]> {
  let need = count;
  const buffer = Buffer.alloc(CHUNK);
  for (let i = files.length - 1; i >= 0; i--) {
    const file = files[i] as LogFile;
    const { size } = await file.handle.stat();
    // Lines end with \n: the bytes after the last \n are an entry still being written.
    let end = size;
    let lines = 0;
    let start = 0; // where the wanted lines of this file begin
    let found = false;
    for (let chunkEnd = size; chunkEnd > 0 && !found; chunkEnd -= CHUNK) {
      const chunkStart = Math.max(0, chunkEnd - CHUNK);
      const { bytesRead } = await file.handle.read(buffer, 0, chunkEnd - chunkStart, chunkStart);
      for (let k = bytesRead - 1; k >= 0; k--) {
        if (buffer[k] !== NEWLINE) continue;
        const at = chunkStart + k;
        if (end === size && lines === 0 && at === size - 1) continue; // the newest line's own \n
        if (end === size && lines === 0 && i === files.length - 1 && start === 0 && at < size - 1) {
          // The newest file ends mid-line: that part is not a line yet.
          end = at + 1;
          if (need === 0) {
            start = end;
            found = true;
            break;
          }
          continue;
        }
        lines++;
        if (lines === need) {
          start = at + 1;
          found = true;
          break;
        }
      }
    }
    if (found) {
      file.pos = start;
      await Promise.all(files.slice(0, i).map((older) => older.handle.close()));
      return files.slice(i);
    }
    need -= lines + (size > 0 && end === size ? 1 : 0);
    if (need <= 0) {
      return files.slice(i);
    }
  }
  return files;
}

/**
 * The entries of a json-file log, oldest first, across its rotated files. Unparseable lines are
 * skipped. A missing log reads as empty (and, following, is waited for).
 */
export async function* readJsonLog(path: string, options: ReadJsonLogOptions = {}): AsyncGenerator<LogEntry> {
  const since = options.since === undefined ? undefined : toNs(options.since);
  const until = options.until === undefined ? undefined : toNs(options.until);
  let files = await openFiles(path);
  let watcher: FSWatcher | undefined;
  try {
    if (options.tail !== undefined) files = await seekTail(files, Math.max(0, Math.floor(options.tail)));
    const current = options.follow ? files.pop() : undefined;
    let done = false;
    /** Entries of one file's new lines; sets `done` past `until`. */
    async function* entries(file: LogFile): AsyncGenerator<LogEntry> {
      for await (const line of readLines(file)) {
        const entry = parseEntry(line);
        if (!entry || (since !== undefined && entry.timeNs < since)) continue;
        if (until !== undefined && entry.timeNs > until) {
          done = true;
          return;
        }
        yield entry;
        if (options.signal?.aborted) return;
      }
    }
    for (const file of files) {
      yield* entries(file);
      if (done || options.signal?.aborted) return;
    }
    if (!options.follow) return;

    let exited = false;
    let wake: (() => void) | undefined;
    const poke = (): void => wake?.();
    void options.exited?.then(
      () => ((exited = true), poke()),
      () => ((exited = true), poke()),
    );
    options.signal?.addEventListener('abort', poke, { once: true });
    try {
      watcher = watch(dirname(path), poke);
      watcher.on('error', () => watcher?.close());
    } catch {
      watcher = undefined; // polling alone
    }

    let file = current;
    for (;;) {
      const finalPass = exited;
      if (file) {
        yield* entries(file);
        if (done || options.signal?.aborted) return;
      }
      // Rotated (or first created)? Then the current file is complete: finish it, then the newer ones.
      const ino = await stat(path).then(
        (st) => st.ino,
        () => undefined,
      );
      if (ino !== undefined && ino !== file?.ino) {
        if (file) {
          yield* entries(file);
          await file.handle.close();
        }
        const newer = await openFiles(path, file?.ino);
        file = newer.pop();
        for (const older of newer) {
          yield* entries(older);
          await older.handle.close();
          if (done || options.signal?.aborted) return;
        }
        continue;
      }
      if (finalPass || options.signal?.aborted) return;
      const now = BigInt(Date.now()) * 1_000_000n;
      if (until !== undefined && now > until) return;
      const timeout = until === undefined ? POLL_MS : Math.min(POLL_MS, Number((until - now) / 1_000_000n) + 1);
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
    await Promise.all(files.map((file) => file.handle.close().catch(() => undefined)));
  }
}
