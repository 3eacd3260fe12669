/**
 * Seccomp filter return values and seccomp(2) flags (include/uapi/linux/seccomp.h), and the OCI names
 * that map onto them.
 */
import type { SeccompAction } from '../../oci/runtime-spec.js';

export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  USER_NOTIF: 0x7fc00000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** The low 16 bits of a return value carry the errno (ERRNO) or the tracer's message (TRACE). */
export const SECCOMP_RET_DATA = 0x0000ffff;

export const SECCOMP_FILTER_FLAG = {
  TSYNC: 1,
  LOG: 2,
  SPEC_ALLOW: 4,
  NEW_LISTENER: 8,
  TSYNC_ESRCH: 16,
  WAIT_KILLABLE_RECV: 32,
} as const;

/** The flags a profile may name (runtime-spec 1.2); NEW_LISTENER is implied by SCMP_ACT_NOTIFY rules. */
export const OCI_FILTER_FLAGS: Readonly<Record<string, number>> = {
  SECCOMP_FILTER_FLAG_TSYNC: SECCOMP_FILTER_FLAG.TSYNC,
  SECCOMP_FILTER_FLAG_LOG: SECCOMP_FILTER_FLAG.LOG,
  SECCOMP_FILTER_FLAG_SPEC_ALLOW: SECCOMP_FILTER_FLAG.SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: SECCOMP_FILTER_FLAG.WAIT_KILLABLE_RECV,
};

export const EPERM = 1;
export const ENOSYS = 38;
/** The kernel caps an ERRNO value at MAX_ERRNO; TRACE passes the full 16 bits to the tracer. */
export const MAX_ERRNO = 4095;

/** Return value base of each OCI action; ERRNO and TRACE add their 16-bit data. */
export const ACTION_BASE: Readonly<Record<SeccompAction, number>> = {
  SCMP_ACT_KILL: SECCOMP_RET.KILL_THREAD,
  SCMP_ACT_KILL_THREAD: SECCOMP_RET.KILL_THREAD,
  SCMP_ACT_KILL_PROCESS: SECCOMP_RET.KILL_PROCESS,
  SCMP_ACT_TRAP: SECCOMP_RET.TRAP,
  SCMP_ACT_ERRNO: SECCOMP_RET.ERRNO,
  SCMP_ACT_TRACE: SECCOMP_RET.TRACE,
  SCMP_ACT_ALLOW: SECCOMP_RET.ALLOW,
  SCMP_ACT_LOG: SECCOMP_RET.LOG,
  SCMP_ACT_NOTIFY: SECCOMP_RET.USER_NOTIF,
};

/** Actions that take an errno (`errnoRet`): ERRNO returns it, TRACE hands it to the tracer. */
export const takesErrno = (action: SeccompAction): boolean =>
  action === 'SCMP_ACT_ERRNO' || action === 'SCMP_ACT_TRACE';
