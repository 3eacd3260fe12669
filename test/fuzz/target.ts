/**
 * What a fuzz target is: one parser (or a short chain of them) fed one input at a time. Its
 * contract is "a result, or a rejection the target allows" (a BerthError unless it says
 * otherwise); anything else it throws, an invariant it states that does not hold, a hang or a
 * memory blow-up is a finding.
 */
import { BerthError } from '../../src/common/errors.js';
import type { Rng } from './rng.js';

export interface FuzzTarget {
  name: string;
  /** One line for `--list`. */
  description: string;
  /** Tokens the mutator splices in: keywords, separators, field names, magic numbers. */
  dictionary: readonly string[];
  /** Inputs are cut to this many bytes (default 16 KiB). */
  maxLength?: number;
  /** Structure-aware mutation; undefined when it does not apply to this input (byte mutations run instead). */
  mutate?(input: Buffer, rng: Rng): Buffer | undefined;
  /** One input through the target; returns (or resolves) for a result, throws (or rejects) for a rejection. */
  run(input: Buffer): unknown;
  /** The rejections the contract allows; default: a BerthError. */
  isExpected?(err: unknown): boolean;
}

/** A property the target states about its results (a round trip, a bound) that did not hold. */
export class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}

export function invariant(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new InvariantError(message());
}

export const isBerthError = (err: unknown): boolean => err instanceof BerthError;

/** True when `target` accepts `err` as a rejection; invariant failures never are. */
export function isExpectedError(target: FuzzTarget, err: unknown): boolean {
  if (err instanceof InvariantError) return false;
  return (target.isExpected ?? isBerthError)(err);
}

/** Stable JSON with sorted keys, for comparing round-tripped documents. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}
