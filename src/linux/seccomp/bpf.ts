/**
 * Classic BPF as the kernel's seccomp filter accepts it: the opcodes the compiler emits, the packed
 * `struct sock_filter` encoding (u16 code, u8 jt, u8 jf, u32 k; little-endian on x86), and an assembler
 * with labels that resolves jumps. Conditional jumps reach at most 255 instructions forward; the
 * assembler inserts a trampoline after any jump whose target is farther (a copy of the target when it is
 * a `ret`, which also saves an executed instruction, else a `ja` with its 32-bit offset).
 */
import { internal } from '../../common/errors.js';

/** Opcodes (class | size | mode, or class | op | source). */
export const BPF = {
  LD_W_ABS: 0x20, // A = *(u32 *)(seccomp_data + k)
  ALU_AND_K: 0x54, // A &= k
  JA: 0x05, // pc += k
  JEQ_K: 0x15, // pc += (A == k) ? jt : jf
  JGT_K: 0x25, // unsigned A > k
  JGE_K: 0x35, // unsigned A >= k
  RET_K: 0x06, // return k
} as const;

/** Bytes per instruction, and the kernel's limit on a filter's length (BPF_MAXINSNS). */
export const INSTRUCTION_SIZE = 8;
export const MAX_INSTRUCTIONS = 4096;

/** A position in the program, placed with `Assembler.place`. */
export class Label {
  private static next = 0;
  readonly id = Label.next++;
}

type Item =
  | { kind: 'stmt'; code: number; k: number }
  | { kind: 'jump'; code: number; k: number; jt: Label; jf: Label }
  | { kind: 'ja'; target: Label }
  | { kind: 'ret'; k: number }
  | { kind: 'label'; label: Label };

export class Assembler {
  private items: Item[] = [];
  /** `ret k` instructions shared by every jump to them, emitted by `flushReturns`. */
  private pendingReturns = new Map<number, Label>();

  label(): Label {
    return new Label();
  }

  place(label: Label): void {
    this.items.push({ kind: 'label', label });
  }

  load(offset: number): void {
    this.items.push({ kind: 'stmt', code: BPF.LD_W_ABS, k: offset });
  }

  and(k: number): void {
    this.items.push({ kind: 'stmt', code: BPF.ALU_AND_K, k });
  }

  /** A conditional jump on A compared with k: to jt when true, to jf when false. */
  jump(code: number, k: number, jt: Label, jf: Label): void {
    this.items.push({ kind: 'jump', code, k, jt, jf });
  }

  ja(target: Label): void {
    this.items.push({ kind: 'ja', target });
  }

  ret(k: number): void {
    this.items.push({ kind: 'ret', k: k >>> 0 });
  }

  /** A label at a shared `ret k`; it is emitted at the next `flushReturns`. */
  returnLabel(k: number): Label {
    const key = k >>> 0;
    let label = this.pendingReturns.get(key);
    if (label === undefined) {
      label = new Label();
      this.pendingReturns.set(key, label);
    }
    return label;
  }

  /** Emits the shared returns requested so far (call it after code that cannot fall through). */
  flushReturns(): void {
    for (const [k, label] of this.pendingReturns) {
      this.place(label);
      this.ret(k);
    }
    this.pendingReturns.clear();
  }

  /** Resolves labels and long jumps and encodes the program. */
  assemble(): Buffer {
    this.flushReturns();
    const items = this.resolveLongJumps();
    const positions = labelPositions(items);
    const instructions = items.filter((item) => item.kind !== 'label');
    const out = Buffer.alloc(instructions.length * INSTRUCTION_SIZE);
    instructions.forEach((item, pc) => {
      let code: number;
      let jt = 0;
      let jf = 0;
      let k: number;
      switch (item.kind) {
        case 'stmt':
          code = item.code;
          k = item.k;
          break;
        case 'ret':
          code = BPF.RET_K;
          k = item.k;
          break;
        case 'ja':
          code = BPF.JA;
          k = distance(positions, pc, item.target);
          break;
        case 'jump':
          code = item.code;
          k = item.k;
          jt = distance(positions, pc, item.jt);
          jf = distance(positions, pc, item.jf);
          if (jt > 255 || jf > 255) throw internal('seccomp: a jump was left out of range');
          break;
      }
      const at = pc * INSTRUCTION_SIZE;
      out.writeUInt16LE(code, at);
      out.writeUInt8(jt, at + 2);
      out.writeUInt8(jf, at + 3);
      out.writeUInt32LE(k >>> 0, at + 4);
    });
    return out;
  }

  /**
   * Inserts trampolines until every conditional jump is in range. Each pass only adds instructions, so
   * a jump in range can fall out of range and gets fixed in a later pass; the loop ends because every
   * jump is fixed at most once per target.
   */
  private resolveLongJumps(): Item[] {
    let items = this.items;
    for (;;) {
      const positions = labelPositions(items);
      const firstInstruction = firstInstructionAt(items);
      const next: Item[] = [];
      let changed = false;
      let pc = 0;
      for (const item of items) {
        if (item.kind === 'label') {
          next.push(item);
          continue;
        }
        if (item.kind !== 'jump') {
          next.push(item);
          pc++;
          continue;
        }
        const far = (target: Label): boolean => distance(positions, pc, target) > 255;
        const trampolines = new Map<Label, Label>();
        for (const target of [item.jt, item.jf]) {
          if (far(target) && !trampolines.has(target)) trampolines.set(target, new Label());
        }
        if (trampolines.size === 0) {
          next.push(item);
          pc++;
          continue;
        }
        changed = true;
        next.push({
          ...item,
          jt: trampolines.get(item.jt) ?? item.jt,
          jf: trampolines.get(item.jf) ?? item.jf,
        });
        for (const [target, label] of trampolines) {
          next.push({ kind: 'label', label });
          const destination = firstInstruction.get(target);
          next.push(destination?.kind === 'ret' ? { kind: 'ret', k: destination.k } : { kind: 'ja', target });
        }
        pc++;
      }
      items = next;
      if (!changed) return items;
    }
  }
}

function labelPositions(items: Item[]): Map<Label, number> {
  const positions = new Map<Label, number>();
  let pc = 0;
  for (const item of items) {
    if (item.kind === 'label') positions.set(item.label, pc);
    else pc++;
  }
  return positions;
}

/** The instruction each label points at. */
function firstInstructionAt(items: Item[]): Map<Label, Item> {
  const result = new Map<Label, Item>();
  let waiting: Label[] = [];
  for (const item of items) {
    if (item.kind === 'label') {
      waiting.push(item.label);
      continue;
    }
    for (const label of waiting) result.set(label, item);
    waiting = [];
  }
  return result;
}

/** Offset from the instruction after `pc` to `target`; classic BPF only jumps forward. */
function distance(positions: Map<Label, number>, pc: number, target: Label): number {
  const to = positions.get(target);
  if (to === undefined) throw internal(`seccomp: label ${target.id} was never placed`);
  const offset = to - pc - 1;
  if (offset < 0) throw internal(`seccomp: backward jump to label ${target.id}`);
  return offset;
}
