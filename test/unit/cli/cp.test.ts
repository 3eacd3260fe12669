import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { tarArchive, type TarEntry } from '../../../src/archive/tar-writer.js';
import { FakeDockerApi } from '../../helpers/fake-docker-api.js';
import { runBerth, tempDir } from './harness.js';

/** A fake daemon whose GET archive answers `entries` as the directory `name`. */
async function serving(
  t: { after: (fn: () => Promise<void>) => void },
  entries: TarEntry[],
): Promise<string> {
  const fake = await FakeDockerApi.start();
  t.after(() => fake.close());
  const stat = { name: 'x', size: 0, mode: 2 ** 31 + 0o755, mtime: '2023-11-14T22:13:20Z', linkTarget: '' };
  fake.route('GET', /^\/containers\/([^/]+)\/archive$/, () => ({
    headers: {
      'Content-Type': 'application/x-tar',
      'X-Docker-Container-Path-Stat': Buffer.from(JSON.stringify(stat)).toString('base64'),
    },
    text: tarArchive(entries),
  }));
  return fake.host;
}

test('cp from a container never writes through a symlink the archive made', async (t) => {
  const dir = await tempDir(t);
  const outside = join(dir, 'outside');
  await mkdir(outside);
  const host = await serving(t, [
    { path: 'x/', type: 'directory', mode: 0o755 },
    { path: 'x/link', type: 'symlink', mode: 0o777, linkTarget: outside },
    { path: 'x/link/evil', type: 'file', mode: 0o644, content: Buffer.from('no') },
  ]);
  await mkdir(join(dir, 'dest'));
  const result = await runBerth(host, ['cp', 'web:/x', join(dir, 'dest')]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /refusing to extract "x\/link\/evil": it would leave/);
  assert.deepEqual(await readdir(outside), []);
});

test('cp from a container refuses a hardlink to a file outside the destination', async (t) => {
  const dir = await tempDir(t);
  const host = await serving(t, [
    { path: 'x/', type: 'directory', mode: 0o755 },
    { path: 'x/link', type: 'symlink', mode: 0o777, linkTarget: '/etc' },
    { path: 'x/passwd', type: 'hardlink', mode: 0o644, linkTarget: 'x/link/passwd' },
  ]);
  await mkdir(join(dir, 'dest'));
  const result = await runBerth(host, ['cp', 'web:/x', join(dir, 'dest')]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /invalid hardlink/);
  assert.equal(existsSync(join(dir, 'dest', 'x', 'passwd')), false);
});
