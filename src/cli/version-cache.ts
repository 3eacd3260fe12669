/**
 * The API version a daemon announced on `/_ping`, remembered between runs so that a command does
 * not wait for that round trip first (docs/cli.md, "Start-up"). Only for unix sockets: an entry
 * holds for the socket file it was learned from, by device, inode and change time, which a
 * restarted daemon renews by binding anew; and for ten minutes at most, so a daemon upgraded
 * behind a socket that systemd keeps open is asked again soon. The file is in a directory that
 * only this user can write: $XDG_RUNTIME_DIR/berth, else $TMPDIR/berth-<uid>.
 */
// Synchronous file calls: they take microseconds, and the first request waits for the answer.
import { lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const FRESH_MS = 10 * 60 * 1000;
/** Entries kept: one per daemon socket recently used. */
const MAX_ENTRIES = 16;
const FILE = 'api-versions';

/** One line: socket path, its identity, when the version was learned, and the version ("" for none). */
interface Entry {
  socketPath: string;
  identity: string;
  learnedMs: number;
  version: string;
}

/** The cache directory for this user, or undefined when none is safe to use. */
export function versionCacheDir(env: NodeJS.ProcessEnv): string | undefined {
  const uid = process.getuid?.();
  if (uid === undefined) return undefined;
  if (env.XDG_RUNTIME_DIR?.startsWith('/')) return join(env.XDG_RUNTIME_DIR, 'berth');
  return join(env.TMPDIR?.startsWith('/') ? env.TMPDIR : '/tmp', `berth-${uid}`);
}

/** The socket's identity: a daemon that binds the path again makes a new socket file. */
function socketIdentity(socketPath: string): string | undefined {
  try {
    // Not the bigint form, which costs more than the rest of the lookup: the change time in
    // milliseconds keeps a fraction precise to well under a microsecond.
    const st = statSync(socketPath);
    return st.isSocket() ? `${st.dev}:${st.ino}:${st.ctimeMs}` : undefined;
  } catch {
    return undefined;
  }
}

/** A directory another user could have made or could write is not trusted. */
function ownDirectory(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

function readEntries(dir: string): Entry[] {
  let text: string;
  try {
    text = readFileSync(join(dir, FILE), 'utf8');
  } catch {
    return [];
  }
  const entries: Entry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split('\t');
    if (fields.length !== 4) continue;
    const [socketPath = '', identity = '', learned = '', version = ''] = fields;
    const learnedMs = Number(learned);
    if (Number.isFinite(learnedMs) && /^(\d+(\.\d+)*)?$/.test(version))
      entries.push({ socketPath, identity, learnedMs, version });
  }
  return entries;
}

/** The version the daemon on this socket announced, when that is known and fresh. */
export function cachedServerVersion(dir: string, socketPath: string, now = Date.now()): string | undefined {
  const identity = socketIdentity(socketPath);
  if (identity === undefined || !ownDirectory(dir)) return undefined;
  const entry = readEntries(dir).find((e) => e.socketPath === socketPath && e.identity === identity);
  if (entry === undefined || now - entry.learnedMs > FRESH_MS || entry.learnedMs > now) return undefined;
  return entry.version;
}

/** Remembers what the daemon on this socket announced; failures only cost the next run a ping. */
export function rememberServerVersion(
  dir: string,
  socketPath: string,
  version: string,
  now = Date.now(),
): void {
  const identity = socketIdentity(socketPath);
  if (identity === undefined || socketPath.includes('\t') || socketPath.includes('\n')) return;
  if (!/^(\d+(\.\d+)*)?$/.test(version)) return;
  const temp = join(dir, `${FILE}.${process.pid}`);
  try {
    mkdirSync(dir, { mode: 0o700, recursive: true });
    if (!ownDirectory(dir)) return;
    const entries = readEntries(dir).filter((e) => e.socketPath !== socketPath);
    entries.unshift({ socketPath, identity, learnedMs: now, version });
    const text = entries
      .slice(0, MAX_ENTRIES)
      .map((e) => `${e.socketPath}\t${e.identity}\t${e.learnedMs}\t${e.version}\n`)
      .join('');
    writeFileSync(temp, text, { mode: 0o600 });
    renameSync(temp, join(dir, FILE));
  } catch {
    try {
      rmSync(temp, { force: true });
    } catch {
      // Nothing was written.
    }
  }
}
