import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import { isInsecure, resolveEndpoints } from '../../../src/image/registry/hosts.js';

const urls = (
  domain: string,
  config: Parameters<typeof resolveEndpoints>[1],
  purpose: 'pull' | 'push' = 'pull',
): string[] => resolveEndpoints(domain, config, purpose).map((e) => e.url);

test('https by default, http for loopback and declared insecure registries', () => {
  assert.deepEqual(urls('registry.example.com', {}), ['https://registry.example.com']);
  assert.deepEqual(urls('localhost:5000', {}), ['http://localhost:5000']);
  assert.deepEqual(urls('127.0.0.1:5000', {}), ['http://127.0.0.1:5000']);
  assert.deepEqual(urls('127.8.9.10', {}), ['http://127.8.9.10']);
  assert.deepEqual(urls('[::1]:5000', {}), ['http://[::1]:5000']);
  assert.deepEqual(urls('myreg:5000', { insecureRegistries: ['myreg:5000'] }), ['http://myreg:5000']);
  assert.deepEqual(urls('myreg:5000', { insecureRegistries: ['myreg'] }), ['http://myreg:5000']);
  assert.deepEqual(urls('myreg:5000', { insecureRegistries: ['myreg:6000'] }), ['https://myreg:5000']);
  assert.deepEqual(urls('10.1.2.3:5000', { insecureRegistries: ['10.0.0.0/8'] }), ['http://10.1.2.3:5000']);
  assert.deepEqual(urls('11.1.2.3:5000', { insecureRegistries: ['10.0.0.0/8'] }), ['https://11.1.2.3:5000']);
  assert.equal(isInsecure('localhost.example.com', {}), false);
  assert.throws(() => isInsecure('10.1.2.3', { insecureRegistries: ['10.0.0.0/40'] }), BerthError);
});

test('docker.io: mirrors first when pulling, never when pushing', () => {
  const config = { mirrors: ['https://mirror.example.com/', 'http://10.0.0.5:5000'] };
  assert.deepEqual(urls('docker.io', config), [
    'https://mirror.example.com',
    'http://10.0.0.5:5000',
    'https://registry-1.docker.io',
  ]);
  assert.deepEqual(urls('docker.io', config, 'push'), ['https://registry-1.docker.io']);
  assert.ok(resolveEndpoints('docker.io', config, 'pull').every((e) => e.registry === 'docker.io'));
  assert.throws(() => urls('docker.io', { mirrors: ['ftp://x'] }), /must be an http or https URL/);
  assert.throws(() => urls('docker.io', { mirrors: ['not a url'] }), /is not a URL/);
});
