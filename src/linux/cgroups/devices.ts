/**
 * linux.resources.devices, evaluated the way the v1 devices controller evaluates writes to
 * devices.allow and devices.deny (security/device_cgroup.c), so that both drivers give the same
 * answer: v1 writes the rules in order after a deny-all "a"; v2 replays the same writes here and
 * compiles the resulting state into an eBPF program (device-bpf.ts).
 */
import { invalidArgument } from '../../common/errors.js';
import type { DeviceCgroup } from '../../oci/runtime-spec.js';

/** Access bits as the kernel numbers them (BPF_DEVCG_ACC_*). */
export const ACCESS = { m: 1, r: 2, w: 4 } as const;
export const ALL_ACCESS = 7;
/** Device types as the kernel numbers them (BPF_DEVCG_DEV_*). */
export const DEVICE_TYPE = { b: 1, c: 2 } as const;

/** A rule for one device type; a null major or minor is the wildcard "*". */
export interface DeviceRule {
  allow: boolean;
  type: 'a' | 'b' | 'c';
  major: number | null;
  minor: number | null;
  access: number;
}

/** One exception of the kernel's list: never type "a" (those reset the list instead). */
export interface DeviceException {
  type: 'b' | 'c';
  major: number | null;
  minor: number | null;
  access: number;
}

/** What the rules leave: a default and the exceptions to it. */
export interface DeviceState {
  defaultAllow: boolean;
  exceptions: DeviceException[];
}

const fieldOf = (index: number): string => `linux.resources.devices[${index}]`;

function number(value: number | null | undefined, index: number, name: string): number | null {
  // -1 is the wildcard in runc's configs; the spec's way is to leave it out.
  if (value === undefined || value === null || value === -1) return null;
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
    throw invalidArgument(`${fieldOf(index)}.${name}: ${value} is not a device number`);
  return value;
}

export function normalizeRules(rules: readonly DeviceCgroup[]): DeviceRule[] {
  return rules.map((rule, index) => {
    const type = rule.type ?? 'a';
    if (type !== 'a' && type !== 'b' && type !== 'c')
      throw invalidArgument(`${fieldOf(index)}.type: "${String(type)}" is not a, b or c`);
    let access = 0;
    for (const char of rule.access === undefined || rule.access === '' ? 'rwm' : rule.access) {
      const bit = ACCESS[char as keyof typeof ACCESS];
      if (bit === undefined)
        throw invalidArgument(`${fieldOf(index)}.access: "${rule.access}" may hold only r, w and m`);
      access |= bit;
    }
    const major = number(rule.major, index, 'major');
    const minor = number(rule.minor, index, 'minor');
    // The kernel treats any "a" rule as "all devices, all access" and ignores the rest of it;
    // a narrower "a" rule would mean something else on v1 than it says, so it is refused.
    if (type === 'a' && (major !== null || minor !== null || access !== ALL_ACCESS)) {
      throw invalidArgument(
        `${fieldOf(index)}: a rule for all device types (type "a") must cover every device and "rwm" access`,
      );
    }
    return { allow: rule.allow === true, type, major, minor, access };
  });
}

const accessString = (access: number): string =>
  (access & ACCESS.r ? 'r' : '') + (access & ACCESS.w ? 'w' : '') + (access & ACCESS.m ? 'm' : '');

/** The v1 writes, in order: which file and what line. The first one denies everything. */
export function v1DeviceWrites(
  rules: readonly DeviceRule[],
): Array<{ file: 'devices.allow' | 'devices.deny'; line: string }> {
  const writes: Array<{ file: 'devices.allow' | 'devices.deny'; line: string }> = [
    { file: 'devices.deny', line: 'a' },
  ];
  for (const rule of rules) {
    const file = rule.allow ? 'devices.allow' : 'devices.deny';
    if (rule.type === 'a') {
      writes.push({ file, line: 'a' });
      continue;
    }
    const major = rule.major === null ? '*' : String(rule.major);
    const minor = rule.minor === null ? '*' : String(rule.minor);
    writes.push({ file, line: `${rule.type} ${major}:${minor} ${accessString(rule.access)}` });
  }
  return writes;
}

const sameDevice = (a: DeviceException, b: DeviceException): boolean =>
  a.type === b.type && a.major === b.major && a.minor === b.minor;

/**
 * The state after writing the rules in order to a fresh cgroup that starts from "deny all", as the
 * kernel's devcgroup_update_access() computes it: an "a" rule resets the default and clears the
 * exceptions; a rule agreeing with the default removes its access bits from the exception for
 * exactly that device; a rule disagreeing with the default adds them.
 */
export function emulateDeviceRules(rules: readonly DeviceRule[]): DeviceState {
  let defaultAllow = false;
  let exceptions: DeviceException[] = [];
  for (const rule of rules) {
    if (rule.type === 'a') {
      defaultAllow = rule.allow;
      exceptions = [];
      continue;
    }
    const entry: DeviceException = {
      type: rule.type,
      major: rule.major,
      minor: rule.minor,
      access: rule.access,
    };
    if (rule.allow === defaultAllow) {
      exceptions = exceptions
        .map((e) => (sameDevice(e, entry) ? { ...e, access: e.access & ~entry.access } : e))
        .filter((e) => e.access !== 0);
    } else {
      const existing = exceptions.find((e) => sameDevice(e, entry));
      if (existing !== undefined) existing.access |= entry.access;
      else exceptions.push(entry);
    }
  }
  return { defaultAllow, exceptions };
}

/**
 * The kernel's decision for one access (devcgroup_legacy_check_permission): with a default of
 * deny, allowed when one exception covers the device and all the requested access; with a default
 * of allow, denied when any exception covers the device and any of the requested access.
 */
export function deviceAccessAllowed(
  state: DeviceState,
  type: 'b' | 'c',
  major: number,
  minor: number,
  access: number,
): boolean {
  const covers = (e: DeviceException): boolean =>
    e.type === type && (e.major === null || e.major === major) && (e.minor === null || e.minor === minor);
  if (state.defaultAllow) return !state.exceptions.some((e) => covers(e) && (access & e.access) !== 0);
  return state.exceptions.some((e) => covers(e) && (access & ~e.access) === 0);
}
