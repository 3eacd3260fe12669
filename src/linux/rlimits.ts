import { readFileSync } from 'node:fs';

/** RLIMIT_* names and their resource numbers (asm-generic/resource.h, x86). */
export const RLIMITS: Readonly<Record<string, number>> = {
  RLIMIT_CPU: 0,
  RLIMIT_FSIZE: 1,
  RLIMIT_DATA: 2,
  RLIMIT_STACK: 3,
  RLIMIT_CORE: 4,
  RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6,
  RLIMIT_NOFILE: 7,
  RLIMIT_MEMLOCK: 8,
  RLIMIT_AS: 9,
  RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11,
  RLIMIT_MSGQUEUE: 12,
  RLIMIT_NICE: 13,
  RLIMIT_RTPRIO: 14,
  RLIMIT_RTTIME: 15,
};

const LIMITS_FILE_NAMES: Record<string, string> = {
  'Max cpu time': 'RLIMIT_CPU',
  'Max file size': 'RLIMIT_FSIZE',
  'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK',
  'Max core file size': 'RLIMIT_CORE',
  'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC',
  'Max open files': 'RLIMIT_NOFILE',
  'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS',
  'Max file locks': 'RLIMIT_LOCKS',
  'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE',
  'Max nice priority': 'RLIMIT_NICE',
  'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

export const RLIM_INFINITY = 2n ** 64n - 1n;

export interface Limit {
  soft: bigint;
  hard: bigint;
}

/** Parse /proc/<pid>/limits: resource name -> soft and hard limits (unlimited = RLIM_INFINITY). */
export function parseLimits(text: string): Record<string, Limit> {
  const limits: Record<string, Limit> = {};
  for (const line of text.split('\n').slice(1)) {
    const label = Object.keys(LIMITS_FILE_NAMES).find((name) => line.startsWith(name + ' '));
    if (!label) continue;
    const [soft = '', hard = ''] = line.slice(label.length).trim().split(/\s+/);
    const value = (word: string): bigint => (word === 'unlimited' ? RLIM_INFINITY : BigInt(word));
    limits[LIMITS_FILE_NAMES[label] ?? ''] = { soft: value(soft), hard: value(hard) };
  }
  return limits;
}

export function ownLimits(): Record<string, Limit> {
  return parseLimits(readFileSync('/proc/self/limits', 'utf8'));
}

/** The effective capability mask of this process, from /proc/self/status. */
export function ownEffectiveCapabilities(): bigint {
  const status = readFileSync('/proc/self/status', 'utf8');
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0';
  return BigInt(`0x${hex}`);
}

/** The ulimit names `docker run --ulimit` accepts (go-units' list; `as` is left out, as Docker does). */
export const DOCKER_ULIMIT_NAMES: ReadonlySet<string> = new Set(
  Object.keys(RLIMITS)
    .map((name) => name.slice('RLIMIT_'.length).toLowerCase())
    .filter((name) => name !== 'as'),
);
