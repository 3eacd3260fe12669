import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Assembler, BPF } from '../../../src/linux/seccomp/bpf.js';
import { checkFilter, decode, runFilter } from '../../helpers/bpf-interpreter.js';

const ALLOW = 0x7fff0000;
const ERRNO = (e: number): number => 0x00050000 | e;

test('instructions are packed as little-endian struct sock_filter', () => {
  const asm = new Assembler();
  const yes = asm.label();
  const no = asm.label();
  asm.load(4);
  asm.jump(BPF.JEQ_K, 0xc000003e, yes, no);
  asm.place(yes);
  asm.ret(ALLOW);
  asm.place(no);
  asm.ret(0);
  const program = asm.assemble();
  assert.deepEqual(
    [...program],
    [
      [0x20, 0x00, 0, 0, 4, 0, 0, 0],
      [0x15, 0x00, 0, 1, 0x3e, 0x00, 0x00, 0xc0],
      [0x06, 0x00, 0, 0, 0x00, 0x00, 0xff, 0x7f],
      [0x06, 0x00, 0, 0, 0, 0, 0, 0],
    ].flat(),
  );
});

/** A conditional jump over `gap` filler instructions to each kind of target. */
function farJumps(gap: number): Buffer {
  const asm = new Assembler();
  const toCode = asm.label();
  const toShared = asm.returnLabel(ERRNO(7));
  const next = asm.label();
  asm.load(0);
  asm.jump(BPF.JEQ_K, 1, toCode, next);
  asm.place(next);
  const second = asm.label();
  asm.jump(BPF.JEQ_K, 2, toShared, second);
  asm.place(second);
  const filler = asm.label();
  asm.jump(BPF.JGE_K, 3, filler, asm.returnLabel(ALLOW));
  asm.place(filler);
  for (let i = 0; i < gap; i++) asm.and(0xffffffff);
  asm.ret(ERRNO(9));
  asm.place(toCode);
  asm.load(16);
  asm.and(0xff);
  asm.ret(0x7ff00000);
  return asm.assemble();
}

test('jumps beyond 255 instructions get trampolines: a copy of a return, else a long ja', () => {
  for (const gap of [10, 252, 253, 254, 255, 256, 600, 3000]) {
    const program = farJumps(gap);
    checkFilter(program);
    const run = (nr: number): number => runFilter(program, { nr, arch: 0 }).ret;
    assert.equal(run(1), 0x7ff00000, `gap ${gap}: jump to code`);
    assert.equal(run(2), ERRNO(7), `gap ${gap}: jump to a shared return`);
    assert.equal(run(3), ERRNO(9), `gap ${gap}: fall into the filler`);
    assert.equal(run(0), ALLOW, `gap ${gap}: jump to the other shared return`);
    const codes = decode(program).map((insn) => insn.code);
    if (gap >= 300) assert.ok(codes.includes(BPF.JA), `gap ${gap}: a long jump was inserted`);
    if (gap <= 200) assert.ok(!codes.includes(BPF.JA), `gap ${gap}: no trampoline needed`);
  }
});

test('the interpreter refuses what the kernel refuses', () => {
  const insn = (code: number, jt: number, jf: number, k: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeUInt16LE(code, 0);
    b.writeUInt8(jt, 2);
    b.writeUInt8(jf, 3);
    b.writeUInt32LE(k, 4);
    return b;
  };
  const ret = insn(0x06, 0, 0, ALLOW);
  assert.throws(() => checkFilter(Buffer.alloc(0)), /length/);
  assert.throws(() => checkFilter(insn(0x20, 0, 0, 0)), /not a return/);
  assert.throws(() => checkFilter(Buffer.concat([insn(0x20, 0, 0, 2), ret])), /offset/);
  assert.throws(() => checkFilter(Buffer.concat([insn(0x20, 0, 0, 64), ret])), /offset/);
  assert.throws(() => checkFilter(Buffer.concat([insn(0x15, 1, 0, 0), ret])), /out of the program/);
  assert.throws(() => checkFilter(Buffer.concat([insn(0x28, 0, 0, 0), ret])), /not allowed/);
  checkFilter(Buffer.concat([insn(0x20, 0, 0, 60), ret]));
});
