/**
 * A full disk: berthd's data root is a 16 MiB tmpfs. Loading an image that does not fit fails
 * with a clear "no space left" message and leaves nothing of it behind (no image, no blob, no
 * snapshot, no temporary file); a small image loads and runs afterwards. A container that fills
 * a volume on the same filesystem until ENOSPC ends with dd's error exit, and berthd keeps
 * answering and recovers once the volume is removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox } from '../helpers/sandbox.js';
import { apiRequest, docker, startBerthd } from '../helpers/berthd.js';
import { execOk } from '../helpers/exec.js';
import { ensureFixture } from '../../fixtures/index.js';

/** Every file and directory below `root`, relative to it. */
async function tree(root: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(join(root, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      found.push(path);
      if (entry.isDirectory()) await walk(path);
    }
  };
  await walk('');
  return found.sort();
}

test('a 16 MiB data root: a load that does not fit fails cleanly, berthd keeps working', async (t) => {
  const sandbox = await createSandbox(t);
  const [busybox, large] = [await ensureFixture('busybox'), await ensureFixture('large')];
  sandbox.trackMount(sandbox.dataRoot);
  await execOk('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', sandbox.dataRoot]);
  const daemon = await startBerthd(t, sandbox);
  const run = (args: string[]): ReturnType<typeof docker> => docker(sandbox, daemon.dockerHost, args);

  await t.test('loading an image larger than the disk', async () => {
    const before = await tree(sandbox.dataRoot);
    const loaded = await run(['load', '-i', large.dockerArchive]);
    assert.notEqual(loaded.code, 0, 'the load fails');
    assert.match(loaded.stderr, /no space left/i, 'the error names the full disk');
    assert.doesNotMatch(loaded.stderr, /ENOSPC.*\n.*at /, 'no stack trace');
    const images = await run(['images', '-q']);
    assert.equal(images.code, 0, images.stderr);
    assert.equal(images.stdout.trim(), '', 'no image record is left');
    // Empty directories may appear, and a blob that was completely written and verified may stay
    // for the garbage collector; nothing half-written may.
    const added = (await tree(sandbox.dataRoot)).filter((path) => !before.includes(path));
    const leftovers: string[] = [];
    for (const path of added) {
      const stats = await stat(join(sandbox.dataRoot, path));
      if (stats.isDirectory()) continue;
      const blob = /^content\/blobs\/sha256\/([0-9a-f]{64})$/.exec(path)?.[1];
      const digest =
        blob &&
        createHash('sha256')
          .update(await readFile(join(sandbox.dataRoot, path)))
          .digest('hex');
      if (blob === undefined || digest !== blob) leftovers.push(`${path} (${stats.size} bytes)`);
    }
    assert.deepEqual(leftovers, [], 'no half-written blob, snapshot, record or temporary file is left');
  });

  await t.test('a small image loads and runs afterwards', async () => {
    const loaded = await run(['load', '-i', busybox.dockerArchive]);
    assert.equal(loaded.code, 0, loaded.stderr);
    const ran = await run([
      'run',
      '--rm',
      '--cgroup-parent',
      sandbox.cgroupParent,
      'busybox',
      'echo',
      'fits',
    ]);
    assert.equal(ran.code, 0, ran.stderr);
    assert.equal(ran.stdout.trim(), 'fits');
  });

  await t.test('a container filling a volume until ENOSPC does not take berthd down', async () => {
    const started = await run([
      'run',
      '-d',
      '--cgroup-parent',
      sandbox.cgroupParent,
      '-v',
      'fill:/fill',
      'busybox',
      'dd',
      'if=/dev/zero',
      'of=/fill/big',
      'bs=1M',
    ]);
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    const waited = await run(['wait', id]).catch(async (err: Error) => {
      const state = await run(['inspect', '--format', '{{json .State}}', id]);
      return {
        code: -1,
        stdout: '',
        stderr: `${err.message}; state ${state.stdout}${state.stderr}; berthd:\n${daemon.output().slice(-2000)}`,
      };
    });
    assert.equal(waited.code, 0, waited.stderr);
    assert.equal(waited.stdout.trim(), '1', "dd's exit status for a full disk");
    const ping = await apiRequest({ socketPath: daemon.socket }, '/_ping');
    assert.equal(ping.status, 200, 'berthd answers while the disk is full');
    const listed = await run(['ps', '-a', '--format', '{{.ID}} {{.Status}}']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^${id.slice(0, 12)} Exited \\(1\\)`, 'm'));
    assert.equal(daemon.child.exitCode, null, 'berthd still runs');

    const removed = await run(['rm', '-f', '-v', id]);
    assert.equal(removed.code, 0, removed.stderr);
    const volume = await run(['volume', 'rm', 'fill']);
    assert.equal(volume.code, 0, volume.stderr);
    const ran = await run(['run', '--rm', '--cgroup-parent', sandbox.cgroupParent, 'busybox', 'true']);
    assert.equal(ran.code, 0, `berthd works again once the space is free: ${ran.stderr}`);
  });
});
