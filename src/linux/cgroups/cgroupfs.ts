/**
 * Reading and writing the files of one cgroup directory. The calls are synchronous on purpose:
 * cgroup files live in the kernel and answer in microseconds, and a round trip through libuv's
 * thread pool per file made container start-up several times slower. A failed write becomes a BerthError that
 * names the OCI field being set, so a user learns which setting the kernel refused.
 */
import { closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  BerthError,
  describeError,
  errnoCode,
  internal,
  invalidArgument,
  notFound,
  unavailable,
} from '../../common/errors.js';

export class CgroupDir {
  constructor(readonly directory: string) {}

  path(file: string): string {
    return join(this.directory, file);
  }

  /** The file's content, or undefined when the file does not exist. */
  async read(file: string): Promise<string | undefined> {
    try {
      return readFileSync(this.path(file), 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw internal(`reading ${this.path(file)} failed: ${describeError(err)}`, err);
    }
  }

  async has(file: string): Promise<boolean> {
    return existsSync(this.path(file));
  }

  /**
   * Writes one value, as one write(2). `field` names the OCI setting for the error message;
   * `busy` replaces the message for EBUSY, which means different things in different files.
   */
  async write(file: string, value: string, field: string, busy?: string): Promise<void> {
    try {
      await this.writeRaw(file, value);
    } catch (err) {
      throw this.failure(err, file, value, field, busy);
    }
  }

  /** The BerthError for a failed write of `value` to `file`, naming the OCI field. */
  failure(err: unknown, file: string, value: string, field: string, busy?: string): BerthError {
    return writeError(err, this.path(file), value, field, busy);
  }

  /**
   * Writes values in order, each as one write(2), keeping one descriptor open per file: the kernel
   * takes each write as one value (a device rule), and an open and close per value cost more than
   * the writes themselves.
   */
  writeInOrder(writes: ReadonlyArray<{ file: string; value: string; field: string }>): void {
    const open = new Map<string, number>();
    try {
      for (const { file, value, field } of writes) {
        try {
          let fd = open.get(file);
          if (fd === undefined) {
            fd = openSync(this.path(file), constants.O_WRONLY | constants.O_TRUNC);
            open.set(file, fd);
          }
          writeSync(fd, value);
        } catch (err) {
          throw this.failure(err, file, value, field);
        }
      }
    } finally {
      for (const fd of open.values()) closeSync(fd);
    }
  }

  /** Writes one value and lets the system error through, for callers that act on its errno. */
  async writeRaw(file: string, value: string): Promise<void> {
    // O_WRONLY without O_CREAT: some cgroup files are write-only, and a missing file must fail.
    const fd = openSync(this.path(file), constants.O_WRONLY | constants.O_TRUNC);
    try {
      writeSync(fd, value);
    } finally {
      closeSync(fd);
    }
  }
}

/** Moves a process into the cgroup at `directory`. */
export async function addPid(directory: string, pid: number): Promise<void> {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw invalidArgument(`process id ${pid} is not valid`);
  try {
    await new CgroupDir(directory).writeRaw('cgroup.procs', String(pid));
  } catch (err) {
    if (errnoCode(err) === 'ESRCH') throw notFound(`process ${pid} does not exist`);
    throw internal(`moving process ${pid} into cgroup ${directory} failed: ${describeError(err)}`, err);
  }
}

/** Makes a directory and its missing parents; the error names the cgroup. */
export async function makeDirectory(directory: string): Promise<void> {
  try {
    mkdirSync(directory, { recursive: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS')
      throw unavailable(`cannot create cgroup ${directory}: ${describeError(err)}`);
    throw internal(`creating cgroup ${directory} failed: ${describeError(err)}`, err);
  }
}

function writeError(err: unknown, path: string, value: string, field: string, busy?: string): BerthError {
  const code = errnoCode(err);
  switch (code) {
    case 'ENOENT':
      return invalidArgument(`${field}: not supported by this kernel (${path} does not exist)`);
    case 'EINVAL':
    case 'ERANGE':
    case 'EOVERFLOW':
      return invalidArgument(
        `${field}: the kernel rejects ${JSON.stringify(value)} (${code} writing ${path})`,
      );
    case 'EBUSY':
      return invalidArgument(
        busy ?? `${field}: the kernel refuses ${JSON.stringify(value)} now (EBUSY writing ${path})`,
      );
    case 'EPERM':
    case 'EACCES':
      return invalidArgument(
        `${field}: the kernel does not permit ${JSON.stringify(value)} (${code} writing ${path}); the parent cgroup may not allow it`,
      );
    default:
      return internal(
        `${field}: writing ${JSON.stringify(value)} to ${path} failed: ${describeError(err)}`,
        err,
      );
  }
}

/** A single-number file; "max" (v2) and undefined (missing file) give undefined. */
export function parseSingle(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = text.trim();
  if (value === '' || value === 'max') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

/** A v1 limit file; v1 writes "unlimited" as the largest page-aligned counter, about 2^63. */
export function parseV1Limit(text: string | undefined): number | undefined {
  const value = parseSingle(text);
  return value === undefined || value >= 2 ** 62 ? undefined : value;
}

/** "key value" lines (memory.stat, cpu.stat, memory.events, memory.oom_control). */
export function parseFlatKeyed(text: string | undefined): Record<string, number> {
  const result: Record<string, number> = {};
  for (const line of (text ?? '').split('\n')) {
    const [key, value, extra] = line.trim().split(/\s+/);
    if (key === undefined || key === '' || value === undefined || extra !== undefined) continue;
    const n = Number(value);
    if (Number.isFinite(n)) result[key] = n;
  }
  return result;
}

/** "8:0 rbytes=1 wbytes=2" lines (io.stat, io.max) as device and key=value pairs. */
export function parseNestedKeyed(
  text: string | undefined,
): Array<{ major: number; minor: number; values: Record<string, number> }> {
  const result: Array<{ major: number; minor: number; values: Record<string, number> }> = [];
  for (const line of (text ?? '').split('\n')) {
    const [device, ...pairs] = line.trim().split(/\s+/);
    const match = /^(\d+):(\d+)$/.exec(device ?? '');
    if (match === null) continue;
    const values: Record<string, number> = {};
    for (const pair of pairs) {
      const [key, value] = pair.split('=');
      const n = Number(value);
      if (key !== undefined && key !== '' && Number.isFinite(n)) values[key] = n;
    }
    result.push({ major: Number(match[1]), minor: Number(match[2]), values });
  }
  return result;
}
