import { test } from 'node:test';
import assert from 'node:assert/strict';
import { API_VERSION, MIN_API_VERSION } from '../../../src/common/version.js';
import { BerthError } from '../../../src/common/errors.js';
import {
  compareVersions,
  negotiateVersion,
  splitVersionedPath,
  versionAtLeast,
} from '../../../src/api/versions.js';

test('versions compare numerically per component', () => {
  assert.equal(compareVersions('1.9', '1.41'), -1);
  assert.equal(compareVersions('1.41', '1.41.0'), 0);
  assert.equal(compareVersions('1.50', '1.5'), 1);
  assert.equal(compareVersions('2', '1.99'), 1);
  assert.ok(versionAtLeast('1.42', '1.42'));
  assert.ok(!versionAtLeast('1.41', '1.42'));
});

test('a versioned path is split from its route; others are left alone', () => {
  assert.deepEqual(splitVersionedPath('/v1.47/containers/json'), {
    version: '1.47',
    path: '/containers/json',
  });
  assert.deepEqual(splitVersionedPath('/v1.41/_ping'), { version: '1.41', path: '/_ping' });
  assert.deepEqual(splitVersionedPath('/containers/json'), { path: '/containers/json' });
  assert.deepEqual(splitVersionedPath('/v1.41'), { version: '1.41', path: '' });
  assert.deepEqual(splitVersionedPath('/volumes/v1.2'), { path: '/volumes/v1.2' });
  assert.deepEqual(splitVersionedPath('/vx/_ping'), { path: '/vx/_ping' });
});

test('an unversioned request is served at the newest version', () => {
  assert.equal(negotiateVersion(undefined), API_VERSION);
  assert.equal(negotiateVersion(MIN_API_VERSION), MIN_API_VERSION);
  assert.equal(negotiateVersion(API_VERSION), API_VERSION);
});

test('versions outside the supported range get Docker messages as invalid-argument (400)', () => {
  assert.throws(
    () => negotiateVersion('1.12'),
    (err: unknown) =>
      err instanceof BerthError &&
      err.kind === 'invalid-argument' &&
      err.message ===
        `client version 1.12 is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
  );
  assert.throws(
    () => negotiateVersion('1.99'),
    (err: unknown) =>
      err instanceof BerthError &&
      err.message === `client version 1.99 is too new. Maximum supported API version is ${API_VERSION}`,
  );
});

test('the API version is what the docker 28 CLI negotiates', () => {
  assert.equal(API_VERSION, '1.50');
  assert.equal(MIN_API_VERSION, '1.41');
});
