/**
 * berthd with `userns-remap` (docs/userns.md), driven by the docker CLI: container root is an
 * unprivileged host id, the image's files still belong to root inside (idmapped layers), a
 * volume is writable by the container's root, and `--userns=host` opts out. The subordinate id
 * files are the sandbox's own (BERTH_SUBUID_FILE/BERTH_SUBGID_FILE), never the host's /etc.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox, listMounts } from '../helpers/sandbox.js';
import { docker, startBerthd } from '../helpers/berthd.js';
import { ensureFixture } from '../../fixtures/index.js';

// A range no test machine hands out: ids of real accounts would make the checks meaningless.
const START = 3_100_000;
const SIZE = 65536;

test('userns-remap: container root is an unprivileged host id, --userns=host opts out', async (t) => {
  const sandbox = await createSandbox(t);
  // The remapped root must reach the data root (dockerd asks the same of its root's parents).
  await chmod(sandbox.root, 0o711);
  const subuid = join(sandbox.root, 'subuid');
  const subgid = join(sandbox.root, 'subgid');
  await writeFile(subuid, `someone:200000:65536\nnobody:${START}:${SIZE}\n`);
  await writeFile(subgid, `nobody:${START}:${SIZE}\n`);
  process.env.BERTH_SUBUID_FILE = subuid;
  process.env.BERTH_SUBGID_FILE = subgid;
  const berthd = await startBerthd(t, sandbox, { config: { 'userns-remap': 'nobody' } });
  const run = (args: string[]): ReturnType<typeof docker> => docker(sandbox, berthd.dockerHost, args);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  // Not `run --rm`: a container that fails to start must not leave the CLI waiting for its removal.
  let runs = 0;
  const runOnce = async (args: string[]): ReturnType<typeof docker> => {
    const name = `once${runs++}`;
    const result = await run(['run', '--name', name, ...cg, ...args]);
    await run(['rm', '-f', name]);
    return result;
  };
  const loaded = await run(['load', '-i', (await ensureFixture('busybox')).dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);

  const info = await run(['info', '--format', '{{json .SecurityOptions}}']);
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /name=userns/);

  const inside = await runOnce([
    'busybox',
    'sh',
    '-c',
    'id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; stat -c "%u:%g %n" /bin/busybox /etc/passwd /',
  ]);
  assert.equal(inside.code, 0, inside.stderr + berthd.output());
  const lines = inside.stdout.split('\n').map((line) => line.trim().replace(/\s+/g, ' '));
  assert.deepEqual(lines.slice(0, 4), ['0', '0', `0 ${START} ${SIZE}`, `0 ${START} ${SIZE}`]);
  assert.deepEqual(
    lines.slice(4, 7),
    ['0:0 /bin/busybox', '0:0 /etc/passwd', '0:0 /'],
    'the image is root-owned inside',
  );

  const started = await run([
    'run',
    '-d',
    '--name',
    'sleeper',
    ...cg,
    'busybox',
    'sh',
    '-c',
    'echo hi > /new && stat -c %u /new && exec sleep 1000',
  ]);
  assert.equal(started.code, 0, started.stderr + berthd.output());
  const pid = Number((await run(['inspect', '--format', '{{.State.Pid}}', 'sleeper'])).stdout.trim());
  assert.ok(pid > 0);
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  assert.match(status, new RegExp(`^Uid:\\s+${START}\\s+${START}\\s+${START}\\s+${START}$`, 'm'));
  assert.match(status, new RegExp(`^Gid:\\s+${START}\\s+${START}\\s+${START}\\s+${START}$`, 'm'));
  // The idmapped layer mounts were only needed while the overlay was mounted.
  assert.deepEqual(
    (await listMounts()).filter((m) => m.mountPoint.startsWith(join(berthd.execRoot, 'idmap'))),
    [],
  );
  // Written by the container's root: root's inside, the remapped root's in the writable layer.
  let logs = await run(['logs', 'sleeper']);
  for (let i = 0; i < 50 && logs.stdout === ''; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    logs = await run(['logs', 'sleeper']);
  }
  assert.equal(logs.stdout, '0\n');
  const merged = await stat(`/proc/${pid}/root/new`);
  assert.deepEqual([merged.uid, merged.gid], [START, START]);
  // exec enters every namespace, the network one (the host's user namespace owns it) included.
  const exec = await run(['exec', 'sleeper', 'sh', '-c', 'id -u; cat /new; ip -o link | grep -c eth0']);
  assert.equal(exec.stdout, '0\nhi\n1\n', exec.stderr);
  assert.equal((await run(['rm', '-f', 'sleeper'])).code, 0);

  const volume = await runOnce([
    '-v',
    'data:/data',
    'busybox',
    'sh',
    '-c',
    'echo hi > /data/f && stat -c %u:%g /data/f',
  ]);
  assert.equal(volume.code, 0, volume.stderr + berthd.output());
  assert.equal(volume.stdout, '0:0\n');
  const onHost = await stat(join(sandbox.dataRoot, `${START}.${START}`, 'volumes', 'data', '_data', 'f'));
  assert.deepEqual([onHost.uid, onHost.gid], [START, START], 'the volume lives in the per-range root');

  const hostns = await runOnce(['--userns=host', 'busybox', 'cat', '/proc/self/uid_map']);
  assert.equal(hostns.code, 0, hostns.stderr);
  assert.equal(hostns.stdout.trim().replace(/\s+/g, ' '), '0 0 4294967295');

  const privileged = await runOnce(['--privileged', 'busybox', 'true']);
  assert.notEqual(privileged.code, 0);
  assert.match(privileged.stderr, /--userns=host/);

  assert.equal((await run(['volume', 'rm', 'data'])).code, 0);
});
