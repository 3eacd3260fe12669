/**
 * Byte-level mutations in the style of libFuzzer and AFL's havoc stage: bit flips, interesting
 * bytes and numbers, inserted, deleted, duplicated and overwritten ranges, dictionary tokens and
 * splices with another corpus entry, stacked a few at a time.
 */
import type { Rng } from './rng.js';

export interface MutationContext {
  rng: Rng;
  /** The target's tokens, as bytes. */
  dictionary: readonly Buffer[];
  /** Other inputs to splice with. */
  corpus: readonly Buffer[];
  maxLength: number;
}

const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x20, 0x0a, 0x0d, 0x09, 0x22, 0x5c, 0x2f, 0x30];
const INTERESTING_NUMBERS = [
  '0',
  '-0',
  '-1',
  '1',
  '255',
  '256',
  '65535',
  '65536',
  '2147483647',
  '-2147483648',
  '4294967296',
  '9007199254740991',
  '9007199254740993',
  '18446744073709551615',
  '1e309',
  '-1e309',
  '1.5',
  '0x10',
  '077',
  'NaN',
  'Infinity',
  '',
];

type Mutation = (input: Buffer, ctx: MutationContext) => Buffer;

const join = (...parts: Buffer[]): Buffer => Buffer.concat(parts);

const flipBit: Mutation = (input, { rng }) => {
  if (input.length === 0) return Buffer.from([rng.int(256)]);
  const copy = Buffer.from(input);
  const at = rng.int(copy.length);
  copy[at] = (copy[at] as number) ^ (1 << rng.int(8));
  return copy;
};

const setByte: Mutation = (input, { rng }) => {
  if (input.length === 0) return Buffer.from([rng.int(256)]);
  const copy = Buffer.from(input);
  copy[rng.int(copy.length)] = rng.chance(0.5) ? rng.pick(INTERESTING_BYTES) : rng.int(256);
  return copy;
};

const insertBytes: Mutation = (input, { rng, maxLength }) => {
  const at = rng.int(input.length + 1);
  const length = rng.length(Math.max(1, maxLength - input.length));
  const fill = rng.chance(0.5) ? Buffer.alloc(length, rng.pick(INTERESTING_BYTES)) : randomBytes(rng, length);
  return join(input.subarray(0, at), fill, input.subarray(at));
};

const deleteRange: Mutation = (input, { rng }) => {
  if (input.length === 0) return input;
  const at = rng.int(input.length);
  const length = rng.length(input.length - at);
  return join(input.subarray(0, at), input.subarray(at + length));
};

/** A range repeated, sometimes thousands of times: deep nesting and long runs come from here. */
const duplicateRange: Mutation = (input, { rng, maxLength }) => {
  if (input.length === 0) return input;
  const from = rng.int(input.length);
  const length = rng.length(Math.min(64, input.length - from));
  const piece = input.subarray(from, from + length);
  const room = Math.floor((maxLength - input.length) / piece.length);
  if (room < 1) return input;
  const times = Math.min(room, rng.chance(0.9) ? rng.between(1, 4) : rng.length(8192));
  const at = rng.chance(0.5) ? from : rng.int(input.length + 1);
  return join(
    input.subarray(0, at),
    Buffer.concat(Array.from({ length: times }, () => piece)),
    input.subarray(at),
  );
};

const overwriteRange: Mutation = (input, { rng }) => {
  if (input.length < 2) return input;
  const from = rng.int(input.length);
  const to = rng.int(input.length);
  const length = Math.min(rng.length(input.length), input.length - from, input.length - to);
  const copy = Buffer.from(input);
  input.copy(copy, to, from, from + length);
  return copy;
};

const insertToken: Mutation = (input, { rng, dictionary }) => {
  if (dictionary.length === 0) return input;
  const at = rng.int(input.length + 1);
  return join(input.subarray(0, at), rng.pick(dictionary), input.subarray(at));
};

const overwriteToken: Mutation = (input, { rng, dictionary }) => {
  if (dictionary.length === 0) return input;
  const token = rng.pick(dictionary);
  const at = rng.int(input.length + 1);
  return join(input.subarray(0, at), token, input.subarray(at + token.length));
};

/** Replace a run of digits (or insert at a random place) with a boundary number. */
const number: Mutation = (input, { rng }) => {
  const text = input.toString('latin1');
  const runs = [...text.matchAll(/-?\d+/g)];
  const replacement = Buffer.from(rng.pick(INTERESTING_NUMBERS), 'latin1');
  if (runs.length === 0) {
    const at = rng.int(input.length + 1);
    return join(input.subarray(0, at), replacement, input.subarray(at));
  }
  const run = rng.pick(runs);
  const start = run.index;
  return join(input.subarray(0, start), replacement, input.subarray(start + run[0].length));
};

const splice: Mutation = (input, { rng, corpus }) => {
  if (corpus.length === 0) return input;
  const other = rng.pick(corpus);
  const cut = rng.int(input.length + 1);
  const from = rng.int(other.length + 1);
  if (rng.chance(0.5)) return join(input.subarray(0, cut), other.subarray(from));
  // Insert a piece of the other input.
  const length = rng.length(other.length - from);
  return join(input.subarray(0, cut), other.subarray(from, from + length), input.subarray(cut));
};

const truncate: Mutation = (input, { rng }) => input.subarray(0, rng.int(input.length + 1));

const swapRanges: Mutation = (input, { rng }) => {
  if (input.length < 4) return input;
  const a = rng.int(input.length);
  const b = rng.int(input.length);
  const [first, second] = a < b ? [a, b] : [b, a];
  const length = Math.min(rng.length(input.length), second - first, input.length - second);
  if (length <= 0) return input;
  return join(
    input.subarray(0, first),
    input.subarray(second, second + length),
    input.subarray(first + length, second),
    input.subarray(first, first + length),
    input.subarray(second + length),
  );
};

function randomBytes(rng: Rng, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  // Printable ASCII half the time: the targets are mostly text parsers.
  const printable = rng.chance(0.5);
  for (let i = 0; i < length; i++) bytes[i] = printable ? rng.between(0x20, 0x7e) : rng.int(256);
  return bytes;
}

const MUTATIONS: Mutation[] = [
  flipBit,
  setByte,
  insertBytes,
  deleteRange,
  deleteRange,
  duplicateRange,
  overwriteRange,
  insertToken,
  insertToken,
  overwriteToken,
  number,
  splice,
  truncate,
  swapRanges,
];

/** One to eight stacked byte mutations of `input`, cut to the maximum length. */
export function mutateBytes(input: Buffer, ctx: MutationContext): Buffer {
  let result = input;
  const rounds = 1 << ctx.rng.int(4);
  for (let i = 0; i < rounds; i++) {
    result = ctx.rng.pick(MUTATIONS)(result, ctx);
    if (result.length > ctx.maxLength) result = result.subarray(0, ctx.maxLength);
  }
  return result;
}
