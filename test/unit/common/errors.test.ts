import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BerthError,
  describeError,
  errnoCode,
  httpStatusOf,
  notFound,
  invalidArgument,
} from '../../../src/common/errors.js';

test('error kinds map to Docker API status codes', () => {
  assert.equal(httpStatusOf[notFound('x').kind], 404);
  assert.equal(httpStatusOf[invalidArgument('x').kind], 400);
  assert.equal(httpStatusOf.conflict, 409);
  assert.equal(httpStatusOf.internal, 500);
});

test('describeError gives the message only', () => {
  const err = new BerthError('conflict', 'name "web" is already in use');
  assert.equal(describeError(err), 'name "web" is already in use');
  assert.equal(describeError('plain'), 'plain');
});

test('errnoCode reads system error codes', () => {
  assert.equal(errnoCode(Object.assign(new Error('x'), { code: 'ENOENT' })), 'ENOENT');
  assert.equal(errnoCode(new Error('x')), undefined);
  assert.equal(errnoCode(null), undefined);
});
