/** Assertions on the message of a thrown error (node's assert.throws matches a RegExp against `Name: message`). */
import assert from 'node:assert/strict';

type Expected = RegExp | ((err: unknown) => boolean);

function check(expected: Expected): (err: unknown) => boolean {
  if (typeof expected === 'function') return expected;
  return (err: unknown) => {
    assert.ok(err instanceof Error, `expected an Error, got ${String(err)}`);
    assert.match(err.message, expected);
    return true;
  };
}

export function throwsMessage(fn: () => unknown, expected: Expected): void {
  assert.throws(fn, check(expected));
}

export async function rejectsMessage(promise: Promise<unknown>, expected: Expected): Promise<void> {
  await assert.rejects(promise, check(expected));
}
