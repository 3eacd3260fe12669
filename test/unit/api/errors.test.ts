import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conflict, internal, invalidArgument, notFound, unavailable } from '../../../src/common/errors.js';
import { ApiError, errorBody, statusOf } from '../../../src/api/errors.js';

test('error kinds map to Docker status codes', () => {
  assert.equal(statusOf(notFound('No such container: x')), 404);
  assert.equal(statusOf(conflict('name in use')), 409);
  assert.equal(statusOf(invalidArgument('bad')), 400);
  assert.equal(statusOf(unavailable('later')), 503);
  assert.equal(statusOf(internal('oops')), 500);
  assert.equal(statusOf(new ApiError(413, 'too big')), 413);
  assert.equal(statusOf(new Error('plain')), 500);
  assert.equal(statusOf('a string'), 500);
});

test('the body is the message alone, newline-terminated, never a stack', () => {
  const err = new Error('disk full');
  assert.equal(errorBody(err), '{"message":"disk full"}\n');
  assert.ok(!errorBody(err).includes('at '));
  assert.equal(errorBody(notFound('No such image: a"b')), '{"message":"No such image: a\\"b"}\n');
});
