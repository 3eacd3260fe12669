/**
 * Flag values in the docker CLI's grammar: memory sizes (go-units RAMInBytes: "1g" is 1073741824),
 * human sizes (FromHumanSize: decimal), Go durations ("1m30s"), CPU counts ("1.5" -> NanoCpus),
 * key=value lists and env files.
 */
import { readFileSync } from 'node:fs';
import { CommandError } from '../errors.js';

const BINARY: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
const DECIMAL: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };

function parseSize(value: string, multipliers: Record<string, number>): number | undefined {
  const match = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(value);
  if (match === null) return undefined;
  const size = Number.parseFloat(match[1] ?? '');
  const unit = match[2]?.toLowerCase();
  return Math.trunc(size * (unit ? (multipliers[unit] ?? 1) : 1));
}

/** units.RAMInBytes: binary multipliers; the error is docker's. */
export function ramInBytes(value: string): number {
  const bytes = parseSize(value, BINARY);
  if (bytes === undefined) throw new CommandError(`invalid size: '${value}'`);
  return bytes;
}

/** units.FromHumanSize: decimal multipliers. */
export function fromHumanSize(value: string): number {
  const bytes = parseSize(value, DECIMAL);
  if (bytes === undefined) throw new CommandError(`invalid size: '${value}'`);
  return bytes;
}

/** docker's MemSwapBytes: "-1" means unlimited, otherwise a RAM size. */
export const memSwapBytes = (value: string): number => (value === '-1' ? -1 : ramInBytes(value));

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  μs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's time.ParseDuration, in nanoseconds. */
export function parseGoDuration(value: string): number {
  const fail = (): never => {
    throw new CommandError(`time: invalid duration ${JSON.stringify(value)}`);
  };
  let rest = value;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') fail();
  let total = 0;
  while (rest !== '') {
    // Escaped: esbuild keeps regex literals as written, and one non-ASCII byte makes V8 hold the
    // whole CLI bundle as a two-byte string (scripts/bundle.mjs checks).
    const match = /^(\d*\.?\d*)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/.exec(rest);
    if (match === null || match[1] === '' || match[1] === '.') {
      if (/^\d*\.?\d*$/.test(rest))
        throw new CommandError(`time: missing unit in duration ${JSON.stringify(value)}`);
      return fail();
    }
    total += Number.parseFloat(match[1] ?? '0') * (DURATION_UNITS[match[2] ?? ''] ?? 0);
    rest = rest.slice(match[0].length);
  }
  return sign * Math.round(total);
}

/** docker's NanoCPUs: a decimal number of CPUs, at most nine decimals. */
export function parseNanoCpus(value: string): number {
  const match = /^(\d*)(?:\.(\d*))?$/.exec(value);
  if (match === null || (match[1] === '' && (match[2] ?? '') === '')) {
    throw new CommandError(`failed to parse ${value} as a rational number`);
  }
  const fraction = match[2] ?? '';
  if (fraction.replace(/0+$/, '').length > 9) throw new CommandError('value is too precise');
  return Number(match[1] || '0') * 1e9 + Number(fraction.padEnd(9, '0').slice(0, 9));
}

/** Problems with a flag value of a checked type, in pflag's wording (undefined when fine). */
export function checkFlagValue(type: string, value: string): string | undefined {
  try {
    if (type === 'bytes') ramInBytes(value);
    else if (type === 'duration') parseGoDuration(value);
    else if (type === 'decimal') parseNanoCpus(value);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Lines of an env or label file: comments and blank lines skipped; `NAME` alone taken from the environment. */
export function readKeyValueFile(path: string, env: NodeJS.ProcessEnv, fromEnv: boolean): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CommandError(
      `open ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`,
    );
  }
  const lines: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const key = eq === -1 ? line : line.slice(0, eq);
    if (key === '' || /\s/.test(key)) {
      throw new CommandError(`variable '${key}' contains whitespaces (${path} line ${index + 1})`);
    }
    if (eq === -1 && fromEnv) {
      const value = env[key];
      if (value !== undefined) lines.push(`${key}=${value}`);
      return;
    }
    lines.push(line);
  });
  return lines;
}

/** docker's ValidateEnv: `NAME` alone takes its value from the environment when set. */
export function expandEnv(value: string, env: NodeJS.ProcessEnv): string {
  if (value.includes('=')) return value;
  const found = env[value];
  return found === undefined ? value : `${value}=${found}`;
}

/** `k=v` pairs into a map; a key without `=` gets an empty value (labels) as docker does. */
export function keyValueMap(values: string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq === -1) map[value] = '';
    else map[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return map;
}

/** `--filter k=v` flags into docker's filters JSON (`{"k":{"v":true}}`), or undefined when none. */
export function filtersJson(values: string[]): string | undefined {
  if (values.length === 0) return undefined;
  const filters: Record<string, Record<string, boolean>> = {};
  for (const value of values) {
    const eq = value.indexOf('=');
    if (eq === -1) throw new CommandError(`bad format of filter (expected name=value)`);
    const key = value.slice(0, eq).trim().toLowerCase();
    const v = value.slice(eq + 1).trim();
    (filters[key] ??= {})[v] = true;
  }
  return sortedJson(filters);
}

/** JSON with object keys sorted, as Go marshals maps. */
export function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) sorted[key] = (v as Record<string, unknown>)[key];
    return sorted;
  });
}

/**
 * docker's GetTimestamp for --since/--until: a Go duration is relative to now ("10m" -> now minus
 * ten minutes, in whole seconds); an RFC 3339 date or time is converted to "seconds.nanoseconds"; a
 * Unix timestamp passes through.
 */
export function getTimestamp(value: string, nowMs = Date.now()): string {
  if (value !== '0') {
    try {
      const ns = parseGoDuration(value);
      return String(Math.floor((nowMs - ns / 1e6) / 1000));
    } catch {
      // not a duration
    }
  }
  const utc = /[zZ+]/.test(value) || (value.match(/-/g) ?? []).length === 3;
  const iso =
    /^(\d{4}-\d{2}-\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(\.\d{1,9})?)?)?)?([zZ]|[+-]\d{2}:\d{2})?$/.exec(
      value,
    );
  if (iso) {
    const [, date, hh = '00', mm = '00', ss = '00', fraction = '', zone] = iso;
    const offset = zone === undefined || /z/i.test(zone) ? 'Z' : zone;
    const millis = Date.parse(`${date}T${hh}:${mm}:${ss}${utc ? offset : 'Z'}`);
    if (!Number.isNaN(millis)) {
      const local = utc ? 0 : new Date(millis).getTimezoneOffset() * 60_000;
      const seconds = Math.floor((millis + local) / 1000);
      const nanos = fraction === '' ? 0 : Number(fraction.slice(1).padEnd(9, '0'));
      return `${seconds}.${String(nanos).padStart(9, '0')}`;
    }
  }
  if (value.includes('-'))
    throw new CommandError(`failed to parse value as time or duration: ${JSON.stringify(value)}`);
  if (!/^\d+(\.\d{1,9})?$/.test(value)) {
    throw new CommandError(`failed to parse value as time or duration: ${JSON.stringify(value)}`);
  }
  return value;
}
