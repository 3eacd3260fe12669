/**
 * Structure-aware mutation of JSON documents: values replaced by others of every type (and by
 * pieces of the same document), keys added from the target's dictionary, removed or nested, array
 * elements repeated. Inputs that are not JSON are left to the byte mutators.
 */
import type { Rng } from './rng.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Holder = { parent: Json[] | { [key: string]: Json }; key: string | number };

const SCALARS: Json[] = [
  null,
  true,
  false,
  0,
  -0,
  -1,
  1,
  1.5,
  65536,
  2 ** 31,
  2 ** 32,
  2 ** 53 + 2,
  2 ** 64,
  -(2 ** 63),
  1e308,
  '',
  ' ',
  'x',
  '0',
  '-1',
  'true',
  'null',
  '/',
  '..',
  '../..',
  '\0',
  '\n',
  '\u{1F600}',
  '\uD800',
  '=',
  ':',
  'a=b',
  'sha256:',
  `sha256:${'a'.repeat(64)}`,
];

/** Set an own property even when the key is `__proto__` (plain assignment would change the prototype). */
function setOwn(target: { [key: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function holders(root: Json): Holder[] {
  const found: Holder[] = [];
  const walk = (node: Json, depth: number): void => {
    if (depth > 64 || node === null || typeof node !== 'object') return;
    if (Array.isArray(node))
      node.forEach((child, i) => {
        found.push({ parent: node, key: i });
        walk(child, depth + 1);
      });
    else
      for (const [key, child] of Object.entries(node)) {
        found.push({ parent: node, key });
        walk(child, depth + 1);
      }
  };
  walk(root, 0);
  return found;
}

const get = (h: Holder): Json =>
  Array.isArray(h.parent) ? (h.parent[h.key as number] as Json) : (h.parent[h.key] as Json);

function set(h: Holder, value: Json): void {
  if (Array.isArray(h.parent)) h.parent[h.key as number] = value;
  else setOwn(h.parent, String(h.key), value);
}

const clone = (value: Json): Json => JSON.parse(JSON.stringify(value)) as Json;

function randomValue(rng: Rng, dictionary: readonly string[], sample: Json[]): Json {
  const roll = rng.int(6);
  if (roll === 0 && dictionary.length > 0) return rng.pick(dictionary);
  if (roll === 1 && sample.length > 0) return clone(rng.pick(sample));
  if (roll === 2) return rng.chance(0.5) ? [] : {};
  if (roll === 3) return 'a'.repeat(rng.length(70_000));
  return rng.pick(SCALARS);
}

/** One to four structural changes of the JSON in `input`; undefined when it is not JSON. */
export function mutateJson(input: Buffer, rng: Rng, dictionary: readonly string[]): Buffer | undefined {
  let root: Json;
  try {
    root = JSON.parse(input.toString('utf8')) as Json;
  } catch {
    return undefined;
  }
  for (let round = rng.between(1, 4); round > 0; round--) {
    const all = holders(root);
    const sample = all.map(get);
    if (all.length === 0 || rng.chance(0.05)) {
      root = rng.chance(0.5) ? randomValue(rng, dictionary, sample) : [root];
      continue;
    }
    const holder = rng.pick(all);
    const value = get(holder);
    switch (rng.int(7)) {
      case 0:
        if (Array.isArray(holder.parent)) holder.parent.splice(holder.key as number, 1);
        else delete holder.parent[holder.key];
        break;
      case 1: {
        // A new key next to this one.
        if (Array.isArray(holder.parent)) holder.parent.push(randomValue(rng, dictionary, sample));
        else
          setOwn(
            holder.parent,
            dictionary.length > 0 && rng.chance(0.8)
              ? rng.pick(dictionary)
              : rng.pick(['__proto__', 'constructor', 'x', '']),
            randomValue(rng, dictionary, sample),
          );
        break;
      }
      case 2:
        // Wrapped: a value where a list or object of them was expected, and the reverse.
        set(
          holder,
          rng.chance(0.5) ? [value] : { [rng.pick(dictionary.length > 0 ? dictionary : ['x'])]: value },
        );
        break;
      case 3:
        if (Array.isArray(value) && value.length > 0) {
          const item = value[rng.int(value.length)] as Json;
          for (let n = rng.length(256); n > 0; n--) value.push(clone(item));
        } else set(holder, randomValue(rng, dictionary, sample));
        break;
      default:
        set(holder, randomValue(rng, dictionary, sample));
    }
  }
  const text = rng.chance(0.2) ? JSON.stringify(root, null, 2) : JSON.stringify(root);
  return Buffer.from(text ?? 'null', 'utf8');
}
