/** berth's own command line against berthd. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { createSandbox } from '../helpers/sandbox.js';
import { startBerthd } from '../helpers/berthd.js';
import { execProgram } from '../helpers/exec.js';
import { ensureFixture } from '../../fixtures/index.js';

const BERTH = fileURLToPath(new URL('../../../bin/berth.js', import.meta.url));

test('berth load, run, ps, images, rm against berthd', async (t) => {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const home = join(sandbox.root, 'home');
  await mkdir(home);
  const berth = (args: string[]): ReturnType<typeof execProgram> =>
    execProgram(process.execPath, [BERTH, ...args], {
      timeoutMs: 30_000,
      env: { PATH: process.env.PATH, HOME: home, BERTH_HOST: berthd.dockerHost },
    });
  const busybox = await ensureFixture('busybox');
  const loaded = await berth(['load', '-i', busybox.dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);
  assert.match(loaded.stdout, /Loaded image: busybox:latest/);

  const ran = await berth([
    'run',
    '--rm',
    '--cgroup-parent',
    sandbox.cgroupParent,
    'busybox',
    'sh',
    '-c',
    'echo hi from berth; exit 5',
  ]);
  assert.equal(ran.code, 5, ran.stderr);
  assert.equal(ran.stdout, 'hi from berth\n');

  const id = (
    await berth([
      'run',
      '-d',
      '--name',
      'sleeper',
      '--cgroup-parent',
      sandbox.cgroupParent,
      'busybox',
      'sleep',
      '100',
    ])
  ).stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const ps = await berth(['ps']);
  assert.match(ps.stdout, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/m);
  assert.match(
    ps.stdout,
    new RegExp(`^${id.slice(0, 12)}\\s+busybox\\s+"sleep 100"\\s+.*Up .*sleeper$`, 'm'),
  );
  assert.match((await berth(['images'])).stdout, /^busybox\s+latest\s+[0-9a-f]{12}\s/m);
  assert.equal((await berth(['rm', '-f', 'sleeper'])).code, 0);
  assert.equal((await berth(['ps', '-aq'])).stdout, '');

  const noDaemon = await execProgram(process.execPath, [BERTH, 'ps'], {
    env: { PATH: process.env.PATH, HOME: home, BERTH_HOST: `unix://${join(sandbox.root, 'nothing.sock')}` },
  });
  assert.equal(noDaemon.code, 1);
  assert.match(noDaemon.stderr, /Is berthd running\? Start it with/);
});

test('berth build: a context directory, cache hits, -q, a changed file rebuilds from its COPY', async (t) => {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const home = join(sandbox.root, 'home');
  await mkdir(home);
  const berth = (args: string[], input?: string): ReturnType<typeof execProgram> =>
    execProgram(process.execPath, [BERTH, ...args], {
      timeoutMs: 60_000,
      ...(input === undefined ? {} : { input }),
      env: { PATH: process.env.PATH, HOME: home, BERTH_HOST: berthd.dockerHost },
    });
  const busybox = await ensureFixture('busybox');
  assert.equal((await berth(['load', '-i', busybox.dockerArchive])).code, 0);
  const context = join(sandbox.root, 'context');
  await mkdir(context);
  await writeFile(
    join(context, 'Dockerfile'),
    'FROM busybox\nRUN echo built > /hello\nCOPY a.txt /a.txt\nCMD ["cat", "/hello", "/a.txt"]\n',
  );
  await writeFile(join(context, 'a.txt'), 'first\n');
  const built = await berth(['build', '--cgroup-parent', sandbox.cgroupParent, '-t', 'mine', context]);
  assert.equal(built.code, 0, built.stderr);
  assert.match(built.stdout, /Step 4\/4 : CMD/);
  assert.match(built.stdout, /Successfully tagged mine:latest/);
  const ran = await berth(['run', '--rm', '--cgroup-parent', sandbox.cgroupParent, 'mine']);
  assert.equal(ran.stdout, 'built\nfirst\n');
  const again = await berth(['build', '--cgroup-parent', sandbox.cgroupParent, '-t', 'mine', context]);
  assert.equal((again.stdout.match(/Using cache/g) ?? []).length, 3, again.stdout);
  const quiet = await berth(['build', '--cgroup-parent', sandbox.cgroupParent, '-q', context]);
  assert.match(quiet.stdout, /^sha256:[0-9a-f]{64}\n$/);
  await writeFile(join(context, 'a.txt'), 'second\n');
  const changed = await berth(['build', '--cgroup-parent', sandbox.cgroupParent, '-t', 'mine', context]);
  assert.equal(
    (changed.stdout.match(/Using cache/g) ?? []).length,
    1,
    'only the RUN before the COPY is cached',
  );
  const rerun = await berth(['run', '--rm', '--cgroup-parent', sandbox.cgroupParent, 'mine']);
  assert.equal(rerun.stdout, 'built\nsecond\n');
  // RUN steps are on the default bridge (an eth0 with an address from its subnet) unless --network=none.
  const networked = await berth(
    ['build', '--cgroup-parent', sandbox.cgroupParent, '-t', 'net', '-f', '-', context],
    'FROM busybox\nRUN ip -4 -o addr show eth0 > /net.txt\nRUN --network=none ip -o link > /none.txt\n',
  );
  assert.equal(networked.code, 0, networked.stderr);
  const seen = await berth([
    'run',
    '--rm',
    '--cgroup-parent',
    sandbox.cgroupParent,
    'net',
    'cat',
    '/net.txt',
    '/none.txt',
  ]);
  const subnet = (await berth(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', 'bridge']))
    .stdout;
  const prefix = subnet.split('.').slice(0, 2).join('.');
  assert.match(seen.stdout, new RegExp(`eth0\\s+inet ${prefix.replace('.', '\\.')}\\.`));
  assert.doesNotMatch(seen.stdout.split('\n').slice(1).join('\n'), /eth0/, 'no eth0 with --network=none');
  // After VOLUME, a RUN writes into an empty volume (discarded) and the mount point stays, like Docker.
  const volumed = await berth(
    ['build', '--cgroup-parent', sandbox.cgroupParent, '-t', 'vol', '-f', '-', context],
    'FROM busybox\nVOLUME /data/inner\nRUN echo lost > /data/inner/f && echo kept > /kept\n',
  );
  assert.equal(volumed.code, 0, volumed.stderr);
  const volumeView = await berth([
    'run',
    '--rm',
    '--cgroup-parent',
    sandbox.cgroupParent,
    '-v',
    '/data/inner',
    'vol',
    'sh',
    '-c',
    'ls -A /data/inner | wc -l; cat /kept',
  ]);
  assert.equal(volumeView.stdout, '0\nkept\n', volumeView.stderr);
  const broken = await berth(
    ['build', '--cgroup-parent', sandbox.cgroupParent, '-f', '-', context],
    'FROM busybox\nFROBNICATE x\n',
  );
  assert.notEqual(broken.code, 0);
  assert.match(broken.stderr, /FROBNICATE|unknown instruction/i);
});
