/**
 * Docker API versioning: paths may start with /v<major>.<minor>; a request without one is served at
 * the newest version. Versions outside [MIN_API_VERSION, API_VERSION] get Docker's 400 messages.
 */
import { API_VERSION, MIN_API_VERSION } from '../common/version.js';
import { invalidArgument } from '../common/errors.js';

/** Compares dotted versions numerically, component by component ("1.9" < "1.41"); missing parts are 0. */
export function compareVersions(a: string, b: string): number {
  const left = a.split('.');
  const right = b.split('.');
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const x = Number.parseInt(left[i] ?? '0', 10) || 0;
    const y = Number.parseInt(right[i] ?? '0', 10) || 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

export const versionAtLeast = (version: string, minimum: string): boolean =>
  compareVersions(version, minimum) >= 0;

/** Splits "/v1.47/containers/json" into its version and the route path; unversioned paths keep theirs. */
export function splitVersionedPath(path: string): { version?: string; path: string } {
  const match = /^\/v([0-9.]+)(\/.*)?$/.exec(path);
  if (match === null) return { path };
  return { version: match[1] ?? '', path: match[2] ?? '' };
}

/** The version a request is served at, or Docker's error for one this daemon does not speak. */
export function negotiateVersion(requested: string | undefined): string {
  if (requested === undefined) return API_VERSION;
  if (compareVersions(requested, MIN_API_VERSION) < 0) {
    throw invalidArgument(
      `client version ${requested} is too old. Minimum supported API version is ${MIN_API_VERSION}, ` +
        'please upgrade your client to a newer version',
    );
  }
  if (compareVersions(requested, API_VERSION) > 0) {
    throw invalidArgument(
      `client version ${requested} is too new. Maximum supported API version is ${API_VERSION}`,
    );
  }
  return requested;
}
