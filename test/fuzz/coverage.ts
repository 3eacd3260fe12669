/**
 * Coverage feedback from V8's precise block coverage (node:inspector, Profiler.takePreciseCoverage
 * with callCount false and detailed true), restricted to the scripts that matter (berth's own
 * dist/src modules).
 *
 * Each take reports, for the functions that ran since the previous take, their source ranges with
 * a count; V8 drops a block whose count equals its parent's, so a branch that ran is usually
 * invisible and only the ones that did not run show up (with count 0). We therefore remember
 * every range V8 ever reported (`known`) and count a known range as covered in a take when the
 * innermost reported range enclosing it has a count above 0. A feature is one such covered range;
 * an input is interesting when it covers a feature no earlier input covered.
 */
import { Session } from 'node:inspector';

interface Range {
  startOffset: number;
  endOffset: number;
  count: number;
}

interface ScriptCoverage {
  url: string;
  functions: Array<{ ranges: Range[] }>;
}

interface ScriptState {
  index: number;
  /** Every range ever reported, by "start:end". */
  known: Map<string, [number, number]>;
  /** `known` ordered by start, then outermost first; rebuilt when it grows. */
  sorted: Array<[number, number]> | undefined;
}

/** Start ascending, then end descending: an enclosing range comes before the ranges it holds. */
const byNesting = (a: readonly number[], b: readonly number[]): number =>
  (a[0] as number) - (b[0] as number) || (b[1] as number) - (a[1] as number);

export class CoverageTracker {
  private readonly session = new Session();
  private readonly scripts = new Map<string, ScriptState>();
  private readonly covered = new Set<string>();
  private started = false;

  /** `include` picks the scripts whose coverage counts, by URL. */
  constructor(private readonly include: (url: string) => boolean) {}

  /** The inspector answers an in-thread session synchronously; this makes that explicit. */
  private post(method: string, params?: object): unknown {
    let result: unknown;
    let failure: Error | null = null;
    let answered = false;
    this.session.post(method, params, (err, value) => {
      failure = err;
      result = value;
      answered = true;
    });
    if (!answered) throw new Error(`inspector did not answer ${method} synchronously`);
    if (failure !== null) throw failure;
    return result;
  }

  start(): void {
    this.session.connect();
    this.post('Profiler.enable');
    this.post('Profiler.startPreciseCoverage', { callCount: false, detailed: true });
    this.started = true;
  }

  stop(): void {
    if (!this.started) return;
    this.post('Profiler.stopPreciseCoverage');
    this.post('Profiler.disable');
    this.session.disconnect();
    this.started = false;
  }

  /** Distinct covered ranges so far. */
  get features(): number {
    return this.covered.size;
  }

  /** Forget what ran since the last take (the fuzzer's own work between two inputs). */
  reset(): void {
    this.take();
  }

  private take(): ScriptCoverage[] {
    const answer = this.post('Profiler.takePreciseCoverage') as { result: ScriptCoverage[] };
    return answer.result.filter((script) => this.include(script.url));
  }

  /**
   * The coverage of what ran since the last take: how many features are new. With `commit`
   * false the new features are counted but not remembered (to test an input without keeping it).
   */
  collect(commit = true): number {
    let fresh = 0;
    const seen = new Set<string>();
    for (const script of this.take()) {
      const state = this.state(script.url);
      const reported: Range[] = [];
      for (const fn of script.functions) {
        for (const range of fn.ranges) {
          reported.push(range);
          const key = `${range.startOffset}:${range.endOffset}`;
          if (!state.known.has(key)) {
            state.known.set(key, [range.startOffset, range.endOffset]);
            state.sorted = undefined;
          }
        }
      }
      for (const [start, end] of this.coveredRanges(state, reported)) {
        const feature = `${state.index}:${start}:${end}`;
        if (this.covered.has(feature) || seen.has(feature)) continue;
        seen.add(feature);
        fresh++;
      }
    }
    if (commit) for (const feature of seen) this.covered.add(feature);
    return fresh;
  }

  private state(url: string): ScriptState {
    let state = this.scripts.get(url);
    if (state === undefined) {
      state = { index: this.scripts.size, known: new Map(), sorted: undefined };
      this.scripts.set(url, state);
    }
    return state;
  }

  /** The known ranges whose innermost enclosing reported range ran. Ranges nest (V8 guarantees it). */
  private *coveredRanges(state: ScriptState, reported: Range[]): Generator<[number, number]> {
    state.sorted ??= [...state.known.values()].sort(byNesting);
    const ranges = reported
      .map((r): [number, number, number] => [r.startOffset, r.endOffset, r.count])
      .sort(byNesting);
    // The chain of reported ranges that start at or before the current known range, outermost first.
    const open: Array<[number, number, number]> = [];
    let next = 0;
    for (const known of state.sorted) {
      const [start, end] = known;
      while (next < ranges.length && (ranges[next] as [number, number, number])[0] <= start) {
        const range = ranges[next++] as [number, number, number];
        while (open.length > 0 && (open[open.length - 1] as [number, number, number])[1] <= range[0])
          open.pop();
        open.push(range);
      }
      while (open.length > 0 && (open[open.length - 1] as [number, number, number])[1] <= start) open.pop();
      for (let i = open.length - 1; i >= 0; i--) {
        const range = open[i] as [number, number, number];
        if (range[1] >= end) {
          if (range[2] > 0) yield known;
          break;
        }
      }
    }
  }
}
