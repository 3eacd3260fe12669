/**
 * Docker's `filters` query parameter: JSON mapping each key to its values, either as a map of
 * value -> true (`{"label":{"a=b":true}}`, what current clients send) or as a list
 * (`{"label":["a=b"]}`, older clients). The matching helpers follow Docker's filters.Args.
 */
import { invalidArgument } from '../common/errors.js';

export class Filters {
  private readonly fields: Map<string, Set<string>>;

  constructor(fields: Map<string, Set<string>> = new Map()) {
    this.fields = fields;
  }

  /** Parses the query parameter's value; an empty or absent value means no filters. */
  static parse(text: string | undefined): Filters {
    const fields = new Map<string, Set<string>>();
    if (text === undefined || text.trim() === '') return new Filters(fields);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw invalidArgument(`invalid filters: ${JSON.stringify(text)} is not JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw invalidArgument('invalid filters: expected a JSON object mapping each filter to its values');
    }
    for (const [key, value] of Object.entries(parsed)) {
      const values = new Set<string>();
      if (Array.isArray(value)) {
        for (const item of value) {
          if (typeof item !== 'string')
            throw invalidArgument(`invalid filters: the values of ${key} must be strings`);
          values.add(item);
        }
      } else if (typeof value === 'object' && value !== null) {
        for (const [item, flag] of Object.entries(value)) {
          if (typeof flag !== 'boolean') {
            throw invalidArgument(`invalid filters: ${key}.${item} must be true or false`);
          }
          values.add(item);
        }
      } else {
        throw invalidArgument(`invalid filters: the value of ${key} must be a list or a map of strings`);
      }
      fields.set(key, values);
    }
    return new Filters(fields);
  }

  /** Rejects keys outside `accepted` with Docker's message ("invalid filter 'foo'"). */
  validate(accepted: Iterable<string>): this {
    const allowed = new Set(accepted);
    for (const key of this.fields.keys()) {
      if (!allowed.has(key)) throw invalidArgument(`invalid filter '${key}'`);
    }
    return this;
  }

  keys(): string[] {
    return [...this.fields.keys()];
  }

  get size(): number {
    return this.fields.size;
  }

  contains(key: string): boolean {
    return this.fields.has(key);
  }

  get(key: string): string[] {
    return [...(this.fields.get(key) ?? [])];
  }

  /** True when the key is absent or `source` is one of its values. */
  exactMatch(key: string, source: string): boolean {
    const values = this.fields.get(key);
    return values === undefined || values.size === 0 || values.has(source);
  }

  /** Like exactMatch, but a value may also be a prefix of `source` (ids given short). */
  fuzzyMatch(key: string, source: string): boolean {
    const values = this.fields.get(key);
    if (values === undefined || values.size === 0 || values.has(source)) return true;
    for (const value of values) if (source.startsWith(value)) return true;
    return false;
  }

  /**
   * Label-style matching: every value ("name" or "name=value") must be satisfied by `attributes`.
   * True when the key is absent.
   */
  matchKVList(key: string, attributes: Record<string, string> | undefined): boolean {
    const values = this.fields.get(key);
    if (values === undefined || values.size === 0) return true;
    if (attributes === undefined) return false;
    for (const value of values) {
      const eq = value.indexOf('=');
      const name = eq < 0 ? value : value.slice(0, eq);
      if (!Object.hasOwn(attributes, name)) return false;
      if (eq >= 0 && attributes[name] !== value.slice(eq + 1)) return false;
    }
    return true;
  }

  /** A boolean filter such as `dangling`: absent -> the default; "true"/"1" or "false"/"0" otherwise. */
  boolOrDefault(key: string, fallback: boolean): boolean {
    const values = this.fields.get(key);
    if (values === undefined) return fallback;
    const isTrue = values.has('true') || values.has('1');
    const isFalse = values.has('false') || values.has('0');
    if (isTrue === isFalse) throw invalidArgument(`invalid filter '${key}=${[...values].join(',')}'`);
    return isTrue;
  }
}
