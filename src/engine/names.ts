import { randomInt } from 'node:crypto';
import { invalidArgument } from '../common/errors.js';

/** Container names are generated like Docker's: `<adjective>_<surname>`, with a number on a clash. */
const ADJECTIVES = [
  'agile',
  'amazing',
  'bold',
  'brave',
  'bright',
  'busy',
  'calm',
  'careful',
  'clever',
  'cool',
  'curious',
  'daring',
  'eager',
  'elegant',
  'epic',
  'fervent',
  'festive',
  'focused',
  'friendly',
  'gallant',
  'gentle',
  'happy',
  'hardy',
  'honest',
  'hopeful',
  'jolly',
  'keen',
  'kind',
  'lively',
  'loyal',
  'lucid',
  'merry',
  'modest',
  'nimble',
  'noble',
  'patient',
  'peaceful',
  'polite',
  'practical',
  'proud',
  'quick',
  'quiet',
  'relaxed',
  'serene',
  'sharp',
  'steady',
  'stoic',
  'sturdy',
  'sunny',
  'swift',
  'tender',
  'tidy',
  'trusty',
  'upbeat',
  'vibrant',
  'vigilant',
  'warm',
  'wise',
  'witty',
  'zealous',
];

const SURNAMES = [
  'agnesi',
  'babbage',
  'bardeen',
  'bohr',
  'boole',
  'cannon',
  'carson',
  'cerf',
  'curie',
  'darwin',
  'dijkstra',
  'einstein',
  'euler',
  'faraday',
  'fermat',
  'fermi',
  'franklin',
  'gauss',
  'goldberg',
  'goodall',
  'hamilton',
  'hawking',
  'hopper',
  'hypatia',
  'johnson',
  'kepler',
  'knuth',
  'lamarr',
  'lamport',
  'liskov',
  'lovelace',
  'maxwell',
  'mcclintock',
  'meitner',
  'mendel',
  'newton',
  'noether',
  'pascal',
  'pasteur',
  'perlman',
  'planck',
  'ramanujan',
  'ritchie',
  'shannon',
  'sinoussi',
  'somerville',
  'tesla',
  'thompson',
  'torvalds',
  'turing',
  'volta',
  'wilson',
  'wozniak',
  'wu',
  'yalow',
  'yonath',
];

export function generateName(taken: (name: string) => boolean): string {
  for (let attempt = 0; attempt < 10; attempt++) {
    const name = `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${SURNAMES[randomInt(SURNAMES.length)]}`;
    const candidate = attempt === 0 ? name : `${name}${randomInt(10)}`;
    if (!taken(candidate)) return candidate;
  }
  for (;;) {
    const candidate = `berth_${randomInt(1_000_000)}`;
    if (!taken(candidate)) return candidate;
  }
}

const NAME_PATTERN = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** Docker's rule for user-chosen names; returns the name without the leading slash. */
export function validateName(name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw invalidArgument(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  return name.replace(/^\//, '');
}
