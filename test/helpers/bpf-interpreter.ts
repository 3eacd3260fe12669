/**
 * A classic BPF interpreter for seccomp filters, for tests: runs a program on a synthetic
 * `struct seccomp_data` the way the kernel does, after the checks the kernel makes when the filter is
 * loaded (bpf_check_classic and seccomp_check_filter).
 */

export interface SeccompData {
  nr: number;
  arch: number;
  instructionPointer?: bigint;
  /** Up to six arguments, each a 64-bit value. */
  args?: (bigint | number)[];
}

export type SeccompActionName =
  'KILL_PROCESS' | 'KILL_THREAD' | 'TRAP' | 'ERRNO' | 'USER_NOTIF' | 'TRACE' | 'LOG' | 'ALLOW';

export interface FilterResult {
  ret: number;
  action: SeccompActionName;
  /** The errno of ERRNO, the message of TRACE. */
  data: number;
  /** Instructions executed, the filter's cost for this call. */
  executed: number;
}

const ACTIONS: [number, SeccompActionName][] = [
  [0x80000000, 'KILL_PROCESS'],
  [0x00000000, 'KILL_THREAD'],
  [0x00030000, 'TRAP'],
  [0x00050000, 'ERRNO'],
  [0x7fc00000, 'USER_NOTIF'],
  [0x7ff00000, 'TRACE'],
  [0x7ffc0000, 'LOG'],
  [0x7fff0000, 'ALLOW'],
];

const SECCOMP_DATA_SIZE = 64;
const MEMORY_WORDS = 16;

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export function decode(program: Buffer): Insn[] {
  if (program.length % 8 !== 0) throw new Error(`program length ${program.length} is not a multiple of 8`);
  const out: Insn[] = [];
  for (let at = 0; at < program.length; at += 8) {
    out.push({
      code: program.readUInt16LE(at),
      jt: program.readUInt8(at + 2),
      jf: program.readUInt8(at + 3),
      k: program.readUInt32LE(at + 4),
    });
  }
  return out;
}

const cls = (code: number): number => code & 0x07;
const op = (code: number): number => code & 0xf0;
const src = (code: number): number => code & 0x08;

/** Opcodes seccomp accepts (kernel/seccomp.c seccomp_check_filter). */
const ALLOWED = new Set([
  0x20, // ld [k]
  0x80, // ld len
  0x81, // ldx len
  0x06, // ret k
  0x16, // ret a
  ...[0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0].flatMap((o) => [0x04 | o, 0x0c | o]), // alu
  0x84, // neg
  0x00, // ld #k
  0x01, // ldx #k
  0x07, // tax
  0x87, // txa
  0x60, // ld M[k]
  0x61, // ldx M[k]
  0x02, // st
  0x03, // stx
  0x05, // ja
  ...[0x10, 0x20, 0x30, 0x40].flatMap((o) => [0x05 | o, 0x0d | o]), // jeq/jgt/jge/jset k and x
]);

/** Throws when the kernel would refuse to load the program. */
export function checkFilter(program: Buffer): void {
  const insns = decode(program);
  if (insns.length === 0 || insns.length > 4096) throw new Error(`bad program length ${insns.length}`);
  insns.forEach((insn, pc) => {
    if (!ALLOWED.has(insn.code)) throw new Error(`pc ${pc}: opcode 0x${insn.code.toString(16)} not allowed`);
    if (insn.code === 0x20 && (insn.k >= SECCOMP_DATA_SIZE || insn.k % 4 !== 0)) {
      throw new Error(`pc ${pc}: bad seccomp_data offset ${insn.k}`);
    }
    if ([0x60, 0x61, 0x02, 0x03].includes(insn.code) && insn.k >= MEMORY_WORDS) {
      throw new Error(`pc ${pc}: bad memory slot ${insn.k}`);
    }
    if ((insn.code === 0x34 || insn.code === 0x94) && insn.k === 0)
      throw new Error(`pc ${pc}: division by 0`);
    if (cls(insn.code) === 0x05) {
      const targets = op(insn.code) === 0x00 ? [insn.k] : [insn.jt, insn.jf];
      for (const t of targets) {
        if (pc + 1 + t >= insns.length) throw new Error(`pc ${pc}: jump out of the program`);
      }
    }
  });
  const last = insns[insns.length - 1];
  if (last === undefined || cls(last.code) !== 0x06) throw new Error('the last instruction is not a return');
}

