import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findSyntaxError, lineAndColumn, parseJsonText } from '../../../src/daemon/json-text.js';

test('valid JSON parses; the scanner agrees with JSON.parse', () => {
  const samples = [
    '{}',
    '[]',
    '{"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]}',
    ' 0 ',
    '"s"',
    '{"a":{"b":[{}]}}',
  ];
  for (const text of samples) {
    assert.deepEqual(parseJsonText(text), JSON.parse(text));
    assert.equal(findSyntaxError(text), undefined, text);
  }
});

test('errors name the line and column and what is wrong', () => {
  const cases: Array<[string, string]> = [
    [
      '{\n  "debug": true,\n}',
      'invalid JSON at line 3, column 1: expected a property name in double quotes, found "}"',
    ],
    [
      '{\n  "debug" true\n}',
      `invalid JSON at line 2, column 11: expected ':' after a property name, found "t"`,
    ],
    [
      '{"hosts": ["a" "b"]}',
      `invalid JSON at line 1, column 16: expected ',' or ']' after an array element, found "\\""`,
    ],
    [
      '{"a": 1 "b": 2}',
      `invalid JSON at line 1, column 9: expected ',' or '}' after a property value, found "\\""`,
    ],
    ['{"debug": tru}', 'invalid JSON at line 1, column 11: expected a value, found "t"'],
    ['{"a": "x', 'invalid JSON at line 1, column 7: unterminated string'],
    ['{"a": "\\q"}', 'invalid JSON at line 1, column 8: invalid escape sequence in a string'],
    ['{"a": "tab\there"}', 'invalid JSON at line 1, column 11: control character in a string (escape it)'],
    ['{"a": 1}}', 'invalid JSON at line 1, column 9: unexpected "}" after the end of the JSON value'],
    ['{"a": 01}', `invalid JSON at line 1, column 8: expected ',' or '}' after a property value, found "1"`],
    ['{"a": -}', 'invalid JSON at line 1, column 7: expected a value, found "-"'],
    ['{"a":', 'invalid JSON at line 1, column 6: expected a value, found the end of the file'],
    ["{'a': 1}", `invalid JSON at line 1, column 2: expected a property name in double quotes, found "'"`],
  ];
  for (const [text, message] of cases)
    assert.throws(() => parseJsonText(text), { message }, JSON.stringify(text));
});

test('line and column are 1-based', () => {
  assert.deepEqual(lineAndColumn('ab\ncd', 0), { line: 1, column: 1 });
  assert.deepEqual(lineAndColumn('ab\ncd', 4), { line: 2, column: 2 });
});

test('absurd nesting fails without crashing', () => {
  const text = '['.repeat(200_000);
  assert.throws(() => parseJsonText(text), /invalid JSON at line 1/);
});
