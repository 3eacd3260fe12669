/**
 * The remaining Docker API pieces through the real docker CLI: login (POST /auth) and push
 * against a local registry with htpasswd auth, system df, run --init (berth-init as PID 1:
 * zombies reaped, the command's exit status), per-container metrics on metrics-addr, and
 * `docker cp CONTAINER:/ newdir`.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import {
  apiRequest,
  docker,
  freePort,
  startBerthd,
  type Berthd,
  type BerthdOptions,
} from '../helpers/berthd.js';
import { startBasicAuthRegistry } from '../helpers/registry-auth.js';
import { ensureFixture } from '../../fixtures/index.js';

type Run = (args: string[]) => ReturnType<typeof docker>;

async function daemonWithBusybox(
  t: TestContext,
  options: BerthdOptions = {},
): Promise<{ sandbox: Sandbox; berthd: Berthd; run: Run; ok: (args: string[]) => Promise<string> }> {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox, options);
  const run: Run = (args) => docker(sandbox, berthd.dockerHost, args);
  const ok = async (args: string[]): Promise<string> => {
    const result = await run(args);
    assert.equal(result.code, 0, `docker ${args.join(' ')}: ${result.stderr}`);
    return result.stdout;
  };
  await ok(['load', '-i', (await ensureFixture('busybox')).dockerArchive]);
  return { sandbox, berthd, run, ok };
}

test('docker login checks credentials with the registry; docker push uses them', async (t) => {
  const registry = await startBasicAuthRegistry({ alice: 's3cret' });
  if (!registry) {
    t.skip('this machine has no bcrypt in crypt(3), so no htpasswd file can be made');
    return;
  }
  t.after(() => registry.stop());
  const { sandbox, berthd, run, ok } = await daemonWithBusybox(t);

  const wrong = await run(['login', registry.host, '-u', 'alice', '-p', 'wrong']);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /failed with status: 401 Unauthorized/);
  assert.doesNotMatch(berthd.output(), /wrong/);

  const target = `${registry.host}/team/busybox:v1`;
  await ok(['tag', 'busybox', target]);
  // Without login the registry refuses the push.
  const anonymous = await run(['push', target]);
  assert.notEqual(anonymous.code, 0, anonymous.stdout);

  const login = await run(['login', registry.host, '-u', 'alice', '-p', 's3cret']);
  assert.equal(login.code, 0, login.stderr);
  assert.match(login.stdout, /Login Succeeded/);
  const saved = JSON.parse(await readFile(join(sandbox.root, 'docker-config', 'config.json'), 'utf8')) as {
    auths: Record<string, unknown>;
  };
  assert.ok(registry.host in saved.auths, JSON.stringify(Object.keys(saved.auths)));
  assert.doesNotMatch(berthd.output(), /s3cret/);

  const pushed = await ok(['push', target]);
  assert.match(pushed, /v1: digest: sha256:[0-9a-f]{64} size: \d+/);
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1];
  // The registry has it, and berth records the digest it is served under.
  const manifest = await fetch(`${registry.url}/v2/team/busybox/manifests/v1`, {
    headers: {
      authorization: `Basic ${Buffer.from('alice:s3cret').toString('base64')}`,
      accept:
        'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
    },
  });
  assert.equal(manifest.status, 200);
  assert.equal(manifest.headers.get('docker-content-digest'), digest);
  const repoDigests = await ok(['image', 'inspect', '-f', '{{json .RepoDigests}}', target]);
  assert.ok(repoDigests.includes(`${registry.host}/team/busybox@${digest}`), repoDigests);
});

test('docker system df reports images, containers with their writable layer, and volumes', async (t) => {
  const { sandbox, ok } = await daemonWithBusybox(t);
  await ok(['volume', 'create', 'dfvol']);
  const id = (
    await ok([
      'run',
      '--cgroup-parent',
      sandbox.cgroupParent,
      '-v',
      'dfvol:/data',
      'busybox',
      'sh',
      '-c',
      'head -c 300000 /dev/zero > /data/f; head -c 200000 /dev/zero > /big',
    ])
  ).trim();
  void id;
  const verbose = await ok(['system', 'df', '-v', '--format', '{{json .}}']);
  const usage = JSON.parse(verbose) as {
    Images: Array<{ Containers: string; Size: string }>;
    Containers: Array<{ Size: string }>;
    Volumes: Array<{ Name: string; Links: string; Size: string }>;
  };
  assert.equal(usage.Images.length, 1);
  assert.equal(usage.Images[0]?.Containers, '1');
  assert.equal(usage.Containers.length, 1);
  assert.match(usage.Containers[0]?.Size ?? '', /^(2\d\d(\.\d+)?kB|0\.2\d*MB)$/);
  const volume = usage.Volumes.find((v) => v.Name === 'dfvol');
  assert.equal(volume?.Links, '1');
  assert.match(volume?.Size ?? '', /^(3\d\d(\.\d+)?kB|0\.3\d*MB)$/);
  const summary = await ok(['system', 'df']);
  assert.match(summary, /^Images\s+1\s+1\s/m);
  assert.match(summary, /^Containers\s+1\s+0\s/m);
  assert.match(summary, /^Local Volumes\s+1\s+1\s/m);
  assert.match(summary, /^Build Cache\s+0\s+0\s/m);
});

test("docker run --init: berth-init is PID 1, reaps zombies and exits with the command's status", async (t) => {
  const { sandbox, ok, run } = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  const ps = await ok(['run', '--rm', ...cg, '--init', 'busybox', 'ps', '-o', 'pid,args']);
  assert.match(ps, /^\s*1\s+\/sbin\/docker-init -- ps -o pid,args$/m);
  // An orphan that exits after its parent is re-parented to PID 1 and stays a zombie unless PID 1
  // reaps it. Without --init, PID 1 is `sleep`, which reaps nothing: the control case.
  const orphanState = async (init: boolean): Promise<string> => {
    const id = (
      await ok([
        'run',
        '-d',
        ...cg,
        ...(init ? ['--init'] : []),
        'busybox',
        'sh',
        '-c',
        '(sleep 0.1 &) ; exec sleep 300',
      ])
    ).trim();
    try {
      for (let attempt = 0; attempt < 100; attempt++) {
        const ps = await ok(['exec', id, 'ps', '-o', 'stat,args']);
        if (/^Z/m.test(ps)) return 'zombie';
        if (!/^\S+\s+sleep 0\.1$/m.test(ps)) return 'reaped';
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return 'still running';
    } finally {
      await ok(['rm', '-f', id]);
    }
  };
  assert.equal(await orphanState(false), 'zombie');
  assert.equal(await orphanState(true), 'reaped');
  const exit = await run(['run', '--rm', ...cg, '--init', 'busybox', 'sh', '-c', 'exit 7']);
  assert.equal(exit.code, 7);
  const killed = await run(['run', '--rm', ...cg, '--init', 'busybox', 'sh', '-c', 'kill -TERM $$']);
  assert.equal(killed.code, 143);
});

test('per-container metrics on metrics-addr', async (t) => {
  const port = await freePort();
  const { sandbox, ok } = await daemonWithBusybox(t, { config: { 'metrics-addr': `127.0.0.1:${port}` } });
  const id = (
    await ok([
      'run',
      '-d',
      '--name',
      'metered',
      '--cgroup-parent',
      sandbox.cgroupParent,
      'busybox',
      'sleep',
      '300',
    ])
  ).trim();
  const response = await apiRequest({ host: '127.0.0.1', port }, '/metrics');
  assert.equal(response.status, 200);
  const line = (name: string): number => {
    const match = new RegExp(`^${name}\\{id="${id}",name="metered",image="busybox"\\} (\\S+)$`, 'm').exec(
      response.body,
    );
    assert.ok(match, `${name} missing in:\n${response.body}`);
    return Number(match[1]);
  };
  assert.equal(line('berth_container_running'), 1);
  assert.equal(line('berth_container_restarts_total'), 0);
  assert.ok(line('berth_container_memory_usage_bytes') > 0);
  assert.ok(line('berth_container_pids') >= 1);
  assert.ok(line('berth_container_cpu_usage_seconds_total') >= 0);
  await ok(['rm', '-f', id]);
});

test('docker cp CONTAINER:/ newdir copies the root filesystem into newdir', async (t) => {
  const { sandbox, ok } = await daemonWithBusybox(t);
  const id = (await ok(['create', '--cgroup-parent', sandbox.cgroupParent, 'busybox', 'true'])).trim();
  const target = join(sandbox.root, 'rootcopy');
  await ok(['cp', `${id}:/`, target]);
  const names = await readdir(target);
  assert.ok(names.includes('bin'), names.join(' '));
  assert.ok((await lstat(join(target, 'bin', 'busybox'))).isFile());
  assert.ok(!names.includes('rootcopy'));
  // Into an existing directory the entries land in it as well.
  await ok(['cp', `${id}:/`, sandbox.root]);
  assert.ok((await lstat(join(sandbox.root, 'bin', 'busybox'))).isFile());
});
