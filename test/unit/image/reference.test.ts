import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import {
  familiarName,
  familiarReference,
  formatReference,
  manifestIdentifier,
  parseReference,
  repositoryName,
} from '../../../src/image/reference.js';

const HEX = 'a'.repeat(64);
const DIGEST = `sha256:${HEX}`;

/** input -> fully qualified form, familiar form */
const valid: Array<[string, string, string]> = [
  ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
  ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['index.docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
  ['docker.io/library/busybox:glibc', 'docker.io/library/busybox:glibc', 'busybox:glibc'],
  ['user/repo', 'docker.io/user/repo:latest', 'user/repo:latest'],
  ['user/repo/sub', 'docker.io/user/repo/sub:latest', 'user/repo/sub:latest'],
  ['docker.io/library/a/b', 'docker.io/library/a/b:latest', 'library/a/b:latest'],
  ['host:5000/a/b:tag', 'host:5000/a/b:tag', 'host:5000/a/b:tag'],
  ['localhost/x', 'localhost/x:latest', 'localhost/x:latest'],
  ['localhost:5000/x', 'localhost:5000/x:latest', 'localhost:5000/x:latest'],
  ['localhost:5000', 'docker.io/library/localhost:5000', 'localhost:5000'],
  ['127.0.0.1:5000/test/busybox:v1', '127.0.0.1:5000/test/busybox:v1', '127.0.0.1:5000/test/busybox:v1'],
  ['[::1]:5000/x/y', '[::1]:5000/x/y:latest', '[::1]:5000/x/y:latest'],
  ['registry.example.com/a', 'registry.example.com/a:latest', 'registry.example.com/a:latest'],
  ['Example.com/a', 'Example.com/a:latest', 'Example.com/a:latest'],
  ['quay.io/coreos/etcd:v3.5.0', 'quay.io/coreos/etcd:v3.5.0', 'quay.io/coreos/etcd:v3.5.0'],
  ['a.b/c_d/e__f/g-h/i.j/k---l', 'a.b/c_d/e__f/g-h/i.j/k---l:latest', 'a.b/c_d/e__f/g-h/i.j/k---l:latest'],
  [`busybox@${DIGEST}`, `docker.io/library/busybox@${DIGEST}`, `busybox@${DIGEST}`],
  [`busybox:1.36@${DIGEST}`, `docker.io/library/busybox:1.36@${DIGEST}`, `busybox:1.36@${DIGEST}`],
  [
    `host:5000/a@sha512:${'b'.repeat(128)}`,
    `host:5000/a@sha512:${'b'.repeat(128)}`,
    `host:5000/a@sha512:${'b'.repeat(128)}`,
  ],
  ['busybox:_under', 'docker.io/library/busybox:_under', 'busybox:_under'],
  [
    `busybox:${'t'.repeat(128)}`,
    `docker.io/library/busybox:${'t'.repeat(128)}`,
    `busybox:${'t'.repeat(128)}`,
  ],
];

for (const [input, full, familiar] of valid) {
  test(`parse "${input}"`, () => {
    const ref = parseReference(input);
    assert.equal(formatReference(ref), full);
    assert.equal(familiarReference(ref), familiar);
    // Both printed forms parse back to the same reference.
    assert.deepEqual(parseReference(formatReference(ref)), ref);
    assert.deepEqual(parseReference(familiarReference(ref)), ref);
  });
}

test('parts of a parsed reference', () => {
  const ref = parseReference('host:5000/a/b:tag');
  assert.deepEqual(ref, { domain: 'host:5000', path: 'a/b', tag: 'tag' });
  assert.equal(repositoryName(ref), 'host:5000/a/b');
  assert.equal(familiarName(parseReference('busybox')), 'busybox');
  assert.equal(manifestIdentifier(ref), 'tag');
  assert.equal(manifestIdentifier(parseReference(`busybox:1@${DIGEST}`)), DIGEST);
  assert.deepEqual(parseReference('busybox', { defaultTag: false }), {
    domain: 'docker.io',
    path: 'library/busybox',
  });
});

/** input -> a fragment the error message must contain */
const invalid: Array<[string, string]> = [
  ['', 'empty'],
  ['Busybox', 'must be lowercase'],
  ['docker.io/User/repo', 'must be lowercase'],
  ['localhost/Upper', 'must be lowercase'],
  ['busybox:', 'tag ""'],
  ['busybox:-bad', 'tag "-bad"'],
  ['busybox:.bad', 'tag ".bad"'],
  ['busybox:bad!tag', 'tag "bad!tag"'],
  [`busybox:${'t'.repeat(129)}`, 'tag'],
  ['busybox@sha256:abc', 'needs 64 hex characters, got 3'],
  [`busybox@sha256:${'a'.repeat(65)}`, 'got 65'],
  [`busybox@sha256:${'A'.repeat(64)}`, 'lowercase hexadecimal'],
  [`busybox@md5:${'a'.repeat(32)}`, 'unsupported digest algorithm "md5"'],
  ['busybox@', 'expected algorithm:hex'],
  [`busybox@${HEX}`, 'expected algorithm:hex'],
  [HEX, 'image ID'],
  [':tag', 'repository name is empty'],
  ['a//b', 'empty path component'],
  ['a/b/', 'empty path component'],
  ['-a/b', 'path component "-a"'],
  ['a/b_', 'path component "b_"'],
  ['a/b...c', 'path component "b...c"'],
  ['a/b c', 'path component "b c"'],
  ['-host.com/a', '"-host.com" is not a valid registry host'],
  ['host:port/a', '"host:port" is not a valid registry host'],
  ['host:12x/a', '"host:12x" is not a valid registry host'],
  [`a/${'b'.repeat(255)}`, 'longer than 255 characters'],
  [`${'b'.repeat(254)}/c`, 'longer than 255 characters'],
];

for (const [input, fragment] of invalid) {
  test(`refuse "${input.length > 40 ? input.slice(0, 40) + '...' : input}"`, () => {
    assert.throws(
      () => parseReference(input),
      (err: unknown) =>
        err instanceof BerthError &&
        err.kind === 'invalid-argument' &&
        err.message.startsWith(`invalid reference "${input}"`) &&
        err.message.includes(fragment),
      `expected an error containing ${fragment}`,
    );
  });
}
