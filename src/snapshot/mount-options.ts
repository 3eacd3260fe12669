/**
 * mount(8)'s reading of a mount's option list, as data: the options that are mount(2) flags, the
 * rest as the filesystem's data string, the second call a bind mount needs for its per-mount flags
 * (the kernel ignores them when it creates a bind mount), and propagation changes, which are calls
 * of their own. Flag names are berth-mount's (native/mount/berth-mount.c).
 */

/** The mount(2) calls for one mount, in order. */
export interface MountCalls {
  /** Flags of the mount itself, e.g. ['bind', 'rec']. */
  flags: string[];
  /** Filesystem options, in their order. */
  data: string[];
  /** Flags of the remount of a bind mount (empty: none needed). */
  remount: string[];
  /** Flags of each propagation change, e.g. [['private', 'rec']]. */
  propagation: string[][];
}

/** Options that set (true) or clear (false) a flag. */
const FLAG_OPTIONS: Record<string, [flag: string, set: boolean]> = {
  ro: ['ro', true],
  rw: ['ro', false],
  nosuid: ['nosuid', true],
  suid: ['nosuid', false],
  nodev: ['nodev', true],
  dev: ['nodev', false],
  noexec: ['noexec', true],
  exec: ['noexec', false],
  sync: ['sync', true],
  async: ['sync', false],
  dirsync: ['dirsync', true],
  mand: ['mand', true],
  nomand: ['mand', false],
  noatime: ['noatime', true],
  atime: ['noatime', false],
  nodiratime: ['nodiratime', true],
  diratime: ['nodiratime', false],
  relatime: ['relatime', true],
  norelatime: ['relatime', false],
  strictatime: ['strictatime', true],
  nostrictatime: ['strictatime', false],
  lazytime: ['lazytime', true],
  nolazytime: ['lazytime', false],
  silent: ['silent', true],
  loud: ['silent', false],
  remount: ['remount', true],
  bind: ['bind', true],
};

const PROPAGATION = new Set(['private', 'slave', 'shared', 'unbindable']);

/** Per-mount flags: on a new bind mount they take effect only through a remount. */
const PER_MOUNT = ['ro', 'nosuid', 'nodev', 'noexec', 'noatime', 'nodiratime', 'relatime', 'strictatime'];

/** Splits `options` into mount(2) calls the way mount(8) does. */
export function mountCalls(options: readonly string[]): MountCalls {
  const flags = new Set<string>();
  const data: string[] = [];
  const propagation: string[][] = [];
  for (const option of options) {
    const known = FLAG_OPTIONS[option];
    if (known) {
      if (known[1]) flags.add(known[0]);
      else flags.delete(known[0]);
    } else if (option === 'rbind') {
      flags.add('bind');
      flags.add('rec');
    } else if (PROPAGATION.has(option)) propagation.push([option]);
    else if (option.startsWith('r') && PROPAGATION.has(option.slice(1)))
      propagation.push([option.slice(1), 'rec']);
    else if (option !== '' && option !== 'defaults') data.push(option);
  }
  const remount =
    flags.has('bind') && !flags.has('remount') && PER_MOUNT.some((flag) => flags.has(flag))
      ? ['remount', ...flags]
      : [];
  return { flags: [...flags], data, remount, propagation };
}
