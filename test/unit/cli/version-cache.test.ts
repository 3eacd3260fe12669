/** The API versions berth remembers per daemon socket (src/cli/version-cache.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import {
  cachedServerVersion,
  rememberServerVersion,
  versionCacheDir,
} from '../../../src/cli/version-cache.js';
import { tempDir } from './harness.js';

async function listen(t: { after: (fn: () => Promise<void>) => void }, path: string): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(path, resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

test('a version is remembered for the socket it was learned from, for ten minutes', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'cache');
  const socket = join(root, 'daemon.sock');
  await listen(t, socket);
  const now = Date.now();
  assert.equal(cachedServerVersion(dir, socket, now), undefined, 'nothing yet');
  rememberServerVersion(dir, socket, '1.47', now);
  assert.equal(cachedServerVersion(dir, socket, now + 1000), '1.47');
  assert.equal(cachedServerVersion(dir, socket, now + 11 * 60 * 1000), undefined, 'too old');
  assert.equal(cachedServerVersion(dir, join(root, 'other.sock'), now), undefined, 'another socket');
  rememberServerVersion(dir, socket, '1.50', now);
  assert.equal(cachedServerVersion(dir, socket, now), '1.50', 'replaced');
  assert.equal((await readFile(join(dir, 'api-versions'), 'utf8')).split('\n').length, 2, 'one entry');
});

test('a daemon that binds the socket again is asked again', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'cache');
  const socket = join(root, 'daemon.sock');
  const first = await listen(t, socket);
  rememberServerVersion(dir, socket, '1.47');
  await new Promise<void>((resolve) => first.close(() => resolve()));
  assert.equal(cachedServerVersion(dir, socket), undefined, 'no socket');
  await listen(t, socket);
  assert.equal(cachedServerVersion(dir, socket), undefined, 'a new socket file');
});

test('a cache directory that others can write, or a file that is not a socket, is not used', async (t) => {
  const root = await tempDir(t);
  const socket = join(root, 'daemon.sock');
  await listen(t, socket);
  const open = join(root, 'open');
  await mkdir(open);
  await chmod(open, 0o777);
  rememberServerVersion(open, socket, '1.47');
  assert.equal(cachedServerVersion(open, socket), undefined);

  const dir = join(root, 'cache');
  const plain = join(root, 'plain-file');
  await writeFile(plain, '');
  rememberServerVersion(dir, plain, '1.47');
  assert.equal(cachedServerVersion(dir, plain), undefined);

  // Lines that are not entries are skipped, and a version must look like one.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'api-versions'), `garbage\n${socket}\tx\t1\t1.47; rm -rf\n`);
  assert.equal(cachedServerVersion(dir, socket), undefined);
  rememberServerVersion(dir, socket, 'not a version');
  assert.equal(cachedServerVersion(dir, socket), undefined);
});

test('the cache lives in XDG_RUNTIME_DIR, else in TMPDIR or /tmp by user', () => {
  const uid = process.getuid?.() ?? 0;
  assert.equal(
    versionCacheDir({ XDG_RUNTIME_DIR: '/run/user/1000', TMPDIR: '/var/tmp' }),
    '/run/user/1000/berth',
  );
  assert.equal(versionCacheDir({ TMPDIR: '/var/tmp' }), `/var/tmp/berth-${uid}`);
  assert.equal(versionCacheDir({ TMPDIR: 'relative', XDG_RUNTIME_DIR: '' }), `/tmp/berth-${uid}`);
});
