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
