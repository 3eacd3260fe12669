/**
 * Compiles a device state (devices.ts) into an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE,
 * the cgroup v2 replacement for devices.allow/devices.deny. The kernel calls it with r1 pointing
 * at struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }, access_type being
 * (access << 16) | device type; it returns 1 to allow the access and 0 to deny it.
 */
import { endianness } from 'node:os';
import type { DeviceCgroup } from '../../oci/runtime-spec.js';
import { ALL_ACCESS, DEVICE_TYPE, emulateDeviceRules, normalizeRules } from './devices.js';
import type { DeviceState } from './devices.js';

export interface BpfInstruction {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

// Opcodes (instruction class | operation | source) from include/uapi/linux/bpf.h.
export const OPCODE = {
  LDX_MEM_W: 0x61, // BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
  MOV32_IMM: 0xb4, // BPF_ALU | BPF_MOV | BPF_K
  MOV32_REG: 0xbc, // BPF_ALU | BPF_MOV | BPF_X
  AND32_IMM: 0x54, // BPF_ALU | BPF_AND | BPF_K
  RSH32_IMM: 0x74, // BPF_ALU | BPF_RSH | BPF_K
  JEQ32_IMM: 0x16, // BPF_JMP32 | BPF_JEQ | BPF_K: compares the low 32 bits, so any u32 fits in imm
  JNE32_IMM: 0x56, // BPF_JMP32 | BPF_JNE | BPF_K
  EXIT: 0x95, // BPF_JMP | BPF_EXIT
} as const;

const R0 = 0;
const R1 = 1; // context pointer on entry, scratch after the prologue
const R_TYPE = 2;
const R_ACCESS = 3;
const R_MAJOR = 4;
const R_MINOR = 5;

const insn = (code: number, dst: number, src: number, off: number, imm: number): BpfInstruction => ({
  code,
  dst,
  src,
  off,
  imm: imm | 0, // the field is a signed 32-bit number
});

/** A forward jump whose target (the end of the current rule's block) is filled in later. */
type Pending = BpfInstruction & { skipsBlock?: true };

export function compileDeviceState(state: DeviceState): BpfInstruction[] {
  const program: BpfInstruction[] = [
    insn(OPCODE.LDX_MEM_W, R_TYPE, R1, 0, 0),
    insn(OPCODE.MOV32_REG, R_ACCESS, R_TYPE, 0, 0),
    insn(OPCODE.RSH32_IMM, R_ACCESS, 0, 0, 16),
    insn(OPCODE.AND32_IMM, R_TYPE, 0, 0, 0xffff),
    insn(OPCODE.LDX_MEM_W, R_MAJOR, R1, 4, 0),
    insn(OPCODE.LDX_MEM_W, R_MINOR, R1, 8, 0),
  ];
  // Every exception leads to the same answer, the opposite of the default, so their order does not matter.
  const verdict = state.defaultAllow ? 0 : 1;
  for (const exception of state.exceptions) {
    const block: Pending[] = [
      { ...insn(OPCODE.JNE32_IMM, R_TYPE, 0, 0, DEVICE_TYPE[exception.type]), skipsBlock: true },
    ];
    if (exception.major !== null)
      block.push({ ...insn(OPCODE.JNE32_IMM, R_MAJOR, 0, 0, exception.major), skipsBlock: true });
    if (exception.minor !== null)
      block.push({ ...insn(OPCODE.JNE32_IMM, R_MINOR, 0, 0, exception.minor), skipsBlock: true });
    if (exception.access !== ALL_ACCESS) {
      block.push(insn(OPCODE.MOV32_REG, R1, R_ACCESS, 0, 0));
      if (state.defaultAllow) {
        // An exception denies when the request asks for any of its access bits.
        block.push(insn(OPCODE.AND32_IMM, R1, 0, 0, exception.access));
        block.push({ ...insn(OPCODE.JEQ32_IMM, R1, 0, 0, 0), skipsBlock: true });
      } else {
        // An exception allows when the request asks for nothing outside its access bits.
        block.push(insn(OPCODE.AND32_IMM, R1, 0, 0, ~exception.access & ALL_ACCESS));
        block.push({ ...insn(OPCODE.JNE32_IMM, R1, 0, 0, 0), skipsBlock: true });
      }
    }
    block.push(insn(OPCODE.MOV32_IMM, R0, 0, 0, verdict));
    block.push(insn(OPCODE.EXIT, 0, 0, 0, 0));
    block.forEach((instruction, index) => {
      const { skipsBlock, ...plain } = instruction;
      program.push(skipsBlock === true ? { ...plain, off: block.length - index - 1 } : plain);
    });
  }
  program.push(insn(OPCODE.MOV32_IMM, R0, 0, 0, state.defaultAllow ? 1 : 0));
  program.push(insn(OPCODE.EXIT, 0, 0, 0, 0));
  return program;
}

/** struct bpf_insn in host byte order: u8 code, u8 dst_reg:4 / src_reg:4, s16 off, s32 imm. */
export function encodeInstructions(program: readonly BpfInstruction[], order = endianness()): Buffer {
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach((instruction, index) => {
    const at = index * 8;
    bytes.writeUInt8(instruction.code, at);
    // The bit-field order follows the byte order: dst_reg is the low nibble on little-endian.
    const regs =
      order === 'LE' ? (instruction.src << 4) | instruction.dst : (instruction.dst << 4) | instruction.src;
    bytes.writeUInt8(regs, at + 1);
    if (order === 'LE') {
      bytes.writeInt16LE(instruction.off, at + 2);
      bytes.writeInt32LE(instruction.imm, at + 4);
    } else {
      bytes.writeInt16BE(instruction.off, at + 2);
      bytes.writeInt32BE(instruction.imm, at + 4);
    }
  });
  return bytes;
}

/** The program bytes for linux.resources.devices, ready for `berth-shim cgroup-device-attach`. */
export function deviceProgram(rules: readonly DeviceCgroup[]): Buffer {
  return encodeInstructions(compileDeviceState(emulateDeviceRules(normalizeRules(rules))));
}
