/**
 * The coverage-guided loop: run the seeds, then pick a corpus entry, mutate it (structure-aware
 * when the target can, bytes otherwise), run it, and keep it when it covers new code. The first
 * input that breaks the target's contract ends the run as a finding, minimised (with `keepGoing`,
 * the run goes on and collects one finding per distinct signature).
 *
 * Hangs and memory blow-ups cannot be caught from inside the thread that runs the target: the
 * worker that runs this loop publishes each input before running it (`onInput`) and the
 * supervisor (supervisor.ts) reports the last one when the worker stops answering or dies.
 */
import { createHash } from 'node:crypto';
import type { CoverageTracker } from './coverage.js';
import { mutateBytes, type MutationContext } from './mutate.js';
import { Rng } from './rng.js';
import { isExpectedError, type FuzzTarget } from './target.js';

export const DEFAULT_MAX_LENGTH = 16 * 1024;
/** Inputs run between two coverage takes. */
const BATCH = 64;

export type FindingKind = 'crash' | 'invariant' | 'hang' | 'oom';

export interface Finding {
  kind: FindingKind;
  input: Buffer;
  /** The error's name and message, or what the watchdog saw. */
  message: string;
  stack?: string;
}

export interface FuzzOptions {
  /** Seed inputs (the committed corpus and earlier runs' finds). */
  seeds: Buffer[];
  seed: number;
  /** Stop when Date.now() passes this. */
  deadline: number;
  /** Stop after this many executions (seeds included). */
  maxRuns?: number;
  /** Coverage feedback; without it every mutation is thrown away (a plain random fuzzer). */
  coverage?: CoverageTracker;
  /** Called with every input just before it runs (the watchdog's view). */
  onInput?: (input: Buffer) => void;
  /** Called when an input reaches new coverage (to keep it on disk). */
  onNewInput?: (input: Buffer) => void;
  /** Collect findings (one per signature) until the deadline instead of stopping at the first. */
  keepGoing?: boolean;
  /** Called with each finding, minimised, as it is found. */
  onFinding?: (finding: Finding) => void;
  /** Called every `statsEvery` ms with the progress so far. */
  onStats?: (stats: FuzzStats) => void;
  statsEvery?: number;
}

export interface FuzzStats {
  runs: number;
  corpus: number;
  features: number;
  elapsedMs: number;
}

export interface FuzzResult extends FuzzStats {
  findings: Finding[];
}

/** Runs one input; undefined when the target kept its contract. */
export async function execute(target: FuzzTarget, input: Buffer): Promise<Finding | undefined> {
  try {
    const result = target.run(input);
    if (result instanceof Promise) await result;
    return undefined;
  } catch (err) {
    return classify(target, input, err);
  }
}

export function classify(target: FuzzTarget, input: Buffer, err: unknown): Finding | undefined {
  if (isExpectedError(target, err)) return undefined;
  const error = err instanceof Error ? err : new Error(`a non-Error was thrown: ${String(err)}`);
  return {
    kind: error.name === 'InvariantError' ? 'invariant' : 'crash',
    input,
    message: `${error.name}: ${error.message}`,
    ...(error.stack !== undefined ? { stack: error.stack } : {}),
  };
}

/** What makes two findings the same bug: kind, error name and the first frame in berth's code. */
export function signature(finding: Finding): string {
  const frame = finding.stack
    ?.split('\n')
    .slice(1)
    .find((line) => line.includes('/src/') || line.includes('/test/fuzz/targets/'));
  return `${finding.kind} ${finding.message.split(':')[0] ?? ''} ${frame?.trim() ?? ''}`;
}

/** A shorter input with the same signature, by deleting ranges (halving down to single bytes). */
export async function minimize(
  target: FuzzTarget,
  finding: Finding,
  deadline: number,
  onInput?: (input: Buffer) => void,
): Promise<Finding> {
  const wanted = signature(finding);
  let best = finding;
  for (let chunk = Math.max(1, best.input.length >> 1); chunk >= 1; chunk >>= 1) {
    for (let at = 0; at < best.input.length && Date.now() < deadline;) {
      const candidate = Buffer.concat([best.input.subarray(0, at), best.input.subarray(at + chunk)]);
      onInput?.(candidate);
      const again = await execute(target, candidate);
      if (again !== undefined && signature(again) === wanted) best = again;
      else at += chunk;
    }
  }
  return best;
}

export const inputName = (input: Buffer): string =>
  createHash('sha1').update(input).digest('hex').slice(0, 16);

