/**
 * Health checks through the real docker CLI: --health-* flags, State.Health in inspect, the
 * health_status events, `(healthy)` in docker ps, an image's HEALTHCHECK and --no-healthcheck,
 * probe timeouts, and no probes once the container stopped.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { startBerthd, docker } from '../helpers/berthd.js';
import { ensureFixture } from '../../fixtures/index.js';

type Run = (args: string[]) => ReturnType<typeof docker>;

interface Health {
  Status: string;
  FailingStreak: number;
  Log: Array<{ Start: string; End: string; ExitCode: number; Output: string }>;
}

async function daemonWithBusybox(t: TestContext): Promise<{ sandbox: Sandbox; run: Run }> {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox);
  const run: Run = (args) => docker(sandbox, berthd.dockerHost, args);
  const busybox = await ensureFixture('busybox');
  const loaded = await run(['load', '-i', busybox.dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);
  return { sandbox, run };
}

async function ok(run: Run, args: string[]): Promise<string> {
  const result = await run(args);
  assert.equal(result.code, 0, `docker ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function health(run: Run, name: string): Promise<Health | null> {
  return JSON.parse(await ok(run, ['inspect', '-f', '{{json .State.Health}}', name])) as Health | null;
}

/** Polls until `done` holds (at most 300 times, 100 ms apart). */
async function waitForHealth(
  run: Run,
  name: string,
  done: (h: Health | null) => boolean,
): Promise<Health | null> {
  let current: Health | null = null;
  for (let i = 0; i < 300; i++) {
    current = await health(run, name);
    if (done(current)) return current;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`health of ${name} never reached the expected state: ${JSON.stringify(current)}`);
}

test('--health-cmd: starting, unhealthy, healthy, events, docker ps, stop ends the probes', async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const name = `h-${sandbox.id}`;
  const since = Math.floor(Date.now() / 1000) - 1;
  await ok(run, [
    'run',
    '-d',
    '--name',
    name,
    '--cgroup-parent',
    sandbox.cgroupParent,
    '--health-cmd',
    'echo probing; test -f /tmp/ok',
    '--health-interval',
    '100ms',
    '--health-retries',
    '2',
    'busybox',
    'sleep',
    '1000',
  ]);
  const first = await health(run, name);
  assert.ok(first !== null);
  const unhealthy = await waitForHealth(run, name, (h) => h?.Status === 'unhealthy');
  assert.ok((unhealthy?.FailingStreak ?? 0) >= 2);
  const failed = unhealthy?.Log.at(-1);
  assert.equal(failed?.ExitCode, 1);
  assert.equal(failed?.Output, 'probing\n');
  assert.ok(Date.parse(failed?.End ?? '') >= Date.parse(failed?.Start ?? ''));
  assert.match(
    await ok(run, ['ps', '--format', '{{.Status}}', '--filter', `name=${name}`]),
    /^Up .* \(unhealthy\)$/m,
  );

  await ok(run, ['exec', name, 'touch', '/tmp/ok']);
  const healthy = await waitForHealth(run, name, (h) => h?.Status === 'healthy');
  assert.equal(healthy?.FailingStreak, 0);
  assert.ok((healthy?.Log.length ?? 0) <= 5, 'at most five probes are kept');
  assert.match(
    await ok(run, ['ps', '--format', '{{.Status}}', '--filter', `name=${name}`]),
    /^Up .* \(healthy\)$/m,
  );

  const events = await ok(run, [
    'events',
    '--since',
    String(since),
    '--until',
    String(Math.floor(Date.now() / 1000) + 1),
    '--filter',
    `container=${name}`,
    '--format',
    '{{.Action}}',
  ]);
  const actions = events.trim().split('\n');
  assert.ok(actions.includes('health_status: unhealthy'), events);
  assert.ok(actions.includes('health_status: healthy'), events);
  assert.ok(actions.indexOf('health_status: unhealthy') < actions.indexOf('health_status: healthy'));

  await ok(run, ['stop', '-t', '1', name]);
  const afterStop = await health(run, name);
  const probes = afterStop?.Log.map((entry) => entry.Start);
  // Ten intervals without a container: no probe may run.
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(
    (await health(run, name))?.Log.map((entry) => entry.Start),
    probes,
  );
});

test("a probe that runs too long times out; an image's HEALTHCHECK and --no-healthcheck", async (t) => {
  const { sandbox, run } = await daemonWithBusybox(t);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  const slow = `slow-${sandbox.id}`;
  await ok(run, [
    'run',
    '-d',
    '--name',
    slow,
    ...cg,
    '--health-cmd',
    'sleep 30',
    '--health-interval',
    '100ms',
    '--health-timeout',
    '200ms',
    '--health-retries',
    '1',
    'busybox',
    'sleep',
    '1000',
  ]);
  const timedOut = await waitForHealth(run, slow, (h) => h?.Status === 'unhealthy');
  assert.equal(timedOut?.Log.at(-1)?.ExitCode, -1);
  assert.equal(timedOut?.Log.at(-1)?.Output, 'Health check exceeded timeout (200ms)');
  // The killed probes do not pile up in the container.
  const processes = await ok(run, ['exec', slow, 'ps', '-o', 'args']);
  assert.ok(processes.split('\n').filter((line) => line.includes('sleep 30')).length <= 1, processes);

  // A committed container keeps its health check in the image config.
  const base = `base-${sandbox.id}`;
  await ok(run, [
    'create',
    '--name',
    base,
    ...cg,
    '--health-cmd',
    'true',
    '--health-interval',
    '100ms',
    'busybox',
    'sleep',
    '1000',
  ]);
  const image = `health-${sandbox.id}:v1`;
  await ok(run, ['commit', base, image]);
  assert.match(
    await ok(run, ['image', 'inspect', '-f', '{{json .Config.Healthcheck}}', image]),
    /"CMD-SHELL","true"/,
  );
  const fromImage = `img-${sandbox.id}`;
  await ok(run, ['run', '-d', '--name', fromImage, ...cg, image]);
  await waitForHealth(run, fromImage, (h) => h?.Status === 'healthy');
  const disabled = `none-${sandbox.id}`;
  await ok(run, ['run', '-d', '--name', disabled, ...cg, '--no-healthcheck', image]);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(await health(run, disabled), null);
  assert.doesNotMatch(
    await ok(run, ['ps', '--format', '{{.Status}}', '--filter', `name=${disabled}`]),
    /health/,
  );
});
