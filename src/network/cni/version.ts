/**
 * The CNI spec versions this client speaks. Network lists and chaining arrived in 0.3.0, so older
 * configurations are refused; 1.1.0 adds commands (GC, STATUS) this client does not implement.
 */
export const SUPPORTED_CNI_VERSIONS: readonly string[] = ['0.3.0', '0.3.1', '0.4.0', '1.0.0'];

/** The version this client sends with VERSION. */
export const CURRENT_CNI_VERSION = '1.0.0';

export const isSupportedVersion = (version: string): boolean => SUPPORTED_CNI_VERSIONS.includes(version);

function parts(version: string): [number, number, number] {
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(version);
  if (match === null) return [0, 0, 0];
  return [Number(match[1]), Number(match[2]), Number(match[3])];
}

/** Negative, zero or positive as a is older than, equal to or newer than b. */
export function compareVersions(a: string, b: string): number {
  const [pa, pb] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) {
    const diff = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/** CHECK, and prevResult on DEL, exist from 0.4.0 on. */
export const hasCheck = (version: string): boolean => compareVersions(version, '0.4.0') >= 0;
