/**
 * A seccomp profile given with `--security-opt seccomp=<json>` in Docker's format (moby
 * profiles/seccomp: `archMap`, `names` or `name`, `includes`/`excludes` on capabilities,
 * architectures and kernel versions), turned into the OCI `linux.seccomp` for this host the way
 * moby's LoadProfile does. Plain OCI profiles are a subset of that format and pass through.
 */
import { invalidArgument } from '../common/errors.js';
import type { Seccomp, SeccompSyscall } from '../oci/runtime-spec.js';

/** Go's name for this architecture, as profiles' `arches` filters use it. */
const GO_ARCH = 'amd64';
const SECCOMP_ARCH = 'SCMP_ARCH_X86_64';

export interface ProfileContext {
  /** The container's bounding capability set. */
  capabilities: string[];
  /** The host kernel's release (`6.18.0-...`), for `minKernel` filters. */
  kernelRelease: string;
}

type Json = Record<string, unknown>;

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const fail = (problem: string): never => {
  throw invalidArgument(`Decoding seccomp profile failed: ${problem}`);
};

function stringList(value: unknown, field: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string'))
    return fail(`${field} must be an array of strings`);
  return value as string[];
}

/** `major.minor` of a kernel version; moby accepts nothing else in a profile. */
function kernelVersion(text: string, field: string): [number, number] {
  const match = /^(\d+)\.(\d+)/.exec(text);
  if (match === null)
    return fail(`${field}: invalid kernel version ${JSON.stringify(text)}, expected <major>.<minor>`);
  return [Number(match[1]), Number(match[2])];
}

const atLeast = (have: [number, number], want: [number, number]): boolean =>
  have[0] > want[0] || (have[0] === want[0] && have[1] >= want[1]);

interface Filter {
  caps: string[];
  arches: string[];
  minKernel?: [number, number];
}

function filterOf(value: unknown, field: string): Filter {
  if (value === undefined || value === null) return { caps: [], arches: [] };
  if (!isObject(value)) return fail(`${field} must be an object`);
  const filter: Filter = {
    caps: stringList(value.caps, `${field}.caps`),
    arches: stringList(value.arches, `${field}.arches`),
  };
  if (value.minKernel !== undefined && value.minKernel !== null && value.minKernel !== '') {
    if (typeof value.minKernel !== 'string') return fail(`${field}.minKernel must be a string`);
    filter.minKernel = kernelVersion(value.minKernel, `${field}.minKernel`);
  }
  return filter;
}

/**
 * Parse `text` (a JSON profile) for a container with the given bounding set. Returns undefined for
 * a profile with neither a default action nor rules, which moby takes as "no seccomp".
 */
export function loadSeccompProfile(text: string, context: ProfileContext): Seccomp | undefined {
  let profile: unknown;
  try {
    profile = JSON.parse(text);
  } catch (err) {
    return fail(err instanceof Error ? err.message : String(err));
  }
  if (!isObject(profile)) return fail('the profile must be a JSON object');
  const syscalls = profile.syscalls ?? [];
  if (!Array.isArray(syscalls)) return fail('syscalls must be an array');
  if ((profile.defaultAction === undefined || profile.defaultAction === '') && syscalls.length === 0)
    return undefined;
  if (typeof profile.defaultAction !== 'string') return fail('defaultAction must be a string');

  const architectures = stringList(profile.architectures, 'architectures');
  const archMap = profile.archMap ?? [];
  if (!Array.isArray(archMap)) return fail('archMap must be an array');
  if (architectures.length > 0 && archMap.length > 0) {
    return fail(
      "both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'",
    );
  }
  archMap.forEach((entry: unknown, i) => {
    if (!isObject(entry) || typeof entry.architecture !== 'string')
      fail(`archMap[${i}].architecture must be a string`);
    const { architecture, subArchitectures } = entry as Json;
    if (architecture === SECCOMP_ARCH)
      architectures.push(architecture, ...stringList(subArchitectures, `archMap[${i}].subArchitectures`));
  });

  const have = kernelVersion(context.kernelRelease, 'host kernel');
  const caps = new Set(context.capabilities);
  const rules: SeccompSyscall[] = [];
  syscalls.forEach((entry: unknown, i) => {
    const field = `syscalls[${i}]`;
    if (!isObject(entry)) return fail(`${field} must be an object`);
    let names = stringList(entry.names, `${field}.names`);
    if (typeof entry.name === 'string' && entry.name !== '') {
      if (names.length > 0) return fail(`${field}: use either 'name' or 'names'`);
      names = [entry.name];
    }
    const includes = filterOf(entry.includes, `${field}.includes`);
    const excludes = filterOf(entry.excludes, `${field}.excludes`);
    if (excludes.arches.includes(GO_ARCH)) return;
    if (includes.arches.length > 0 && !includes.arches.includes(GO_ARCH)) return;
    if (excludes.caps.some((cap) => caps.has(cap))) return;
    if (!includes.caps.every((cap) => caps.has(cap))) return;
    if (excludes.minKernel !== undefined && atLeast(have, excludes.minKernel)) return;
    if (includes.minKernel !== undefined && !atLeast(have, includes.minKernel)) return;
    const rule = { names, action: entry.action } as SeccompSyscall;
    if (entry.errnoRet !== undefined && entry.errnoRet !== null) rule.errnoRet = entry.errnoRet as number;
    if (entry.args !== undefined && entry.args !== null) rule.args = entry.args as SeccompSyscall['args'];
    rules.push(rule);
  });

  const result = { defaultAction: profile.defaultAction } as Seccomp;
  if (profile.defaultErrnoRet !== undefined && profile.defaultErrnoRet !== null)
    result.defaultErrnoRet = profile.defaultErrnoRet as number;
  if (architectures.length > 0) result.architectures = architectures;
  const flags = stringList(profile.flags, 'flags');
  if (flags.length > 0) result.flags = flags;
  if (typeof profile.listenerPath === 'string' && profile.listenerPath !== '')
    result.listenerPath = profile.listenerPath;
  if (typeof profile.listenerMetadata === 'string' && profile.listenerMetadata !== '')
    result.listenerMetadata = profile.listenerMetadata;
  result.syscalls = rules;
  return result;
}
