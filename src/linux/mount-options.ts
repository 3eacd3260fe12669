/** mount(2) flags and the fstab-style option words of OCI mounts. */
export const MS = {
  RDONLY: 0x1n,
  NOSUID: 0x2n,
  NODEV: 0x4n,
  NOEXEC: 0x8n,
  SYNCHRONOUS: 0x10n,
  REMOUNT: 0x20n,
  MANDLOCK: 0x40n,
  DIRSYNC: 0x80n,
  NOSYMFOLLOW: 0x100n,
  NOATIME: 0x400n,
  NODIRATIME: 0x800n,
  BIND: 0x1000n,
  MOVE: 0x2000n,
  REC: 0x4000n,
  SILENT: 0x8000n,
  UNBINDABLE: 0x20000n,
  PRIVATE: 0x40000n,
  SLAVE: 0x80000n,
  SHARED: 0x100000n,
  RELATIME: 0x200000n,
  STRICTATIME: 0x1000000n,
  LAZYTIME: 0x2000000n,
} as const;

const PROPAGATION_MASK = MS.SHARED | MS.SLAVE | MS.PRIVATE | MS.UNBINDABLE;

/** option -> [flags to set, clear?] */
const FLAG_OPTIONS: Record<string, [bigint, boolean]> = {
  defaults: [0n, false],
  ro: [MS.RDONLY, false],
  rw: [MS.RDONLY, true],
  suid: [MS.NOSUID, true],
  nosuid: [MS.NOSUID, false],
  dev: [MS.NODEV, true],
  nodev: [MS.NODEV, false],
  exec: [MS.NOEXEC, true],
  noexec: [MS.NOEXEC, false],
  sync: [MS.SYNCHRONOUS, false],
  async: [MS.SYNCHRONOUS, true],
  dirsync: [MS.DIRSYNC, false],
  remount: [MS.REMOUNT, false],
  mand: [MS.MANDLOCK, false],
  nomand: [MS.MANDLOCK, true],
  atime: [MS.NOATIME, true],
  noatime: [MS.NOATIME, false],
  diratime: [MS.NODIRATIME, true],
  nodiratime: [MS.NODIRATIME, false],
  bind: [MS.BIND, false],
  rbind: [MS.BIND | MS.REC, false],
  relatime: [MS.RELATIME, false],
  norelatime: [MS.RELATIME, true],
  strictatime: [MS.STRICTATIME, false],
  nostrictatime: [MS.STRICTATIME, true],
  nosymfollow: [MS.NOSYMFOLLOW, false],
  symfollow: [MS.NOSYMFOLLOW, true],
  lazytime: [MS.LAZYTIME, false],
  nolazytime: [MS.LAZYTIME, true],
};

const PROPAGATION_OPTIONS: Record<string, bigint> = {
  private: MS.PRIVATE,
  rprivate: MS.PRIVATE | MS.REC,
  shared: MS.SHARED,
  rshared: MS.SHARED | MS.REC,
  slave: MS.SLAVE,
  rslave: MS.SLAVE | MS.REC,
  unbindable: MS.UNBINDABLE,
  runbindable: MS.UNBINDABLE | MS.REC,
};

/** runc-specific words that change how a mount is made but are not mount(2) options. */
const IGNORED_OPTIONS = new Set(['tmpcopyup', 'idmap', 'ridmap', 'rro', 'rrw']);

export interface ParsedMountOptions {
  flags: bigint;
  propagation: bigint;
  /** Remaining options, comma-joined, passed as mount(2) data (e.g. `mode=755,size=65536k`). */
  data: string;
  recursive: boolean;
  bind: boolean;
}

export function parseMountOptions(options: string[] | undefined): ParsedMountOptions {
  let flags = 0n;
  let propagation = 0n;
  const data: string[] = [];
  for (const option of options ?? []) {
    const flag = FLAG_OPTIONS[option];
    if (flag) {
      const [bits, clear] = flag;
      flags = clear ? flags & ~bits : flags | bits;
      continue;
    }
    const prop = PROPAGATION_OPTIONS[option];
    if (prop !== undefined) {
      propagation = prop;
      continue;
    }
    if (IGNORED_OPTIONS.has(option)) continue;
    data.push(option);
  }
  return {
    flags,
    propagation,
    data: data.join(','),
    recursive: (flags & MS.REC) !== 0n,
    bind: (flags & MS.BIND) !== 0n,
  };
}

/** The mount(2) flag for a rootfsPropagation value, or undefined when it is not one. */
export function propagationFlag(value: string): bigint | undefined {
  return PROPAGATION_OPTIONS[value];
}

export { PROPAGATION_MASK };
