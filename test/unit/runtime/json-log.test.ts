/**
 * The json-file log reader against synthetic logs: order across rotated files, tail, since/until
 * with nanosecond times, and following appends and rotations until told to stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseLogTime,
  readJsonLog,
  type LogEntry,
  type ReadJsonLogOptions,
} from '../../../src/runtime/json-log.js';

async function logDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-json-log-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Entry n: `line n\n` on stdout (odd n on stderr), at 2024-05-06T07:08:09.<n as nanoseconds>Z. */
const time = (n: number): string => `2024-05-06T07:08:09.${String(n).padStart(9, '0').replace(/0+$/, '')}Z`;
const line = (n: number): string =>
  JSON.stringify({ log: `line ${n}\n`, stream: n % 2 ? 'stderr' : 'stdout', time: time(n) }) + '\n';
const lines = (from: number, to: number): string =>
  Array.from({ length: to - from + 1 }, (_, i) => line(from + i)).join('');
const BASE_NS = BigInt(Date.parse('2024-05-06T07:08:09Z')) * 1_000_000n;

/** Rotated files as the shim leaves them: path.2 (oldest), path.1, path. */
async function rotatedLog(dir: string): Promise<string> {
  const path = join(dir, 'c-json.log');
  await writeFile(`${path}.2`, lines(1, 3));
  await writeFile(`${path}.1`, lines(4, 6) + 'not json\n');
  await writeFile(path, lines(7, 9) + line(10).slice(0, 20)); // 10 is still being written
  return path;
}

async function read(path: string, options: ReadJsonLogOptions = {}): Promise<number[]> {
  const seen: number[] = [];
  for await (const entry of readJsonLog(path, options)) seen.push(Number(entry.log.slice(5)));
  return seen;
}

test('entries come oldest first across rotated files, with parsed times', async (t) => {
  const path = await rotatedLog(await logDir(t));
  const entries: LogEntry[] = [];
  for await (const entry of readJsonLog(path)) entries.push(entry);
  assert.deepEqual(
    entries.map((e) => e.log),
    [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => `line ${n}\n`),
    'the unparseable line and the unfinished one are left out',
  );
  assert.deepEqual(entries[0], { stream: 'stderr', log: 'line 1\n', time: time(1), timeNs: BASE_NS + 1n });
  assert.equal(entries[8]?.timeNs, BASE_NS + 9n);
  assert.deepEqual(await read(join(path, '..', 'missing.log')), [], 'a missing log is empty');
});

