/** Measurement helpers: alternating runs so drift hits every contender alike, medians, ratios. */
import { performance } from 'node:perf_hooks';

export interface Contender {
  name: string;
  /** One run of the work being measured. */
  run: () => Promise<void>;
}

export interface Samples {
  name: string;
  /** Milliseconds per run, in run order. */
  ms: number[];
}

export interface Summary {
  name: string;
  runs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

export function summarize(samples: Samples): Summary {
  return {
    name: samples.name,
    runs: samples.ms.length,
    medianMs: median(samples.ms),
    minMs: Math.min(...samples.ms),
    maxMs: Math.max(...samples.ms),
  };
}

/** Warm every contender up, then run them A B C A B C ... `rounds` times. */
export async function alternate(contenders: Contender[], rounds: number, warmup: number): Promise<Samples[]> {
  for (let i = 0; i < warmup; i++) for (const contender of contenders) await contender.run();
  const samples = contenders.map((c) => ({ name: c.name, ms: [] as number[] }));
  for (let round = 0; round < rounds; round++) {
    for (const [index, contender] of contenders.entries()) {
      const start = performance.now();
      await contender.run();
      samples[index]?.ms.push(performance.now() - start);
    }
  }
  return samples;
}

/** Ratio of medians of paired runs: for each round, a/b; then the median of those ratios. */
export function pairedRatio(a: Samples, b: Samples): number {
  const ratios = a.ms.map((value, i) => value / (b.ms[i] ?? NaN)).filter(Number.isFinite);
  return median(ratios);
}

/** Milliseconds one call takes. */
export async function timeMs(work: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

/** Median of the per-round differences a - b (e.g. bridge minus none). */
export function pairedDifference(a: Samples, b: Samples): number {
  return median(a.ms.map((value, i) => value - (b.ms[i] ?? NaN)).filter(Number.isFinite));
}
