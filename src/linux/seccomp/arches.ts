/**
 * The system call ABIs an x86_64 kernel serves, and how OCI architecture names map onto them. A filter
 * sees `seccomp_data.arch` (the audit arch) and `seccomp_data.nr`; x32 processes report the x86_64 audit
 * arch and mark their call numbers with bit 30.
 */
import { X32_SYSCALLS } from './syscalls-x32.js';
import { X86_SYSCALLS } from './syscalls-x86.js';
import { X86_64_SYSCALLS } from './syscalls-x86_64.js';

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;
export const X32_SYSCALL_BIT = 0x40000000;

export type ArchName = 'x86_64' | 'x86' | 'x32';

export interface Arch {
  name: ArchName;
  auditArch: number;
  /** i386 arguments are 32-bit registers: only their low halves are compared (as libseccomp does). */
  argumentBits: 32 | 64;
  /** The range of `seccomp_data.nr` values this ABI owns under its audit arch. */
  firstNumber: number;
  lastNumber: number;
  /** Name -> the number the filter sees (x32 numbers include the marker bit). */
  syscalls: ReadonlyMap<string, number>;
}

function table(source: Readonly<Record<string, number>>, bit = 0): ReadonlyMap<string, number> {
  return new Map(Object.entries(source).map(([name, nr]) => [name, (bit | nr) >>> 0]));
}

export const ARCHES: Readonly<Record<ArchName, Arch>> = {
  x86_64: {
    name: 'x86_64',
    auditArch: AUDIT_ARCH_X86_64,
    argumentBits: 64,
    firstNumber: 0,
    lastNumber: X32_SYSCALL_BIT - 1,
    syscalls: table(X86_64_SYSCALLS),
  },
  x86: {
    name: 'x86',
    auditArch: AUDIT_ARCH_I386,
    argumentBits: 32,
    firstNumber: 0,
    lastNumber: 0xffffffff,
    syscalls: table(X86_SYSCALLS),
  },
  x32: {
    name: 'x32',
    auditArch: AUDIT_ARCH_X86_64,
    argumentBits: 64,
    firstNumber: X32_SYSCALL_BIT,
    lastNumber: 0xffffffff,
    syscalls: table(X32_SYSCALLS, X32_SYSCALL_BIT),
  },
};

/**
 * OCI (libseccomp) architecture names. Those of other CPU families are accepted so that one profile can
 * serve several platforms, and ignored: an x86_64 kernel never reports their audit arch.
 */
export const OCI_ARCHITECTURES: Readonly<Record<string, ArchName | null>> = {
  SCMP_ARCH_X86_64: 'x86_64',
  SCMP_ARCH_X86: 'x86',
  SCMP_ARCH_X32: 'x32',
  SCMP_ARCH_ARM: null,
  SCMP_ARCH_AARCH64: null,
  SCMP_ARCH_MIPS: null,
  SCMP_ARCH_MIPS64: null,
  SCMP_ARCH_MIPS64N32: null,
  SCMP_ARCH_MIPSEL: null,
  SCMP_ARCH_MIPSEL64: null,
  SCMP_ARCH_MIPSEL64N32: null,
  SCMP_ARCH_PPC: null,
  SCMP_ARCH_PPC64: null,
  SCMP_ARCH_PPC64LE: null,
  SCMP_ARCH_S390: null,
  SCMP_ARCH_S390X: null,
  SCMP_ARCH_PARISC: null,
  SCMP_ARCH_PARISC64: null,
  SCMP_ARCH_RISCV64: null,
  SCMP_ARCH_LOONGARCH64: null,
};

/**
 * Calls that exist only on other CPU families (multi-platform profiles such as Docker's name them). A
 * profile may use them; on x86 they match nothing. Any other name unknown to the x86 tables is an error.
 */
export const OTHER_FAMILY_SYSCALLS: ReadonlySet<string> = new Set([
  'arm_fadvise64_64',
  'arm_sync_file_range',
  'breakpoint',
  'cacheflush',
  'cachectl',
  'multiplexer',
  'pciconfig_iobase',
  'pciconfig_read',
  'pciconfig_write',
  'recv',
  'riscv_flush_icache',
  'riscv_hwprobe',
  'rtas',
  's390_guarded_storage',
  's390_pci_mmio_read',
  's390_pci_mmio_write',
  's390_runtime_instr',
  's390_sthyi',
  'send',
  'set_tls',
  'spu_create',
  'spu_run',
  'subpage_prot',
  'swapcontext',
  'switch_endian',
  'sync_file_range2',
  'sys_debug_setcontext',
  'sysmips',
  'usr26',
  'usr32',
]);
