/**
 * Sizes and durations worded like Docker's go-units: "4.26MB" (decimal, significant digits as Go's
 * %g), "24GiB" (binary), "About a minute", "3 years"; and Go's time.Duration.String ("1m30s").
 */

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

/** Go's `%.<precision>g`: shortest form, trailing zeros removed, exponent with at least two digits. */
export function formatG(value: number, precision: number): string {
  if (value === 0) return '0';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : value < 0 ? '-Inf' : 'NaN';
  const exponential = value.toExponential(precision - 1);
  const [mantissa = '', exp = '0'] = exponential.split('e');
  const exponent = Number(exp);
  if (exponent < -4 || exponent >= precision) {
    const m = mantissa.includes('.') ? mantissa.replace(/0+$/, '').replace(/\.$/, '') : mantissa;
    const sign = exponent < 0 ? '-' : '+';
    return `${m}e${sign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  const fixed = value.toFixed(Math.max(0, precision - 1 - exponent));
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

function scaled(size: number, base: number, units: string[]): { size: number; unit: string } {
  let i = 0;
  while (size >= base && i < units.length - 1) {
    size /= base;
    i++;
  }
  return { size, unit: units[i] ?? '' };
}

/** units.HumanSizeWithPrecision: decimal units. */
export function humanSizeWithPrecision(size: number, precision: number): string {
  const s = scaled(size, 1000, DECIMAL_UNITS);
  return formatG(s.size, precision) + s.unit;
}

/** units.HumanSize: four significant digits ("1.234MB"). */
export const humanSize = (size: number): string => humanSizeWithPrecision(size, 4);

/** units.BytesSize: binary units, four significant digits ("24GiB"). */
export function bytesSize(size: number): string {
  const s = scaled(size, 1024, BINARY_UNITS);
  return formatG(s.size, 4) + s.unit;
}

/** units.HumanDuration for a duration in milliseconds. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3_600_000) / 24 / 365)} years`;
}

/** Go's time.Duration.String for a duration in nanoseconds ("1h2m3s", "1.5s", "300ms", "0s"). */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const negative = ns < 0;
  let rest = Math.abs(ns);
  let out: string;
  if (rest < 1e9) {
    if (rest < 1e3) out = `${rest}ns`;
    else if (rest < 1e6) out = `${trimFraction(rest / 1e3)}µs`;
    else out = `${trimFraction(rest / 1e6)}ms`;
  } else {
    const hours = Math.floor(rest / 3.6e12);
    rest -= hours * 3.6e12;
    const minutes = Math.floor(rest / 6e10);
    rest -= minutes * 6e10;
    const seconds = `${trimFraction(rest / 1e9)}s`;
    out = hours > 0 ? `${hours}h${minutes}m${seconds}` : minutes > 0 ? `${minutes}m${seconds}` : seconds;
  }
  return negative ? `-${out}` : out;
}

const trimFraction = (value: number): string => {
  const fixed = value.toFixed(9);
  return fixed.replace(/0+$/, '').replace(/\.$/, '');
};

/** "3 years ago" from a Unix time in seconds, as docker's list commands print CREATED. */
export function timeAgo(unixSeconds: number, now = Date.now()): string {
  return `${humanDuration(now - unixSeconds * 1000)} ago`;
}

/** Go's Time.String() in the local zone: "2023-11-14 22:13:20.5 +0000 UTC". */
export function goTimeString(unixSeconds: number, nanos = 0): string {
  const date = new Date(unixSeconds * 1000);
  const offsetMinutes = -date.getTimezoneOffset();
  const local = new Date(date.getTime() + offsetMinutes * 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  const offset = `${sign}${String(Math.trunc(abs / 60)).padStart(2, '0')}${String(abs % 60).padStart(2, '0')}`;
  const zone =
    offsetMinutes === 0 &&
    (process.env.TZ === undefined || process.env.TZ === '' || /^(UTC|Etc\/UTC)$/.test(process.env.TZ))
      ? 'UTC'
      : (new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' })
          .formatToParts(date)
          .find((p) => p.type === 'timeZoneName')?.value ?? offset);
  const fraction = nanos > 0 ? `.${String(nanos).padStart(9, '0').replace(/0+$/, '')}` : '';
  return `${local.toISOString().slice(0, 19).replace('T', ' ')}${fraction} ${offset} ${zone}`;
}

/** docker's formatter.Ellipsis: at most `width` characters, the last one "…" when cut. */
export function ellipsis(text: string, width: number): string {
  if (width <= 0) return '';
  const chars = [...text];
  if (chars.length <= width) return text;
  if (width === 1) return chars[0] ?? '';
  return chars.slice(0, width - 1).join('') + '…';
}

/** An RFC 3339 time with up to nanosecond precision as Unix seconds and nanoseconds. */
export function parseRfc3339(text: string): { seconds: number; nanos: number } | undefined {
  const match = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.exec(text);
  if (match === null) return undefined;
  const millis = Date.parse(`${match[1]}${match[3]}`);
  if (Number.isNaN(millis)) return undefined;
  const nanos = match[2] ? Number(match[2].slice(1, 10).padEnd(9, '0')) : 0;
  return { seconds: Math.floor(millis / 1000), nanos };
}
