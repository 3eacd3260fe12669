import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PID, pidTemplate } from '../../../src/runtime/pid-template.js';

test('a template is JSON.stringify cut where the pid goes', () => {
  const plain = {
    s: 'quote " backslash \\ newline \n é 😀 "pid":0',
    n: 1.5,
    b: false,
    z: null,
    skipped: undefined,
    list: [1, 'two', { three: 3 }],
  };
  const pieces = pidTemplate({ ...plain, pid: PID, nested: { pid: PID, empty: {}, none: [] } });
  assert.equal(pieces.length, 3);
  const expected = JSON.stringify({ ...plain, pid: 123, nested: { pid: 123, empty: {}, none: [] } });
  assert.equal(pieces.join('123'), expected);
  assert.deepEqual(pidTemplate({ a: 'b' }), ['{"a":"b"}'], 'no pid: one piece');
});
