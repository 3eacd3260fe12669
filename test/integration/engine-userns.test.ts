/**
 * berthd with `userns-remap` (docs/userns.md), driven by the docker CLI: container root is an
 * unprivileged host id, the image's files still belong to root inside, a volume is writable by
 * the container's root, `--userns=host` opts out, and commit, export, diff and cp see container
 * ids. Each scenario runs twice: with idmapped layers, and with shifted copies of the layers
 * (forced with BERTH_USERNS_IDMAP=off). The subordinate id files are the sandbox's own
 * (BERTH_SUBUID_FILE/BERTH_SUBGID_FILE), never the host's /etc.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  stat,
  symlink,
  link,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createSandbox, listMounts, type Sandbox } from '../helpers/sandbox.js';
import { docker, startBerthd, type Berthd } from '../helpers/berthd.js';
import { execOk } from '../helpers/exec.js';
import { ensureFixture } from '../../fixtures/index.js';
import { ByteSource } from '../../src/archive/byte-source.js';
import { FsHelper } from '../../src/archive/fs-helper.js';
import { readTar } from '../../src/archive/tar-reader.js';
import { shiftedCopy } from '../../src/snapshot/shift-copy.js';
import { idShift } from '../../src/snapshot/shift-ids.js';

// A range no test machine hands out: ids of real accounts would make the checks meaningless.
const START = 3_100_000;
const SIZE = 65536;

type Layers = 'idmap' | 'shift';
type Run = (args: string[]) => ReturnType<typeof docker>;

interface Remapped {
  sandbox: Sandbox;
  berthd: Berthd;
  run: Run;
  /** `run --name` then `rm -f`: not `run --rm`, so a failed start cannot leave the CLI waiting. */
  runOnce: (args: string[]) => ReturnType<typeof docker>;
  cg: string[];
  /** The per-range root, `<data-root>/<uid>.<gid>`. */
  rangeRoot: string;
}

