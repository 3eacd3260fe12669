/**
 * daemon.json `init` and `init-path` (dockerd's keys): with `"init": true` every container runs an
 * init as PID 1 unless it says `--init=false`; `init-path` replaces berth-init. Bad values stop
 * start-up with a message naming the key.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox } from '../helpers/sandbox.js';
import { docker, runBerthd, startBerthd } from '../helpers/berthd.js';
import { ensureFixture } from '../../fixtures/index.js';

/** PID 1's command line as the container sees it, words joined by spaces. */
const PID1 = ['cat', '/proc/1/cmdline'];
const words = (cmdline: string): string => cmdline.split('\0').filter(Boolean).join(' ');

test('daemon.json init: an init is PID 1 unless --init=false; init-path picks the binary', async (t) => {
  const sandbox = await createSandbox(t);
  const busybox = await ensureFixture('busybox');
  const script = join(sandbox.root, 'custom-init');
  // A stand-in init: says it ran, then runs the command as docker-init would.
  await writeFile(script, '#!/bin/sh\necho "custom-init $*"\nshift\nexec "$@"\n');
  await chmod(script, 0o755);

  const daemon = await startBerthd(t, sandbox, { config: { init: true } });
  const run = (args: string[]): ReturnType<typeof docker> => docker(sandbox, daemon.dockerHost, args);
  assert.equal((await run(['load', '-i', busybox.dockerArchive])).code, 0);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];

  const withDefault = await run(['run', '--rm', ...cg, 'busybox', ...PID1]);
  assert.equal(withDefault.code, 0, withDefault.stderr);
  assert.equal(words(withDefault.stdout), '/sbin/docker-init -- cat /proc/1/cmdline');

  const refused = await run(['run', '--rm', '--init=false', ...cg, 'busybox', ...PID1]);
  assert.equal(refused.code, 0, refused.stderr);
  assert.equal(words(refused.stdout), 'cat /proc/1/cmdline');

  // Like dockerd, the default is applied at start: the container's own setting stays unset.
  const created = await run(['create', ...cg, 'busybox', 'true']);
  assert.equal(created.code, 0, created.stderr);
  const init = await run(['inspect', '--format', '{{json .HostConfig.Init}}', created.stdout.trim()]);
  assert.equal(init.stdout.trim(), 'null');
  assert.equal((await run(['rm', created.stdout.trim()])).code, 0);
  await daemon.stop();

  const custom = await startBerthd(t, sandbox, { config: { init: true, 'init-path': script } });
  const viaCustom = await docker(sandbox, custom.dockerHost, ['run', '--rm', ...cg, 'busybox', 'echo', 'hi']);
  assert.equal(viaCustom.code, 0, viaCustom.stderr);
  assert.equal(viaCustom.stdout, 'custom-init -- echo hi\nhi\n');
  const explicit = await docker(sandbox, custom.dockerHost, [
    'run',
    '--rm',
    '--init',
    ...cg,
    'busybox',
    'true',
  ]);
  assert.equal(explicit.stdout, 'custom-init -- true\n');
  const info = await docker(sandbox, custom.dockerHost, ['info', '--format', '{{.InitBinary}}']);
  assert.equal(info.stdout.trim(), script);
  await custom.stop();
});

test('daemon.json init and init-path: bad values stop start-up naming the key', async (t) => {
  const sandbox = await createSandbox(t);
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ init: 'yes' }, /init: expected true or false, got the string "yes"/],
    [{ 'init-path': 'bin/init' }, /init-path: must be an absolute path, got "bin\/init"/],
    [{ 'init-path': 7 }, /init-path: expected a string, got number 7/],
    [
      { 'init-path': join(sandbox.root, 'no-such-init') },
      /init-path: .*no-such-init is not an executable file/,
    ],
  ];
  for (const [config, message] of cases) {
    const result = await runBerthd(sandbox, { config });
    assert.equal(result.code, 1, `${JSON.stringify(config)}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});