function seccompData(data: SeccompData): Buffer {
  const buf = Buffer.alloc(SECCOMP_DATA_SIZE);
  buf.writeUInt32LE(data.nr >>> 0, 0);
  buf.writeUInt32LE(data.arch >>> 0, 4);
  buf.writeBigUInt64LE(data.instructionPointer ?? 0n, 8);
  (data.args ?? []).forEach((arg, i) => buf.writeBigUInt64LE(BigInt.asUintN(64, BigInt(arg)), 16 + 8 * i));
  return buf;
}

export function decodeReturn(ret: number): { action: SeccompActionName; data: number } {
  const full = ret & 0xffff0000;
  const found = ACTIONS.find(([value]) => value >>> 0 === full >>> 0);
  // The kernel treats an unknown action as KILL_PROCESS.
  return { action: found ? found[1] : 'KILL_PROCESS', data: ret & 0xffff };
}

/** Runs the filter on one call. */
export function runFilter(program: Buffer, data: SeccompData): FilterResult {
  checkFilter(program);
  const insns = decode(program);
  const mem = new Uint32Array(MEMORY_WORDS);
  const input = seccompData(data);
  let a = 0;
  let x = 0;
  let executed = 0;
  for (let pc = 0; pc < insns.length; pc++) {
    const insn = insns[pc] as Insn;
    executed++;
    const operand = src(insn.code) ? x : insn.k;
    switch (cls(insn.code)) {
      case 0x00: // ld
        if (insn.code === 0x20) a = input.readUInt32LE(insn.k);
        else if (insn.code === 0x80) a = SECCOMP_DATA_SIZE;
        else if (insn.code === 0x00) a = insn.k;
        else a = mem[insn.k] ?? 0;
        break;
      case 0x01: // ldx
        x = insn.code === 0x81 ? SECCOMP_DATA_SIZE : insn.code === 0x01 ? insn.k : (mem[insn.k] ?? 0);
        break;
      case 0x02:
        mem[insn.k] = a;
        break;
      case 0x03:
        mem[insn.k] = x;
        break;
      case 0x04: // alu
        switch (op(insn.code)) {
          case 0x00:
            a = (a + operand) >>> 0;
            break;
          case 0x10:
            a = (a - operand) >>> 0;
            break;
          case 0x20:
            a = Math.imul(a, operand) >>> 0;
            break;
          case 0x30:
            if (operand === 0) return { ret: 0, ...decodeReturn(0), executed };
            a = Math.floor(a / operand) >>> 0;
            break;
          case 0x40:
            a = (a | operand) >>> 0;
            break;
          case 0x50:
            a = (a & operand) >>> 0;
            break;
          case 0x60:
            a = operand >= 32 ? 0 : (a << operand) >>> 0;
            break;
          case 0x70:
            a = operand >= 32 ? 0 : a >>> operand;
            break;
          case 0x80:
            a = -a >>> 0;
            break;
          case 0xa0:
            a = (a ^ operand) >>> 0;
            break;
        }
        break;
      case 0x05: {
        // jmp
        if (op(insn.code) === 0x00) {
          pc += insn.k;
          break;
        }
        const b = operand >>> 0;
        const taken =
          op(insn.code) === 0x10
            ? a === b
            : op(insn.code) === 0x20
              ? a > b
              : op(insn.code) === 0x30
                ? a >= b
                : (a & b) !== 0;
        pc += taken ? insn.jt : insn.jf;
        break;
      }
      case 0x06: {
        const ret = (insn.code === 0x16 ? a : insn.k) >>> 0;
        return { ret, ...decodeReturn(ret), executed };
      }
      case 0x07:
        if (insn.code === 0x07) x = a;
        else a = x;
        break;
    }
  }
  throw new Error('fell off the end of the program');
}

/** A readable listing, for failure messages and docs. */
export function disassemble(program: Buffer): string[] {
  const names: Record<number, string> = { 0x15: 'jeq', 0x25: 'jgt', 0x35: 'jge', 0x45: 'jset' };
  return decode(program).map((insn, pc) => {
    const at = String(pc).padStart(4);
    const k = `0x${insn.k.toString(16)}`;
    if (insn.code === 0x20) return `${at}: ld [${insn.k}]`;
    if (insn.code === 0x54) return `${at}: and #${k}`;
    if (insn.code === 0x05) return `${at}: ja ${pc + 1 + insn.k}`;
    if (insn.code === 0x06) return `${at}: ret #${k}`;
    const name = names[insn.code];
    if (name) return `${at}: ${name} #${k}, ${pc + 1 + insn.jt}, ${pc + 1 + insn.jf}`;
    return `${at}: code 0x${insn.code.toString(16)} k ${k}`;
  });
}
