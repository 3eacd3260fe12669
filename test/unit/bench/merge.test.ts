import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mergeResults, newestFullRun, partialRunsSince, type SavedReport } from '../../../bench/lib/merge.js';
import type { ScenarioResult } from '../../../bench/lib/scenario.js';

const result = (name: string, met: boolean): ScenarioResult => ({
  name,
  goal: `goal of ${name}`,
  met,
  contenders: [],
  ratios: {},
});

test('a partial run replaces its scenarios in the newest full run, marked, keeping the order', () => {
  const base: SavedReport = {
    time: '2026-11-22T09:00:00.000Z',
    quick: false,
    results: [result('a', true), result('b', false), result('c', true)],
  };
  const merged = mergeResults(base, [result('b', true), result('new', true)], '2026-11-22T10:00:00.000Z');
  assert.deepEqual(
    merged.map((r) => [r.name, r.met]),
    [
      ['a', true],
      ['b', true],
      ['c', true],
      ['new', true],
    ],
  );
  assert.match(
    merged[1]?.notes?.at(-1) ?? '',
    /later run \(2026-11-22T10:00:00.000Z\).*\(2026-11-22T09:00:00.000Z\)/,
  );
  assert.equal(merged[0]?.notes, undefined);
});

test('the base is the newest run that was neither quick nor limited to some scenarios', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-merge-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  assert.equal(await newestFullRun(dir), undefined);
  const save = (name: string, report: SavedReport) => writeFile(join(dir, name), JSON.stringify(report));
  await save('2026-11-22T08-00-00-000Z.json', { time: 'full-old', quick: false, results: [] });
  await save('2026-11-22T09-00-00-000Z.json', { time: 'full-new', quick: false, results: [] });
  await save('2026-11-22T10-00-00-000Z.json', { time: 'partial', quick: false, only: ['b'], results: [] });
  assert.equal((await newestFullRun(dir))?.time, 'full-new');
});

test('partial runs after the newest full run are found oldest first; earlier ones and quick ones are not', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-bench-merge-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const save = (name: string, report: SavedReport) => writeFile(join(dir, name), JSON.stringify(report));
  const at = (hour: string): string => `2026-11-22T${hour}:00:00.000Z`;
  await save('2026-11-22T07-00-00-000Z.json', { time: at('07'), quick: false, only: ['a'], results: [] });
  await save('2026-11-22T08-00-00-000Z.json', { time: at('08'), quick: false, results: [] });
  await save('2026-11-22T09-00-00-000Z.json', { time: at('09'), quick: false, only: ['b'], results: [] });
  await save('2026-11-22T09-30-00-000Z.json', { time: at('09'), quick: true, only: ['c'], results: [] });
  await save('2026-11-22T10-00-00-000Z.json', { time: at('10'), quick: false, only: ['c'], results: [] });
  const base = await newestFullRun(dir);
  assert.equal(base?.time, at('08'));
  assert.deepEqual(
    (await partialRunsSince(dir, base as SavedReport)).map((r) => r.only),
    [['b'], ['c']],
  );
});
