/** Query-string helpers with Docker's rules for booleans and integers. */
import { invalidArgument } from '../common/errors.js';
import { Filters } from './filters.js';

/** Values Docker's httputils.BoolValue reads as false; anything else, once present, is true. */
const FALSE_VALUES = new Set(['', '0', 'no', 'false', 'none']);

export class Query {
  readonly params: URLSearchParams;

  constructor(params: URLSearchParams) {
    this.params = params;
  }

  has(name: string): boolean {
    return this.params.has(name);
  }

  /** The first value, like Go's FormValue. */
  string(name: string): string | undefined {
    return this.params.get(name) ?? undefined;
  }

  /** Every value of a repeated parameter (`?platform=a&platform=b`). */
  strings(name: string): string[] {
    return this.params.getAll(name);
  }

  /** Docker's lenient boolean: `1`, `true`, `True`, `yes` are true; `0`, `false`, `no`, `none`, `` are false. */
  bool(name: string, fallback = false): boolean {
    const value = this.params.get(name);
    if (value === null) return fallback;
    return !FALSE_VALUES.has(value.trim().toLowerCase());
  }

  /** A base-10 integer; absent (or empty) gives `fallback`, anything else that is not an integer is a 400. */
  int(name: string): number | undefined;
  int(name: string, fallback: number): number;
  int(name: string, fallback?: number): number | undefined {
    const value = this.params.get(name);
    if (value === null || value === '') return fallback;
    if (!/^[+-]?\d+$/.test(value))
      throw invalidArgument(`invalid value for ${name}: ${JSON.stringify(value)} is not an integer`);
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed))
      throw invalidArgument(`invalid value for ${name}: ${value} is out of range`);
    return parsed;
  }

  /** The `filters` parameter; with `accepted`, unknown filter keys are a 400. */
  filters(accepted?: Iterable<string>): Filters {
    const filters = Filters.parse(this.params.get('filters') ?? undefined);
    return accepted === undefined ? filters : filters.validate(accepted);
  }
}