/** A sandboxed berthd remapping to START, with busybox loaded; `layers` chooses how layers are remapped. */
async function remappedDaemon(t: TestContext, layers: Layers): Promise<Remapped> {
  const sandbox = await createSandbox(t);
  // The remapped root must reach the data root (dockerd asks the same of its root's parents).
  await chmod(sandbox.root, 0o711);
  const subuid = join(sandbox.root, 'subuid');
  const subgid = join(sandbox.root, 'subgid');
  await writeFile(subuid, `someone:200000:65536\nnobody:${START}:${SIZE}\n`);
  await writeFile(subgid, `nobody:${START}:${SIZE}\n`);
  process.env.BERTH_SUBUID_FILE = subuid;
  process.env.BERTH_SUBGID_FILE = subgid;
  if (layers === 'shift') process.env.BERTH_USERNS_IDMAP = 'off';
  let berthd: Berthd;
  try {
    berthd = await startBerthd(t, sandbox, { config: { 'userns-remap': 'nobody' } });
  } finally {
    delete process.env.BERTH_USERNS_IDMAP;
  }
  assert.match(
    berthd.output(),
    layers === 'idmap' ? /image layers through idmapped mounts/ : /image layers as shifted copies/,
  );
  const run: Run = (args) => docker(sandbox, berthd.dockerHost, args);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  let runs = 0;
  const runOnce = async (args: string[]): ReturnType<typeof docker> => {
    const name = `once${runs++}`;
    const result = await run(['run', '--name', name, ...cg, ...args]);
    await run(['rm', '-f', name]);
    return result;
  };
  const loaded = await run(['load', '-i', (await ensureFixture('busybox')).dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);
  return { sandbox, berthd, run, runOnce, cg, rangeRoot: join(sandbox.dataRoot, `${START}.${START}`) };
}

/** uid:gid of each entry of a tar (a file, or bytes). */
async function tarOwners(tar: string | Buffer): Promise<Map<string, string>> {
  const stream = typeof tar === 'string' ? createReadStream(tar) : Readable.from([tar]);
  const owners = new Map<string, string>();
  for await (const { header, body } of readTar(new ByteSource(stream))) {
    for await (const chunk of body) void chunk;
    owners.set(header.path.replace(/^\/+|\/+$/g, ''), `${header.uid}:${header.gid}`);
  }
  return owners;
}

/** The docker CLI with its stdout as bytes (a tar), bounded in time. */
function dockerBytes(r: Remapped, args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, {
      env: {
        ...process.env,
        DOCKER_HOST: r.berthd.dockerHost,
        DOCKER_CONFIG: join(r.sandbox.root, 'docker-config'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

async function ok(run: Run, args: string[]): Promise<string> {
  const result = await run(args);
  assert.equal(result.code, 0, `docker ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/** The files written by root and by uid 1000 in a container, as `docker diff` will list them. */
const WRITE_FILES =
  'echo a > /root-file && echo b > /user-file && chown 1000:1000 /user-file && mkdir /tmp/d';

for (const layers of ['idmap', 'shift'] as const) {
  test(`userns-remap (${layers}): container root is an unprivileged host id, --userns=host opts out`, async (t) => {
    const { sandbox, berthd, run, runOnce, cg } = await remappedDaemon(t, layers);

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

  test(`userns-remap (${layers}): commit, export, diff and cp see the container's ids`, async (t) => {
    const r = await remappedDaemon(t, layers);
    const { sandbox, run, cg } = r;
    await ok(run, ['run', '--name', 'writer', ...cg, 'busybox', 'sh', '-c', WRITE_FILES]);
    // The same changes without a user namespace: `docker diff` must not tell them apart.
    await ok(run, ['run', '--name', 'plain', '--userns=host', ...cg, 'busybox', 'sh', '-c', WRITE_FILES]);
    const diff = await ok(run, ['diff', 'writer']);
    assert.match(diff, /^A \/root-file$/m);
    assert.match(diff, /^A \/user-file$/m);
    assert.equal(diff, await ok(run, ['diff', 'plain']));

    // commit: the new layer (stored uncompressed: its blob is the diff ID) holds container ids.
    await ok(run, ['commit', 'writer', 'committed:1']);
    const diffIds = JSON.parse(
      await ok(run, ['image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'committed:1']),
    ) as string[];
    const top = (diffIds.at(-1) ?? '').replace('sha256:', '');
    const layer = await tarOwners(join(sandbox.dataRoot, 'content', 'blobs', 'sha256', top));
    assert.equal(layer.get('root-file'), '0:0');
    assert.equal(layer.get('user-file'), '1000:1000');
    assert.equal(layer.get('tmp/d'), '0:0');
    // ... and a remapped container of the new image sees them as they were written.
    const committed = await r.runOnce(['committed:1', 'stat', '-c', '%u:%g %n', '/root-file', '/user-file']);
    assert.equal(committed.stdout, '0:0 /root-file\n1000:1000 /user-file\n', committed.stderr);

    // export of the stopped container: the image's files and the new ones, all in container ids.
    const exported = join(sandbox.root, 'export.tar');
    await ok(run, ['export', '-o', exported, 'writer']);
    const all = await tarOwners(exported);
    assert.equal(all.get('bin/busybox'), '0:0');
    assert.equal(all.get('root-file'), '0:0');
    assert.equal(all.get('user-file'), '1000:1000');
    assert.ok(
      [...all.values()].every((owner) => !owner.startsWith(String(START))),
      'no host id leaks',
    );

    // cp out of a running container.
    await ok(run, [
      'run',
      '-d',
      '--name',
      'box',
      ...cg,
      'busybox',
      'sh',
      '-c',
      `${WRITE_FILES} && exec sleep 1000`,
    ]);
    let out = await dockerBytes(r, ['cp', 'box:/user-file', '-']);
    for (let i = 0; i < 50 && out.code !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      out = await dockerBytes(r, ['cp', 'box:/user-file', '-']);
    }
    assert.equal(out.code, 0, out.stderr);
    assert.equal((await tarOwners(out.stdout)).get('user-file'), '1000:1000');
    const rootOut = await dockerBytes(r, ['cp', 'box:/root-file', '-']);
    assert.equal((await tarOwners(rootOut.stdout)).get('root-file'), '0:0', rootOut.stderr);

    // cp in: a file of the host's root is the container root's; one of uid 1000 is its uid 1000.
    const source = join(sandbox.root, 'cp-in');
    await mkdir(source);
    await writeFile(join(source, 'from-root'), 'r\n');
    await writeFile(join(source, 'from-user'), 'u\n');
    await chown(join(source, 'from-user'), 1000, 1000);
    await ok(run, ['cp', `${source}/.`, 'box:/tmp/']);
    const seen = await ok(run, ['exec', 'box', 'stat', '-c', '%u:%g %n', '/tmp/from-root', '/tmp/from-user']);
    assert.equal(seen, '0:0 /tmp/from-root\n1000:1000 /tmp/from-user\n');
    const pid = Number(await ok(run, ['inspect', '--format', '{{.State.Pid}}', 'box']));
    const hostRoot = await stat(`/proc/${pid}/root/tmp/from-root`);
    const hostUser = await stat(`/proc/${pid}/root/tmp/from-user`);
    assert.deepEqual([hostRoot.uid, hostRoot.gid], [START, START]);
    assert.deepEqual([hostUser.uid, hostUser.gid], [START + 1000, START + 1000]);
    // An owner the container's user namespace cannot represent is refused, as by Docker.
    const outside = join(sandbox.root, 'cp-outside');
    await writeFile(outside, 'x\n');
    await chown(outside, SIZE + 5, 0);
    const refused = await run(['cp', outside, 'box:/tmp/']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, new RegExp(`uid ${SIZE + 5} has no mapping`));

    await ok(run, ['rm', '-f', 'box', 'writer', 'plain']);
  });
}

test('userns-remap (shift): one shifted copy per layer, shared by containers, removed with the image', async (t) => {
  const { run, runOnce, rangeRoot, berthd } = await remappedDaemon(t, 'shift');
  const layersDir = join(rangeRoot, 'layers');
  const copies = async (): Promise<string[]> =>
    (await readdir(layersDir)).filter((name) => !name.endsWith('.json')).sort();
  assert.deepEqual(await copies(), [], 'no copy before a container needs one');

  const first = await runOnce(['busybox', 'stat', '-c', '%u:%g', '/bin/busybox']);
  assert.equal(first.stdout, '0:0\n', first.stderr + berthd.output());
  const made = await copies();
  const layerCount = (
    JSON.parse(
      await ok(run, ['image', 'inspect', '--format', '{{json .RootFS.Layers}}', 'busybox']),
    ) as string[]
  ).length;
  assert.equal(made.length, layerCount, 'one copy per layer');
  const inodes = await Promise.all(made.map(async (name) => (await stat(join(layersDir, name))).ino));
  for (const name of made)
    assert.equal((await stat(join(layersDir, name))).uid, START, 'copies hold host ids');

  // A second container (and a stopped one's export) uses the same copies.
  const second = await runOnce(['busybox', 'true']);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual(await copies(), made);
  assert.deepEqual(
    await Promise.all(made.map(async (name) => (await stat(join(layersDir, name))).ino)),
    inodes,
    'reused, not made again',
  );

  // Gone with the image (rmi sweeps in the background: bounded wait).
  await ok(run, ['rmi', 'busybox']);
  let left = await copies();
  for (let i = 0; i < 100 && left.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    left = await copies();
  }
  assert.deepEqual(left, [], berthd.output());
  assert.deepEqual(await readdir(layersDir), [], 'records go too');
});

test('shiftedCopy keeps modes, times, links, devices and xattrs and shifts every owner once', async (t) => {
  const sandbox = await createSandbox(t);
  const from = join(sandbox.root, 'layer');
  const to = join(sandbox.root, 'shifted');
  const helper = new FsHelper();
  t.after(() => helper.close());
  await mkdir(join(from, 'dir'), { recursive: true });
  await mkdir(join(from, 'opaque'));
  await helper.setXattr(join(from, 'opaque'), 'trusted.overlay.opaque', Buffer.from('y'));
  await chmod(join(from, 'dir'), 0o2775);
  await writeFile(join(from, 'setuid'), 'x');
  await chmod(join(from, 'setuid'), 0o4755);
  await writeFile(join(from, 'user'), 'u');
  await chown(join(from, 'user'), 1000, 1001);
  await link(join(from, 'user'), join(from, 'dir', 'hardlink'));
  await writeFile(join(from, 'unmapped'), '?');
  await chown(join(from, 'unmapped'), SIZE + 1, 0);
  await symlink('user', join(from, 'link'));
  await execOk('chown', ['-h', '7:7', join(from, 'link')]);
  await helper.mknod(join(from, 'whiteout'), 'char', 0o600, 0, 0);
  await helper.mknod(join(from, 'fifo'), 'fifo', 0o644);
  await writeFile(join(from, 'ping'), 'p');
  await helper.setXattr(join(from, 'ping'), 'user.note', Buffer.from('kept'));
  // A version 2 file capability: effective, CAP_NET_RAW (13) permitted.
  const v2 = Buffer.alloc(20);
  v2.writeUInt32LE(0x02000001, 0);
  v2.writeUInt32LE(1 << 13, 4);
  await helper.setXattr(join(from, 'ping'), 'security.capability', v2);
  await utimes(join(from, 'user'), 1_000_000, 1_000_000);
  const before = await lstat(join(from, 'user'), { bigint: true });

  await shiftedCopy(
    from,
    to,
    idShift(
      {
        uids: [{ containerID: 0, hostID: START, size: SIZE }],
        gids: [{ containerID: 0, hostID: START, size: SIZE }],
      },
      'to-host',
    ),
  );

  const owner = async (path: string): Promise<string> => {
    const s = await lstat(join(to, path));
    return `${s.uid}:${s.gid}`;
  };
  assert.equal(await owner(''), `${START}:${START}`);
  assert.equal(await owner('setuid'), `${START}:${START}`);
  assert.equal(await owner('user'), `${START + 1000}:${START + 1001}`, 'shifted once, not per name');
  assert.equal(await owner('unmapped'), `65534:${START}`);
  assert.equal(await owner('link'), `${START + 7}:${START + 7}`);
  assert.equal(await owner('whiteout'), `${START}:${START}`);
  assert.equal((await lstat(join(to, 'setuid'))).mode & 0o7777, 0o4755);
  assert.equal((await lstat(join(to, 'dir'))).mode & 0o7777, 0o2775);
  assert.equal((await lstat(join(to, 'user'))).ino, (await lstat(join(to, 'dir', 'hardlink'))).ino);
  assert.equal((await lstat(join(to, 'user'), { bigint: true })).mtimeNs, before.mtimeNs);
  assert.equal(await readlink(join(to, 'link')), 'user');
  const whiteout = await lstat(join(to, 'whiteout'));
  assert.ok(whiteout.isCharacterDevice() && whiteout.rdev === 0);
  assert.ok((await lstat(join(to, 'fifo'))).isFIFO());
  const [opaque, ping] = await helper.xattrs([join(to, 'opaque'), join(to, 'ping')]);
  assert.equal(opaque?.get('trusted.overlay.opaque')?.toString(), 'y');
  assert.equal(ping?.get('user.note')?.toString(), 'kept');
  const capability = ping?.get('security.capability');
  assert.equal(capability?.length, 24, 'a namespaced (v3) capability');
  assert.equal(capability?.readUInt32LE(0), 0x03000001);
  assert.equal(capability?.readUInt32LE(4), 1 << 13);
  assert.equal(capability?.readUInt32LE(20), START, 'for the container root only');
  // The source is untouched.
  assert.equal((await lstat(join(from, 'user'))).uid, 1000);
  const [source] = await helper.xattrs([join(from, 'ping')]);
  assert.deepEqual(source?.get('security.capability'), v2);
});
