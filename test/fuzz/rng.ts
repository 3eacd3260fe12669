/** The fuzzer's random source: seeded (mulberry32), so a run is reproducible from its seed. */
import { prng } from '../helpers/prng.js';

export class Rng {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = prng(seed);
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next();
  }

  /** An integer in [0, n); 0 when n <= 0. */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor(this.next() * n);
  }

  /** An integer in [low, high]. */
  between(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)] as T;
  }

  /** A length that is usually small and sometimes large: most bugs need a few bytes, some need many. */
  length(max: number): number {
    const roll = this.float();
    const cap = roll < 0.8 ? 8 : roll < 0.95 ? 128 : max;
    return this.between(1, Math.max(1, Math.min(cap, max)));
  }
}
