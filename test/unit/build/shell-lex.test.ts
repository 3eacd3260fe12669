import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  expandHeredoc,
  processWord,
  processWords,
  recordingLookup,
} from '../../../src/build/dockerfile/shell-lex.js';

const env = new Map([
  ['A', 'alpha'],
  ['EMPTY', ''],
  ['SPACED', 'one two'],
]);
const lookup = recordingLookup(env);
const word = (text: string): string => processWord(text, lookup);

test('plain and braced variables; unset ones are empty', () => {
  assert.equal(word('$A-${A}_$A_x'), 'alpha-alpha_');
  assert.equal(word('${NOPE}x$NOPE'), 'x');
  assert.equal(word('cost: $5 and $'), 'cost:  and $');
  assert.equal(word('a$-b'), 'ab', 'a special parameter is looked up (and unset)');
});

test('modifiers with and without the colon', () => {
  assert.equal(word('${NOPE:-d}|${EMPTY:-d}|${A:-d}'), 'd|d|alpha');
  assert.equal(word('${NOPE-d}|${EMPTY-d}|${A-d}'), 'd||alpha');
  assert.equal(word('${NOPE:+a}|${EMPTY:+a}|${A:+a}'), '||a');
  assert.equal(word('${NOPE+a}|${EMPTY+a}|${A+a}'), '|a|a');
  assert.equal(word('${NOPE:-${A}x}'), 'alphax', 'defaults are expanded too');
  assert.throws(() => word('${NOPE:?must be set}'), /NOPE: must be set/);
  assert.throws(() => word('${EMPTY:?}'), /EMPTY/);
  assert.equal(word('${EMPTY?x}'), '');
  assert.throws(() => word('${A:=x}'), /unsupported modifier \(:=\)/);
  assert.throws(() => word('${A'), /missing|unexpected end/);
});

test('quotes: single quotes literal, double quotes expand, quotes removed', () => {
  assert.equal(word(`'$A'"$A"`), '$Aalpha');
  assert.equal(word('"a  b"'), 'a  b');
  assert.equal(word(`"it's"`), "it's");
  assert.throws(() => word(`'open`), /single-quote/);
  assert.throws(() => word(`"open`), /double-quote/);
});

test('escapes: \\$ stays literal; inside double quotes only " $ and \\ are escaped', () => {
  assert.equal(word('\\$A'), '$A');
  assert.equal(word('a\\ b'), 'a b');
  assert.equal(word('"\\$A \\" \\\\ \\n"'), '$A " \\ \\n');
  assert.equal(processWord('`$A', lookup, '`'), '$A');
  assert.equal(processWord('c:\\dir', lookup, '`'), 'c:\\dir');
});

test('words: split on unquoted whitespace, also inside an unquoted expansion', () => {
  assert.deepEqual(processWords('80/tcp  $SPACED "$SPACED" \'\' x', lookup), [
    '80/tcp',
    'one',
    'two',
    'one two',
    '',
    'x',
  ]);
  assert.deepEqual(processWords('   ', lookup), []);
});

test('a recording lookup records the names asked for', () => {
  const used = new Set<string>();
  processWord('$A ${B:-x} \\$C', recordingLookup(env, used));
  assert.deepEqual([...used].sort(), ['A', 'B']);
});

test('heredoc bodies: variables expanded, quotes kept, \\$ escapes', () => {
  assert.equal(expandHeredoc(`echo "$A" '\${A}' \\$A $ done`, lookup), `echo "alpha" 'alpha' $A $ done`);
});
