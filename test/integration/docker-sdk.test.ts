/** The Docker SDKs against berthd: docker-py (Debian's python3-docker). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { createSandbox } from '../helpers/sandbox.js';
import { startBerthd, docker } from '../helpers/berthd.js';
import { execProgram } from '../helpers/exec.js';
import { ensureFixture } from '../../fixtures/index.js';

const SCRIPT = fileURLToPath(new URL('../../../test/integration/sdk/docker_py_check.py', import.meta.url));
const PYTHON = '/usr/bin/python3';

test('docker-py drives containers, exec, images and volumes', async (t) => {
  const probe = await execProgram(PYTHON, ['-c', 'import docker']).catch(() => ({ code: 1 }));
  if (!existsSync(PYTHON) || probe.code !== 0) {
    t.skip('python3-docker is not installed (scripts/setup.sh installs it)');
    return;
  }
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const busybox = await ensureFixture('busybox');
  assert.equal((await docker(sandbox, berthd.dockerHost, ['load', '-i', busybox.dockerArchive])).code, 0);
  const result = await execProgram(PYTHON, [SCRIPT, berthd.dockerHost, sandbox.cgroupParent], {
    timeoutMs: 120_000,
  });
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(result.stdout.trim().split('\n'), [
    'ping ok',
    'images ok',
    'run ok',
    'exec ok',
    'lifecycle ok',
    'volumes ok',
  ]);
});

test('dockerode drives containers, exec, images and volumes', async (t) => {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const busybox = await ensureFixture('busybox');
  assert.equal((await docker(sandbox, berthd.dockerHost, ['load', '-i', busybox.dockerArchive])).code, 0);
  const { default: Docker } = await import('dockerode');
  const client = new Docker({ socketPath: berthd.dockerHost.replace(/^unix:\/\//, '') });

  const images = await client.listImages();
  assert.ok(images.some((image) => (image.RepoTags ?? []).includes('busybox:latest')));

  const container = await client.createContainer({
    Image: 'busybox',
    Cmd: ['sh', '-c', 'echo from dockerode; sleep 1000'],
    Labels: { sdk: 'node' },
    HostConfig: { CgroupParent: sandbox.cgroupParent },
  });
  await container.start();
  const info = await container.inspect();
  assert.equal(info.State.Running, true);
  const listed = await client.listContainers({ filters: { label: ['sdk=node'] } });
  assert.deepEqual(
    listed.map((c) => c.Id),
    [container.id],
  );

  const exec = await container.exec({ Cmd: ['sh', '-c', 'exit 3'], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  await new Promise<void>((resolve) => {
    stream.on('end', () => resolve());
    stream.resume();
  });
  assert.equal((await exec.inspect()).ExitCode, 3);

  const logs = await container.logs({ stdout: true, stderr: true });
  assert.match(logs.toString('latin1'), /from dockerode\n/);
  await container.stop({ t: 1 });
  assert.equal((await container.wait()).StatusCode, 137);
  await container.remove();
  await assert.rejects(container.inspect(), /No such container/);

  const volume = await client.createVolume({ Name: 'node-volume' });
  assert.equal((await volume.inspect()).Name, 'node-volume');
  const { Volumes } = await client.listVolumes();
  assert.ok(Volumes.some((v) => v.Name === 'node-volume'));
  await client.getVolume('node-volume').remove();
});
