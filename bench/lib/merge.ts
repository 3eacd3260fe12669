/**
 * A run of some scenarios only (`npm run bench -- concurrent`) updates the report without
 * discarding the others: latest.md shows the newest full run's results with every scenario
 * measured again since (by this run or an earlier partial one) replaced by its newest
 * measurement, each marked with the run it comes from.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ScenarioResult } from './scenario.js';

export interface SavedReport {
  time: string;
  quick: boolean;
  /** The scenarios this run was limited to; absent for a full run. */
  only?: string[];
  results: ScenarioResult[];
}

/** The newest full (not --quick, not limited) run saved in `dir`, if any. */
export async function newestFullRun(dir: string): Promise<SavedReport | undefined> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
  for (const name of names.reverse()) {
    const report = JSON.parse(await readFile(join(dir, name), 'utf8')) as SavedReport;
    if (!report.quick && report.only === undefined) return report;
  }
  return undefined;
}

/** The partial runs (limited to some scenarios, not quick) saved in `dir` after `base`, oldest first. */
export async function partialRunsSince(dir: string, base: SavedReport): Promise<SavedReport[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
  const runs: SavedReport[] = [];
  for (const name of names) {
    const report = JSON.parse(await readFile(join(dir, name), 'utf8')) as SavedReport;
    if (!report.quick && report.only !== undefined && report.time > base.time) runs.push(report);
  }
  return runs;
}

/** `base`'s results with those of `fresh` put in their place (or appended), marked with `time`. */
export function mergeResults(base: SavedReport, fresh: ScenarioResult[], time: string): ScenarioResult[] {
  const marked = fresh.map((result) => ({
    ...result,
    notes: [
      ...(result.notes ?? []),
      `Measured by a later run (${time}) than the rest of this report (${base.time}).`,
    ],
  }));
  const byName = new Map(marked.map((result) => [result.name, result]));
  const merged = base.results.map((result) => byName.get(result.name) ?? result);
  for (const result of marked) if (!base.results.some((r) => r.name === result.name)) merged.push(result);
  return merged;
}
