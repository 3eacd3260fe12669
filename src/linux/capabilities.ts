import { invalidArgument } from '../common/errors.js';

/** Linux capability numbers (include/uapi/linux/capability.h). */
export const CAPABILITIES: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_DAC_READ_SEARCH: 2,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_LINUX_IMMUTABLE: 9,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_BROADCAST: 11,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
  CAP_IPC_LOCK: 14,
  CAP_IPC_OWNER: 15,
  CAP_SYS_MODULE: 16,
  CAP_SYS_RAWIO: 17,
  CAP_SYS_CHROOT: 18,
  CAP_SYS_PTRACE: 19,
  CAP_SYS_PACCT: 20,
  CAP_SYS_ADMIN: 21,
  CAP_SYS_BOOT: 22,
  CAP_SYS_NICE: 23,
  CAP_SYS_RESOURCE: 24,
  CAP_SYS_TIME: 25,
  CAP_SYS_TTY_CONFIG: 26,
  CAP_MKNOD: 27,
  CAP_LEASE: 28,
  CAP_AUDIT_WRITE: 29,
  CAP_AUDIT_CONTROL: 30,
  CAP_SETFCAP: 31,
  CAP_MAC_OVERRIDE: 32,
  CAP_MAC_ADMIN: 33,
  CAP_SYSLOG: 34,
  CAP_WAKE_ALARM: 35,
  CAP_BLOCK_SUSPEND: 36,
  CAP_AUDIT_READ: 37,
  CAP_PERFMON: 38,
  CAP_BPF: 39,
  CAP_CHECKPOINT_RESTORE: 40,
};

export const ALL_CAPABILITIES = Object.keys(CAPABILITIES);

/** The capabilities Docker gives a container by default. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** Accepts `CAP_X`, `X` and any case, as Docker's --cap-add does; returns the canonical name. */
export function normalizeCapability(name: string): string | undefined {
  const upper = name.toUpperCase();
  const canonical = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  return canonical in CAPABILITIES ? canonical : undefined;
}

/** A capability set as the 64-bit mask capset(2) and the shim take. `field` names the spec field for errors. */
export function capabilityMask(names: string[] | undefined, field: string): bigint {
  let mask = 0n;
  (names ?? []).forEach((name, index) => {
    const number = CAPABILITIES[name];
    if (number === undefined)
      throw invalidArgument(`${field}[${index}]: unknown capability ${JSON.stringify(name)}`);
    mask |= 1n << BigInt(number);
  });
  return mask;
}

/** Names of the capabilities in a mask, in number order. */
export function capabilityNames(mask: bigint): string[] {
  return ALL_CAPABILITIES.filter((name) => (mask >> BigInt(CAPABILITIES[name] ?? 0)) & 1n);
}
