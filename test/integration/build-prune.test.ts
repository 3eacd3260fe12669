/**
 * The build cache through the docker CLI against berthd: `docker system df` lists its records,
 * `docker builder prune` (what DOCKER_BUILDKIT=0 clients call too) removes the dangling ones, `-a`
 * every one, `--filter until=` only old ones; what only the cache held (step image blobs, layer
 * snapshots, cache mount directories) goes from the disk, what images hold stays.
 * `docker system prune` and `berth builder prune` reach the same route.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { docker, startBerthd } from '../helpers/berthd.js';
import type { ExecResult } from '../helpers/exec.js';
import { ensureFixture } from '../../fixtures/index.js';

const BERTH_SCRIPT =
  process.env.BERTH_SCRIPT ?? fileURLToPath(new URL('../../../bin/berth.js', import.meta.url));
const LEGACY = { DOCKER_BUILDKIT: '0' };

const DOCKERFILE = [
  'FROM busybox',
  'RUN echo one > /one',
  'RUN --mount=type=cache,target=/cache echo run >> /cache/runs && cp /cache/runs /runs',
  'COPY data.txt /data.txt',
  'CMD ["cat", "/one"]',
].join('\n');

/** Committed layer snapshots and content blobs under the data root. */
async function onDisk(sandbox: Sandbox): Promise<{ snapshots: number; blobs: number; mounts: number }> {
  const snapshots = (await readdir(join(sandbox.dataRoot, 'snapshots'))).filter((n) =>
    /^[0-9a-f]{16}$/.test(n),
  );
  const blobs = await readdir(join(sandbox.dataRoot, 'content', 'blobs', 'sha256'));
  const mounts = await readdir(join(sandbox.dataRoot, 'build-cache', 'mounts')).catch(() => [] as string[]);
  return { snapshots: snapshots.length, blobs: blobs.length, mounts: mounts.length };
}

/** The ids `builder prune` printed as deleted. */
const deletedIds = (stdout: string): string[] =>
  /Deleted build cache objects:\n([\s\S]*?)\n\n/.exec(stdout)?.[1]?.split('\n') ?? [];

function berth(host: string, args: string[], sandbox: Sandbox): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BERTH_SCRIPT, ...args], {
      env: { PATH: process.env.PATH, HOME: sandbox.root, BERTH_HOST: host },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

test('docker builder prune, system df and system prune over berth build cache', async (t) => {
  const sandbox = await createSandbox(t);
  const daemon = await startBerthd(t, sandbox);
  const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<ExecResult> =>
    docker(sandbox, daemon.dockerHost, args, env);
  const ok = async (args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> => {
    const result = await run(args, env);
    assert.equal(result.code, 0, `docker ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  await ok(['load', '-i', (await ensureFixture('busybox')).dockerArchive]);
  const context = join(sandbox.root, 'context');
  await mkdir(context);
  await writeFile(join(context, 'Dockerfile'), DOCKERFILE);
  await writeFile(join(context, 'data.txt'), 'data\n');
  const build = (tag: string): Promise<string> =>
    ok(['build', '--cgroup-parent', sandbox.cgroupParent, '-t', tag, context], LEGACY);
  const baseline = await onDisk(sandbox);

  await build('app:1');
  const verbose = await ok(['system', 'df', '-v']);
  assert.match(verbose, /CACHE ID +CACHE TYPE +SIZE +CREATED +LAST USED +USAGE +SHARED/);
  assert.match(verbose, /exec\.cachemount/);
  // RUN, RUN, COPY and CMD: one record each; FROM is the image itself.
  assert.equal(verbose.match(/ regular /g)?.length, 4, verbose);
  const summary = await ok(['system', 'df']);
  assert.match(summary, /^Build Cache +5 +0 /m);

  // The steps' layers belong to app:1 as well (shared): only the cache mount is dangling.
  const dangling = await ok(['builder', 'prune', '-f'], LEGACY);
  assert.equal(deletedIds(dangling).length, 1, dangling);
  assert.equal((await onDisk(sandbox)).mounts, 0);
  const again = await build('app:1');
  assert.equal(again.match(/---> Using cache/g)?.length, 4, 'the steps are still cached');

  // Once the image is gone, its steps are dangling; until=24h keeps what was used today.
  await ok(['rmi', 'app:1']);
  const recent = await ok(['builder', 'prune', '-f', '--filter', 'until=24h'], LEGACY);
  assert.equal(recent, 'Total reclaimed space: 0B\n');
  const before = await onDisk(sandbox);
  const pruned = await ok(['builder', 'prune', '-f'], LEGACY);
  assert.equal(deletedIds(pruned).length, 4, pruned);
  assert.match(pruned, /Total reclaimed space: [1-9][0-9.]*k?B\n$/);
  const after = await onDisk(sandbox);
  assert.deepEqual(after, baseline, `only busybox is left (was ${JSON.stringify(before)})`);
  assert.match(await ok(['system', 'df']), /^Build Cache +0 +0 +0B +0B$/m);
  const rebuilt = await build('app:2');
  assert.equal(rebuilt.match(/---> Using cache/g), null, 'nothing was cached any more');

  // -a takes shared records too; the image keeps its layers and runs.
  const all = await ok(['builder', 'prune', '-a', '-f'], LEGACY);
  assert.equal(deletedIds(all).length, 5, all);
  assert.equal(await ok(['run', '--rm', '--cgroup-parent', sandbox.cgroupParent, 'app:2']), 'one\n');

  // Unknown filters are refused like dockerd refuses them.
  const bad = await run(['builder', 'prune', '-f', '--filter', 'dangling=true'], LEGACY);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /Error response from daemon: invalid filter 'dangling'/);

  // docker system prune prunes the build cache too (its image prune, run first, already
  // collected the blobs of the steps: the cache mount is what is left to delete).
  await ok(['rmi', 'app:2']);
  await build('app:3');
  await ok(['rmi', 'app:3']);
  const system = await ok(['system', 'prune', '-f']);
  assert.match(system, /Deleted build cache objects:\n([0-9a-f]{25}\n)+\n/);
  assert.match(await ok(['system', 'df']), /^Build Cache +0 +0 +0B +0B$/m);
  // Its label filters reach the build cache too, which has no labels.
  assert.match(await ok(['system', 'prune', '-f', '--filter', 'label=keep']), /Total reclaimed space/);
  // berth builder prune is the same request.
  await build('app:4');
  const viaBerth = await berth(daemon.dockerHost, ['builder', 'prune', '-a', '-f'], sandbox);
  assert.equal(viaBerth.code, 0, viaBerth.stderr);
  assert.equal(deletedIds(viaBerth.stdout).length, 5, viaBerth.stdout);
  const declined = await berth(daemon.dockerHost, ['builder', 'prune', '--filter', 'until=1h'], sandbox);
  assert.equal(declined.code, 0);
  assert.match(declined.stdout, /WARNING! This will remove all dangling build cache/);
});