test('tail counts complete lines back across files', async (t) => {
  const path = await rotatedLog(await logDir(t));
  assert.deepEqual(await read(path, { tail: 2 }), [8, 9]);
  assert.deepEqual(await read(path, { tail: 3 }), [7, 8, 9]);
  // The unparseable line counts as a line, as Docker's tail counts lines.
  assert.deepEqual(await read(path, { tail: 5 }), [6, 7, 8, 9]);
  assert.deepEqual(await read(path, { tail: 8 }), [3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(await read(path, { tail: 100 }), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(await read(path, { tail: 0 }), []);
});

test('since and until are inclusive, to the nanosecond, and apply after tail', async (t) => {
  const path = await rotatedLog(await logDir(t));
  assert.deepEqual(await read(path, { since: BASE_NS + 4n, until: BASE_NS + 7n }), [4, 5, 6, 7]);
  assert.deepEqual(await read(path, { since: BASE_NS + 8n }), [8, 9]);
  assert.deepEqual(await read(path, { until: BASE_NS + 2n }), [1, 2]);
  assert.deepEqual(await read(path, { tail: 3, since: BASE_NS + 2n }), [7, 8, 9]);
  assert.deepEqual(await read(path, { tail: 3, until: BASE_NS + 7n }), [7]);
  assert.deepEqual(await read(path, { since: new Date('2024-05-06T07:08:10Z') }), []);
  assert.deepEqual(
    await read(path, { until: new Date('2024-05-06T07:08:09Z') }),
    [],
    'a Date is whole milliseconds',
  );
});

test('parseLogTime reads RFC 3339 with up to nine fraction digits and offsets', () => {
  assert.equal(parseLogTime('1970-01-01T00:00:01Z'), 1_000_000_000n);
  assert.equal(parseLogTime('1970-01-01T00:00:01.5Z'), 1_500_000_000n);
  assert.equal(parseLogTime('1970-01-01T00:00:00.000000001Z'), 1n);
  assert.equal(parseLogTime('1970-01-01T01:00:00+01:00'), 0n);
  assert.equal(parseLogTime('1970-01-01 00:00:00Z'), undefined);
  assert.equal(parseLogTime('1970-01-01T00:00:00.0000000001Z'), undefined);
});

/** Pull entries one by one from a following reader. */
function follower(path: string, options: ReadJsonLogOptions): { next: () => Promise<number | undefined> } {
  const iterator = readJsonLog(path, { follow: true, ...options })[Symbol.asyncIterator]();
  return {
    next: async () => {
      const result = await iterator.next();
      return result.done ? undefined : Number(result.value.log.slice(5));
    },
  };
}

test('following: appends, a torn line completed later, rotations, then the end once exited', async (t) => {
  const dir = await logDir(t);
  const path = join(dir, 'c-json.log');
  await writeFile(path, lines(1, 2));
  let exit = (): void => undefined;
  const exited = new Promise<void>((resolve) => (exit = resolve));
  const reader = follower(path, { exited });
  assert.equal(await reader.next(), 1);
  assert.equal(await reader.next(), 2);

  const pending = reader.next();
  await appendFile(path, line(3).slice(0, 10));
  await appendFile(path, line(3).slice(10));
  assert.equal(await pending, 3);

  // One rotation, as the shim does it: rename, then a new file.
  await appendFile(path, line(4));
  await rename(path, `${path}.1`);
  await writeFile(path, line(5));
  assert.equal(await reader.next(), 4);
  assert.equal(await reader.next(), 5);

  // Two rotations while the reader waits: its file is path.2 now, path.1 and path are newer.
  await appendFile(path, line(6));
  await rename(`${path}.1`, `${path}.2`);
  await rename(path, `${path}.1`);
  await writeFile(path, line(7));
  await rename(`${path}.1`, `${path}.2`);
  await rename(path, `${path}.1`);
  await writeFile(path, line(8));
  assert.deepEqual([await reader.next(), await reader.next(), await reader.next()], [6, 7, 8]);

  await appendFile(path, line(9));
  exit();
  assert.equal(await reader.next(), 9, 'what was written before the exit is read');
  assert.equal(await reader.next(), undefined, 'then the reader ends');
});

test('following: tail, then new entries; a log that does not exist yet is waited for', async (t) => {
  const dir = await logDir(t);
  const path = join(dir, 'c-json.log');
  await writeFile(path, lines(1, 3));
  const controller = new AbortController();
  const reader = follower(path, { tail: 1, signal: controller.signal });
  assert.equal(await reader.next(), 3);
  const pending = reader.next();
  await appendFile(path, line(4));
  assert.equal(await pending, 4);

  const later = join(dir, 'later-json.log');
  const waiting = follower(later, { signal: controller.signal });
  const first = waiting.next();
  await writeFile(later, line(1));
  assert.equal(await first, 1);

  const stopped = Promise.all([reader.next(), waiting.next()]);
  controller.abort();
  assert.deepEqual(await stopped, [undefined, undefined], 'aborting ends both quietly');
});

test('following with until: stops at the first later entry, and at the end once until has passed', async (t) => {
  const dir = await logDir(t);
  const path = join(dir, 'c-json.log');
  await writeFile(path, lines(1, 4));
  const reader = follower(path, { until: BASE_NS + 3n });
  assert.deepEqual([await reader.next(), await reader.next(), await reader.next()], [1, 2, 3]);
  assert.equal(await reader.next(), undefined);
  // until (2024) is long past: no waiting for more.
  const passed = follower(path, { until: BASE_NS + 10n });
  assert.deepEqual(
    [await passed.next(), await passed.next(), await passed.next(), await passed.next()],
    [1, 2, 3, 4],
  );
  assert.equal(await passed.next(), undefined);
});
