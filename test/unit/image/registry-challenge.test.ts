import { test } from 'node:test';
import assert from 'node:assert/strict';
import { challengesFrom, parseChallenges } from '../../../src/image/registry/challenge.js';

test('a Docker Hub bearer challenge', () => {
  assert.deepEqual(
    parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
    ),
    [
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/busybox:pull',
        },
      },
    ],
  );
});

test('several challenges, spaces, unquoted values, escapes and case', () => {
  assert.deepEqual(
    parseChallenges(
      'Basic realm="Registry \\"One\\"" , BEARER Realm=https://t.example/token, error=insufficient_scope,scope="a:b:pull push"',
    ),
    [
      { scheme: 'basic', params: { realm: 'Registry "One"' } },
      {
        scheme: 'bearer',
        params: { realm: 'https://t.example/token', error: 'insufficient_scope', scope: 'a:b:pull push' },
      },
    ],
  );
});

test('a scheme without parameters and malformed input', () => {
  assert.deepEqual(parseChallenges('Basic'), [{ scheme: 'basic', params: {} }]);
  assert.deepEqual(parseChallenges(''), []);
  assert.deepEqual(parseChallenges('realm="x"'), []);
  // An unterminated quote ends parsing but keeps what came before.
  assert.deepEqual(parseChallenges('Bearer service="s",realm="https://x'), [
    { scheme: 'bearer', params: { service: 's' } },
  ]);
});

test('challengesFrom puts bearer first', () => {
  const headers = new Headers();
  headers.append('www-authenticate', 'Basic realm="b"');
  headers.append('www-authenticate', 'Bearer realm="https://t/token",service="s"');
  assert.deepEqual(
    challengesFrom(headers).map((c) => c.scheme),
    ['bearer', 'basic'],
  );
  assert.deepEqual(challengesFrom(new Headers()), []);
});
