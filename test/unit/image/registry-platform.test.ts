import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import type { Descriptor, Platform } from '../../../src/oci/image-spec.js';
import {
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  selectManifest,
} from '../../../src/image/registry/platform.js';

test('host platform from Node.js arch names', () => {
  assert.deepEqual(hostPlatform('x64'), { os: 'linux', architecture: 'amd64' });
  assert.deepEqual(hostPlatform('arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
  assert.deepEqual(hostPlatform('arm'), { os: 'linux', architecture: 'arm', variant: 'v7' });
  assert.deepEqual(hostPlatform('ia32'), { os: 'linux', architecture: '386' });
});

test('--platform strings', () => {
  const table: Array<[string, string]> = [
    ['linux/amd64', 'linux/amd64'],
    ['linux/AMD64', 'linux/amd64'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/aarch64', 'linux/arm64/v8'],
    ['linux/arm64/v8', 'linux/arm64/v8'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/v6', 'linux/arm/v6'],
    ['linux/arm/7', 'linux/arm/v7'],
    ['linux/riscv64', 'linux/riscv64'],
    ['linux', formatPlatform(hostPlatform())],
  ];
  for (const [input, expected] of table) assert.equal(formatPlatform(parsePlatform(input)), expected, input);
  for (const bad of ['', 'linux/', 'linux/amd64/v1/x', '/amd64', 'linux/a md64']) {
    assert.throws(
      () => parsePlatform(bad),
      (err: unknown) =>
        err instanceof BerthError && err.kind === 'invalid-argument' && err.message.includes(`"${bad}"`),
    );
  }
  assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'amd64', variant: 'v1' }), {
    os: 'linux',
    architecture: 'amd64',
  });
});

const entry = (digest: string, platform?: Platform): Descriptor => ({
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${digest.repeat(64)}`,
  size: 1,
  ...(platform ? { platform } : {}),
});

test('selectManifest picks the exact platform, then the nearest older arm variant', () => {
  const manifests = [
    entry('0'), // an attestation without a platform
    entry('1', { os: 'linux', architecture: 'amd64' }),
    entry('2', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
    entry('3', { os: 'linux', architecture: 'arm', variant: 'v5' }),
    entry('4', { os: 'linux', architecture: 'arm', variant: 'v6' }),
    entry('5', { os: 'windows', architecture: 'amd64' }),
  ];
  const pick = (platform: Platform): string => selectManifest(manifests, platform).digest.slice(7, 8);
  assert.equal(pick({ os: 'linux', architecture: 'amd64' }), '1');
  assert.equal(pick({ os: 'linux', architecture: 'arm64' }), '2');
  assert.equal(pick({ os: 'linux', architecture: 'aarch64' }), '2');
  assert.equal(pick({ os: 'linux', architecture: 'arm', variant: 'v7' }), '4');
  assert.equal(pick({ os: 'linux', architecture: 'arm', variant: 'v6' }), '4');
  assert.equal(pick({ os: 'linux', architecture: 'arm', variant: 'v5' }), '3');
  assert.equal(pick({ os: 'windows', architecture: 'amd64' }), '5');
  assert.throws(
    () => selectManifest(manifests, { os: 'linux', architecture: 's390x' }),
    (err: unknown) =>
      err instanceof BerthError &&
      err.kind === 'not-found' &&
      err.message.startsWith('no matching manifest for linux/s390x in the manifest list entries') &&
      err.message.includes('linux/arm64/v8'),
  );
  assert.throws(
    () => selectManifest([entry('0')], { os: 'linux', architecture: 'amd64' }),
    /no matching manifest/,
  );
});
