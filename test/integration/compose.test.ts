/**
 * The acceptance test of networking with a real client: Debian's docker-compose against berthd
 * brings up two services with a named volume on the project's default network, they reach each
 * other by service name, and `down -v` removes containers, network and volume.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox } from '../helpers/sandbox.js';
import { startBerthd, docker } from '../helpers/berthd.js';
import { execProgram, type ExecResult } from '../helpers/exec.js';
import { ensureFixture } from '../../fixtures/index.js';

test('docker-compose up, service names resolve, down -v removes everything', async (t) => {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const run = (args: string[]): Promise<ExecResult> => docker(sandbox, berthd.dockerHost, args);
  const busybox = await ensureFixture('busybox');
  assert.equal((await run(['load', '-i', busybox.dockerArchive])).code, 0);

  const project = join(sandbox.root, 'project');
  await mkdir(project);
  await writeFile(
    join(project, 'docker-compose.yml'),
    [
      'version: "3.8"',
      'services:',
      '  web:',
      '    image: busybox:latest',
      '    command: ["sh", "-c", "echo hello-from-web > /data/index.html && exec httpd -f -p 8080 -h /data"]',
      '    volumes: ["webdata:/data"]',
      `    cgroup_parent: ${sandbox.cgroupParent}`,
      '  client:',
      '    image: busybox:latest',
      '    command: ["sleep", "300"]',
      `    cgroup_parent: ${sandbox.cgroupParent}`,
      '    depends_on: [web]',
      'volumes:',
      '  webdata: {}',
      '',
    ].join('\n'),
  );
  const compose = (args: string[]): Promise<ExecResult> =>
    execProgram('docker-compose', ['--no-ansi', '-p', 'demo', ...args], {
      cwd: project,
      timeoutMs: 120_000,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: sandbox.root,
        DOCKER_HOST: berthd.dockerHost,
        DOCKER_CONFIG: join(sandbox.root, 'docker-config'),
      },
    });
  t.after(() => compose(['down', '-v', '--timeout', '1']).catch(() => undefined));

  const up = await compose(['up', '-d']);
  assert.equal(up.code, 0, up.stderr);
  let fetched: ExecResult | undefined;
  for (let attempt = 0; attempt < 30; attempt++) {
    fetched = await compose(['exec', '-T', 'client', 'wget', '-qO-', 'http://web:8080/index.html']);
    // Retried while httpd starts; a 0 exit with no output is retried too (see the note on issue 5
    // about dockerpty's exec stream under load).
    if (fetched.code === 0 && fetched.stdout.trim() !== '') break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.equal(fetched?.code, 0, `client reaches web by its service name: ${fetched?.stderr}`);
  assert.equal(fetched?.stdout.trim(), 'hello-from-web');
  const networks = await run(['network', 'ls', '--format', '{{.Name}}']);
  assert.match(networks.stdout, /^demo_default$/m);
  const volumes = await run(['volume', 'ls', '--format', '{{.Name}}']);
  assert.match(volumes.stdout, /^demo_webdata$/m);

  const down = await compose(['down', '-v', '--timeout', '1']);
  assert.equal(down.code, 0, down.stderr);
  assert.equal((await run(['ps', '-aq'])).stdout, '');
  assert.doesNotMatch((await run(['network', 'ls', '--format', '{{.Name}}'])).stdout, /demo_default/);
  assert.doesNotMatch((await run(['volume', 'ls', '--format', '{{.Name}}'])).stdout, /demo_webdata/);
});
