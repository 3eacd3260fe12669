import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSignal } from '../../../src/runtime/signals.js';

test('signals by name, SIG name, lower case and number', () => {
  assert.equal(parseSignal('KILL'), 9);
  assert.equal(parseSignal('SIGTERM'), 15);
  assert.equal(parseSignal('hup'), 1);
  assert.equal(parseSignal('10'), 10);
  assert.equal(parseSignal('SIGRTMIN+2'), 36);
  assert.throws(() => parseSignal('SIGNOPE'), /invalid signal "SIGNOPE"/);
  assert.throws(() => parseSignal('0'), /invalid signal/);
  assert.throws(() => parseSignal('65'), /invalid signal/);
});