export async function fuzz(target: FuzzTarget, options: FuzzOptions): Promise<FuzzResult> {
  const rng = new Rng(options.seed);
  const maxLength = target.maxLength ?? DEFAULT_MAX_LENGTH;
  const corpus: Buffer[] = [];
  const names = new Set<string>();
  const context: MutationContext = {
    rng,
    dictionary: target.dictionary.map((token) => Buffer.from(token, 'utf8')),
    corpus,
    maxLength,
  };
  const started = Date.now();
  let runs = 0;
  let lastStats = started;
  const stats = (): FuzzStats => ({
    runs,
    corpus: corpus.length,
    features: options.coverage?.features ?? 0,
    elapsedMs: Date.now() - started,
  });

  /** Runs one input; returns a finding, if it is one. */
  const run = async (input: Buffer): Promise<Finding | undefined> => {
    options.onInput?.(input);
    runs++;
    return execute(target, input);
  };
  const keep = (input: Buffer, save: boolean): void => {
    const name = inputName(input);
    if (names.has(name)) return;
    names.add(name);
    corpus.push(input);
    if (save) options.onNewInput?.(input);
  };
  // A coverage take costs milliseconds (V8 walks every function of every script), far more than
  // most inputs. So inputs run in batches with one take: binary block coverage of a batch is the
  // union of its inputs' coverage. A batch that reached something new is split in halves, run
  // again, until the inputs that reached it are found and kept.
  const attribute = async (inputs: Buffer[]): Promise<void> => {
    const coverage = options.coverage;
    if (coverage === undefined) return;
    if (inputs.length === 1) {
      const input = inputs[0] as Buffer;
      await run(input);
      if (coverage.collect() > 0) keep(input, true);
      return;
    }
    const half = inputs.length >> 1;
    for (const part of [inputs.slice(0, half), inputs.slice(half)]) {
      for (const input of part) await run(input);
      if (coverage.collect(false) > 0) await attribute(part);
    }
  };
  const batch: Buffer[] = [];
  const settleBatch = async (): Promise<void> => {
    const inputs = batch.splice(0);
    if (inputs.length > 0 && (options.coverage?.collect(false) ?? 0) > 0) await attribute(inputs);
  };
  const findings: Finding[] = [];
  const signatures = new Set<string>();
  /** Records a finding; true when the run must stop. */
  const report = async (finding: Finding): Promise<boolean> => {
    // The batch so far is settled first: minimising runs other inputs, whose coverage is dropped.
    await settleBatch();
    if (!signatures.has(signature(finding))) {
      signatures.add(signature(finding));
      // Minimising gets a few seconds of its own, so a finding at the deadline is still cut down.
      const minimized = await minimize(target, finding, Date.now() + 5000, options.onInput);
      findings.push(minimized);
      options.onFinding?.(minimized);
    }
    options.coverage?.reset();
    return options.keepGoing !== true;
  };
  const done = (): FuzzResult => ({ ...stats(), findings });
  const outOfBudget = (): boolean =>
    Date.now() >= options.deadline || (options.maxRuns !== undefined && runs >= options.maxRuns);

  // Mutators and bookkeeping never call berth's code, so what a take reports is the inputs' doing.
  options.coverage?.reset();
  for (const seed of options.seeds) {
    const input = seed.length > maxLength ? seed.subarray(0, maxLength) : seed;
    const finding = await run(input);
    if (finding) {
      if (await report(finding)) return done();
      continue;
    }
    options.coverage?.collect();
    keep(input, false);
  }
  if (corpus.length === 0) keep(Buffer.alloc(0), false);

  while (!outOfBudget()) {
    // Newer entries are the frontier: half the picks go to the last eight.
    const base = rng.chance(0.5)
      ? (corpus[corpus.length - 1 - rng.int(8)] ?? rng.pick(corpus))
      : rng.pick(corpus);
    const structured = target.mutate !== undefined && rng.chance(0.5) ? target.mutate(base, rng) : undefined;
    let input = structured ?? mutateBytes(base, context);
    if (input.length > maxLength) input = input.subarray(0, maxLength);
    const finding = await run(input);
    if (finding) {
      if (await report(finding)) return done();
      continue;
    }
    batch.push(input);
    if (batch.length >= BATCH) await settleBatch();
    if (options.onStats && Date.now() - lastStats >= (options.statsEvery ?? 10_000)) {
      lastStats = Date.now();
      options.onStats(stats());
    }
  }
  await settleBatch();
  return done();
}
