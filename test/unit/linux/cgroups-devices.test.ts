import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import type { DeviceCgroup } from '../../../src/oci/runtime-spec.js';
import {
  ACCESS,
  deviceAccessAllowed,
  emulateDeviceRules,
  normalizeRules,
  v1DeviceWrites,
} from '../../../src/linux/cgroups/devices.js';
import {
  compileDeviceState,
  deviceProgram,
  encodeInstructions,
} from '../../../src/linux/cgroups/device-bpf.js';

const { m, r, w } = ACCESS;

// Operations by opcode (code & 0xf0) for the ALU and JMP instruction classes.
const ALU_OPS: Record<number, (a: bigint, b: bigint, shiftMask: bigint) => bigint> = {
  0x00: (a, b) => a + b,
  0x10: (a, b) => a - b,
  0x40: (a, b) => a | b,
  0x50: (a, b) => a & b,
  0x60: (a, b, shiftMask) => a << (b & shiftMask),
  0x70: (a, b, shiftMask) => a >> (b & shiftMask),
  0xa0: (a, b) => a ^ b,
  0xb0: (_, b) => b,
};
const JUMP_OPS: Record<number, (a: bigint, b: bigint) => boolean> = {
  0x10: (a, b) => a === b,
  0x20: (a, b) => a > b,
  0x30: (a, b) => a >= b,
  0x40: (a, b) => (a & b) !== 0n,
  0x50: (a, b) => a !== b,
};

/**
 * A small eBPF interpreter with the verifier's basic checks: known opcodes only, no reads of
 * unwritten registers, loads only from the context, forward jumps inside the program, an exit
 * with r0 set. Runs little-endian struct bpf_insn bytes as the kernel would for a device access.
 */
function runProgram(
  bytes: Buffer,
  ctx: { type: number; access: number; major: number; minor: number },
): number {
  assert.equal(bytes.length % 8, 0, 'whole instructions');
  const count = bytes.length / 8;
  const mask32 = 0xffffffffn;
  const mask64 = (1n << 64n) - 1n;
  const regs: Array<bigint | 'ctx' | undefined> = new Array(11).fill(undefined);
  regs[1] = 'ctx';
  regs[10] = 0n;
  const ctxWords = [((ctx.access << 16) | ctx.type) >>> 0, ctx.major >>> 0, ctx.minor >>> 0];
  const value = (reg: number): bigint => {
    const v = regs[reg];
    assert.ok(v !== undefined, `r${reg} read before it was written`);
    assert.ok(v !== 'ctx', `r${reg} is the context pointer, not a number`);
    return v;
  };
  let pc = 0;
  for (let steps = 0; steps < 10_000; steps++) {
    assert.ok(pc >= 0 && pc < count, `pc ${pc} outside the program (fell off the end?)`);
    const at = pc * 8;
    const code = bytes.readUInt8(at);
    const dst = bytes.readUInt8(at + 1) & 0x0f;
    const src = bytes.readUInt8(at + 1) >> 4;
    const off = bytes.readInt16LE(at + 2);
    const imm = bytes.readInt32LE(at + 4);
    const cls = code & 0x07;
    const op = code & 0xf0;
    const useReg = (code & 0x08) !== 0;
    assert.ok(dst <= 10 && src <= 10, 'register numbers');
    pc++;
    if (cls === 0x01) {
      assert.equal(code, 0x61, 'only 32-bit loads (BPF_LDX|BPF_MEM|BPF_W)');
      assert.equal(regs[src], 'ctx', 'loads only from the context');
      assert.ok(off >= 0 && off <= 8 && off % 4 === 0, `context offset ${off}`);
      regs[dst] = BigInt(ctxWords[off / 4] ?? 0);
    } else if (cls === 0x04 || cls === 0x07) {
      const is32 = cls === 0x04;
      const width = is32 ? mask32 : mask64;
      const operand = (useReg ? value(src) : BigInt.asUintN(64, BigInt(imm))) & width;
      const current = op === 0xb0 ? 0n : value(dst) & width;
      const alu = ALU_OPS[op];
      assert.ok(alu !== undefined, `unsupported ALU opcode 0x${code.toString(16)}`);
      const result = alu(current, operand, is32 ? 31n : 63n);
      regs[dst] = result & width; // ALU32 results are zero-extended
    } else if (cls === 0x05 || cls === 0x06) {
      if (code === 0x95) {
        return Number(value(0) & mask32);
      }
      const width = cls === 0x06 ? mask32 : mask64;
      let taken: boolean;
      if (op === 0x00) {
        assert.equal(cls, 0x05, 'JA is a JMP-class instruction');
        taken = true;
      } else {
        const left = value(dst) & width;
        const right = (useReg ? value(src) : BigInt.asUintN(64, BigInt(imm))) & width;
        const compare = JUMP_OPS[op];
        assert.ok(compare !== undefined, `unsupported jump opcode 0x${code.toString(16)}`);
        taken = compare(left, right);
      }
      assert.ok(off >= 0, 'no backward jumps');
      if (taken) pc += off;
    } else {
      assert.fail(`unsupported instruction class ${cls}`);
    }
  }
  assert.fail('program did not exit');
}

