/**
 * The classic builder's image history and Env bookkeeping, byte for byte as dockerd writes them:
 * `docker history` output and cache keys of images built elsewhere depend on these strings.
 */
import type { ContainerConfig, HealthConfig } from '../oci/image-spec.js';

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** created_by of a metadata step: the current shell, "#(nop) " and the text as separate words. */
export function nopCreatedBy(shell: string[] | undefined, text: string): string {
  return [...(shell ?? DEFAULT_SHELL), '#(nop) ', text].join(' ');
}

/** created_by of WORKDIR, COPY and ADD: dockerd joins "#(nop) " and the text into one word. */
export function nopStringCreatedBy(shell: string[] | undefined, text: string): string {
  return [...(shell ?? DEFAULT_SHELL), `#(nop) ${text}`].join(' ');
}

/**
 * The text of a COPY/ADD step. dockerd names neither --from nor a space after --chown
 * ("COPY --chown=1:1dir:<hash> in /d "); --chmod, which it refuses, is ours.
 */
export function copyHistoryText(
  keyword: string,
  flags: { chown?: string; chmod?: string },
  source: string,
  dest: string,
): string {
  const chown = flags.chown === undefined ? '' : `--chown=${flags.chown}`;
  const chmod = flags.chmod === undefined ? '' : `--chmod=${flags.chmod} `;
  return `${keyword} ${chown}${chmod}${source} in ${dest} `;
}

/** EXPOSE as dockerd records it: the ports sorted as strings. */
export function exposeHistoryText(ports: string[]): string {
  return `EXPOSE ${[...ports].sort().join(' ')}`;
}

/** SHELL as dockerd records it: Go's %v of a string slice, unquoted. */
export function shellHistoryText(shell: string[]): string {
  return `SHELL [${shell.join(' ')}]`;
}

/**
 * HEALTHCHECK as dockerd records it: Go's `fmt.Sprintf("HEALTHCHECK %q", config)` of a pointer to
 * its HealthConfig {Test, Interval, Timeout, StartPeriod, Retries}, so durations are quoted
 * Duration strings and Retries a quoted rune: `HEALTHCHECK &{["CMD" "true"] "30s" "5s" "0s" '\x03'}`.
 * Docker 25 added StartInterval after StartPeriod; it is printed only when set, because 20.10,
 * whose text we match, has no such field (and a Dockerfile that sets it cannot build there).
 */
export function healthcheckHistoryText(health: HealthConfig & { StartInterval?: number }): string {
  const durations = [health.Interval, health.Timeout, health.StartPeriod];
  if (health.StartInterval !== undefined && health.StartInterval !== 0) durations.push(health.StartInterval);
  const fields = [
    `[${(health.Test ?? []).map(goQuote).join(' ')}]`,
    ...durations.map((ns) => goQuote(goDuration(ns ?? 0))),
    goQuoteRune(health.Retries ?? 0),
  ];
  return `HEALTHCHECK &{${fields.join(' ')}}`;
}

/** Go's time.Duration.String() of `ns` nanoseconds: "1h2m3.5s", "1.5ms", "0s". */
export function goDuration(ns: number): string {
  let u = BigInt(Math.round(Math.abs(ns)));
  const sign = ns < 0 ? '-' : '';
  if (u === 0n) return '0s';
  // The fraction of u / 10^prec without trailing zeros, then the integer part.
  const split = (value: bigint, prec: number): [string, bigint] => {
    const scale = 10n ** BigInt(prec);
    const frac = (value % scale).toString().padStart(prec, '0').replace(/0+$/, '');
    return [frac === '' ? '' : `.${frac}`, value / scale];
  };
  if (u < 1_000_000_000n) {
    const [prec, unit] = u < 1000n ? [0, 'ns'] : u < 1_000_000n ? [3, 'µs'] : [6, 'ms'];
    const [frac, whole] = split(u, prec);
    return `${sign}${whole}${frac}${unit}`;
  }
  const [frac, seconds] = split(u, 9);
  u = seconds;
  let text = `${u % 60n}${frac}s`;
  u /= 60n;
  if (u > 0n) {
    text = `${u % 60n}m${text}`;
    u /= 60n;
    if (u > 0n) text = `${u}h${text}`;
  }
  return `${sign}${text}`;
}

/** unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** One rune as Go's strconv quoting writes it inside `quote`. */
function goEscape(code: number, quote: string): string {
  const char = String.fromCodePoint(code);
  if (char === quote || char === '\\') return `\\${char}`;
  if (PRINTABLE.test(char)) return char;
  const named: Record<number, string> = { 7: 'a', 8: 'b', 12: 'f', 10: 'n', 13: 'r', 9: 't', 11: 'v' };
  if (named[code] !== undefined) return `\\${named[code]}`;
  const hex = code.toString(16);
  if (code < 0x20 || code === 0x7f) return `\\x${hex.padStart(2, '0')}`;
  return code < 0x10000 ? `\\u${hex.padStart(4, '0')}` : `\\U${hex.padStart(8, '0')}`;
}

/** A code point Go accepts; surrogates (lone in a JS string) and larger values become U+FFFD. */
const validRune = (code: number): number =>
  code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff) ? 0xfffd : code;

/** Go's strconv.Quote (%q of a string). */
export function goQuote(text: string): string {
  let out = '"';
  for (const char of text) out += goEscape(validRune(char.codePointAt(0) as number), '"');
  return `${out}"`;
}

/** Go's %q of an integer: a quoted rune literal ('\x03', 'A'). */
export function goQuoteRune(value: number): string {
  return `'${goEscape(validRune(value < 0 ? 0xfffd : value), "'")}'`;
}

/** Set KEY=value in Env: an existing entry is replaced where it stands, a new one appended. */
export function setEnv(config: ContainerConfig, key: string, value: string): void {
  const env = [...(config.Env ?? [])];
  const index = env.findIndex((entry) => entry === key || entry.startsWith(`${key}=`));
  if (index === -1) env.push(`${key}=${value}`);
  else env[index] = `${key}=${value}`;
  config.Env = env;
}
