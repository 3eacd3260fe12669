/** Small fuzz targets with known bugs, for the fuzzer's own tests (engine.test.ts). */
import { BerthError } from '../../../src/common/errors.js';
import { invariant, type FuzzTarget } from '../../fuzz/target.js';

const toy = (name: string, run: (input: Buffer) => unknown, dictionary: string[] = []): FuzzTarget => ({
  name,
  description: name,
  dictionary,
  maxLength: 64,
  run,
});

/**
 * Throws a TypeError only for inputs starting with "FUZZ". The dictionary has the letters, but
 * putting four of them in the right places at once is out of reach of random mutation; with
 * coverage feedback each letter is a step kept in the corpus.
 */
export const magic = toy(
  'magic',
  (input) => {
    if (input[0] === 0x46) {
      if (input[1] === 0x55) {
        if (input[2] === 0x5a) {
          if (input[3] === 0x5a) throw new TypeError('magic reached');
        }
      }
    }
    if (input.length > 60) throw new BerthError('invalid-argument', 'too long (an allowed rejection)');
  },
  ['F', 'U', 'Z', 'Q'],
);

/** One bug per kind: a BerthError (allowed), a TypeError, a RangeError and a failed invariant. */
export const kinds = toy('kinds', (input) => {
  const text = input.toString('latin1');
  if (text.includes('B')) throw new BerthError('invalid-argument', 'bad');
  if (text.includes('T')) throw new TypeError('type');
  if (text.includes('R')) throw new RangeError('range');
  invariant(!text.includes('I'), () => 'invariant');
});

/** Never returns for an input containing "H". */
export const hang = toy('hang', (input) => {
  if (!input.includes(0x48)) return;
  for (let i = 0; ; i++) if (i < 0) return;
});

/** Allocates without bound for an input containing "M". */
export const hog = toy('hog', (input) => {
  if (!input.includes(0x4d)) return;
  const held: number[][] = [];
  for (;;) held.push(new Array<number>(1e6).fill(1));
});

/** Kills its own process for an input containing "K": a death no exception reports. */
export const suicide = toy('suicide', (input) => {
  if (input.includes(0x4b)) process.kill(process.pid, 'SIGKILL');
});