const TYPE = { b: 1, c: 2 } as const;
const allowed = (
  rules: DeviceCgroup[],
  type: 'b' | 'c',
  major: number,
  minor: number,
  access: number,
): boolean => runProgram(deviceProgram(rules), { type: TYPE[type], access, major, minor }) === 1;

// Docker's default rule list for a container.
const DOCKER_DEFAULT: DeviceCgroup[] = [
  { allow: false, access: 'rwm' },
  { allow: true, type: 'c', major: null, minor: null, access: 'm' },
  { allow: true, type: 'b', major: null, minor: null, access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 136, minor: null, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
  { allow: false, type: 'c', major: 10, minor: 200, access: 'rwm' },
];

test('instruction encoding: known byte patterns of struct bpf_insn (little-endian)', () => {
  const program = compileDeviceState({ defaultAllow: false, exceptions: [] });
  const bytes = encodeInstructions(program, 'LE');
  const hex = (index: number): string => bytes.subarray(index * 8, index * 8 + 8).toString('hex');
  assert.equal(hex(0), '6112000000000000'); // r2 = *(u32 *)(r1 + 0)
  assert.equal(hex(4), '6114040000000000'); // r4 = *(u32 *)(r1 + 4)
  assert.equal(hex(5), '6115080000000000'); // r5 = *(u32 *)(r1 + 8)
  assert.equal(hex(2), '7403000010000000'); // w3 >>= 16
  assert.equal(hex(1), 'bc23000000000000'); // w3 = w2
  assert.equal(hex(3), '54020000ffff0000'); // w2 &= 0xffff
  assert.equal(hex(6), 'b400000000000000'); // w0 = 0
  assert.equal(hex(7), '9500000000000000'); // exit
  // Big-endian hosts swap the register nibbles and the byte order of off and imm.
  const be = encodeInstructions([{ code: 0x56, dst: 4, src: 0, off: 3, imm: 0x12345678 }], 'BE');
  assert.equal(be.toString('hex'), '5640000312345678');
  // Device numbers above 2^31 are encoded as the same 32 bits.
  const high = encodeInstructions([{ code: 0x56, dst: 4, src: 0, off: 1, imm: 0xfffffffe | 0 }], 'LE');
  assert.equal(high.toString('hex'), '56040100feffffff');
});

test('Docker default rules: allowed and denied accesses', () => {
  assert.equal(allowed(DOCKER_DEFAULT, 'c', 1, 3, r | w), true); // /dev/null
  assert.equal(allowed(DOCKER_DEFAULT, 'c', 1, 5, r), true); // /dev/zero
  assert.equal(allowed(DOCKER_DEFAULT, 'c', 136, 7, r | w), true); // a pty
  assert.equal(allowed(DOCKER_DEFAULT, 'c', 1, 1, r), false); // /dev/mem
  assert.equal(allowed(DOCKER_DEFAULT, 'c', 1, 1, m), true); // mknod of any char device
  assert.equal(allowed(DOCKER_DEFAULT, 'b', 8, 0, m), true);
  assert.equal(allowed(DOCKER_DEFAULT, 'b', 8, 0, r), false); // reading a disk
  assert.equal(allowed(DOCKER_DEFAULT, 'b', 8, 0, r | m), false); // part of the access is not allowed
  assert.equal(allowed(DOCKER_DEFAULT, 'c', 10, 200, r), false);
});

test('no rules and an empty list deny everything; allow-all with a hole', () => {
  assert.equal(allowed([], 'c', 1, 3, r), false);
  const holes: DeviceCgroup[] = [
    { allow: true, access: 'rwm' },
    { allow: false, type: 'b', major: 8, minor: null, access: 'w' },
  ];
  assert.equal(allowed(holes, 'c', 1, 3, r | w | m), true);
  assert.equal(allowed(holes, 'b', 8, 1, r), true);
  assert.equal(allowed(holes, 'b', 8, 1, w), false);
  assert.equal(allowed(holes, 'b', 8, 1, r | w), false); // any overlap with a deny exception denies
  assert.equal(allowed(holes, 'b', 9, 1, w), true);
});

test('later rules refine earlier ones exactly as v1 writes would', () => {
  // Allow then take back one access bit of the same device.
  const rules: DeviceCgroup[] = [
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: false, type: 'c', major: 1, minor: 3, access: 'w' },
  ];
  assert.equal(allowed(rules, 'c', 1, 3, r), true);
  assert.equal(allowed(rules, 'c', 1, 3, w), false);
  assert.equal(allowed(rules, 'c', 1, 3, r | m), true);
  // The kernel removes only an exception for exactly the same device, so a wildcard deny does
  // not take back a specific allow: this is v1's behaviour and v2 must match it.
  const wildcard: DeviceCgroup[] = [
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: false, type: 'c', major: null, minor: null, access: 'rwm' },
  ];
  assert.equal(allowed(wildcard, 'c', 1, 3, r), true);
  // An "a" rule resets everything before it.
  const reset: DeviceCgroup[] = [
    { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
    { allow: false, type: 'a', access: 'rwm' },
    { allow: true, type: 'c', major: 1, minor: 5, access: 'r' },
  ];
  assert.equal(allowed(reset, 'c', 1, 3, r), false);
  assert.equal(allowed(reset, 'c', 1, 5, r), true);
  assert.equal(allowed(reset, 'c', 1, 5, w), false);
  assert.deepEqual(emulateDeviceRules(normalizeRules(reset)), {
    defaultAllow: false,
    exceptions: [{ type: 'c', major: 1, minor: 5, access: r }],
  });
});

test('large device numbers and block/char separation', () => {
  const rules: DeviceCgroup[] = [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'b', major: 4095, minor: 0xfffff, access: 'rw' },
  ];
  assert.equal(allowed(rules, 'b', 4095, 0xfffff, r | w), true);
  assert.equal(allowed(rules, 'c', 4095, 0xfffff, r), false);
  assert.equal(allowed(rules, 'b', 4095, 0xffffe, r), false);
  const huge: DeviceCgroup[] = [{ allow: true, type: 'c', major: 0xfffffffe, minor: 1, access: 'r' }];
  assert.equal(allowed(huge, 'c', 0xfffffffe, 1, r), true);
  assert.equal(allowed(huge, 'c', 0x7ffffffe, 1, r), false);
});

test('the program agrees with the kernel model for random rule lists', () => {
  // xorshift32: deterministic, and every bit of it varies.
  let seed = 0x9e3779b9;
  const random = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const majors = [1, 8, 136];
  const minors = [0, 3, 5];
  const accesses = ['r', 'w', 'm', 'rw', 'rwm', 'wm'];
  for (let round = 0; round < 200; round++) {
    const rules: DeviceCgroup[] = [];
    for (let i = random(6); i >= 0; i--) {
      if (random(8) === 0) {
        rules.push({ allow: random(2) === 0, type: 'a', access: 'rwm' });
        continue;
      }
      rules.push({
        allow: random(2) === 0,
        type: random(2) === 0 ? 'b' : 'c',
        major: random(4) === 0 ? null : majors[random(majors.length)],
        minor: random(3) === 0 ? null : minors[random(minors.length)],
        access: accesses[random(accesses.length)],
      });
    }
    const state = emulateDeviceRules(normalizeRules(rules));
    const program = deviceProgram(rules);
    for (const type of ['b', 'c'] as const)
      for (const major of [...majors, 2])
        for (const minor of [...minors, 7])
          for (let access = 1; access <= 7; access++) {
            const got = runProgram(program, { type: TYPE[type], access, major, minor }) === 1;
            assert.equal(
              got,
              deviceAccessAllowed(state, type, major, minor, access),
              JSON.stringify({ rules, type, major, minor, access }),
            );
          }
  }
});

test('v1 writes: deny-all first, then the rules in order', () => {
  assert.deepEqual(v1DeviceWrites(normalizeRules(DOCKER_DEFAULT.slice(0, 4))), [
    { file: 'devices.deny', line: 'a' },
    { file: 'devices.deny', line: 'a' },
    { file: 'devices.allow', line: 'c *:* m' },
    { file: 'devices.allow', line: 'b *:* m' },
    { file: 'devices.allow', line: 'c 1:3 rwm' },
  ]);
  assert.deepEqual(
    v1DeviceWrites(normalizeRules([{ allow: true, type: 'c', major: -1, minor: 2, access: 'mw' }])),
    [
      { file: 'devices.deny', line: 'a' },
      { file: 'devices.allow', line: 'c *:2 wm' },
    ],
  );
});

test('rules that cannot be expressed are refused, naming the rule', () => {
  const refused = (rules: DeviceCgroup[], pattern: RegExp): void => {
    assert.throws(
      () => normalizeRules(rules),
      (err: unknown) =>
        err instanceof BerthError && err.kind === 'invalid-argument' && pattern.test(err.message),
    );
  };
  refused(
    [
      { allow: true, access: 'rwm' },
      { allow: true, type: 'a', major: 1, access: 'rwm' },
    ],
    /devices\[1\]/,
  );
  refused([{ allow: true, type: 'a', access: 'r' }], /devices\[0\]: a rule for all device types/);
  refused([{ allow: true, type: 'c', major: 1, minor: 3, access: 'rwx' }], /devices\[0\]\.access/);
  refused([{ allow: true, type: 'c', major: 1.5, access: 'r' }], /devices\[0\]\.major/);
  refused([{ allow: true, type: 'x' as 'c', access: 'r' }], /devices\[0\]\.type/);
});
