/** Health check rules (moby's health.go) and the monitor driven by engine events, with a fake probe runner. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  initialState,
  type ContainerRecord,
  type HealthState,
} from '../../../src/engine/container-record.js';
import { EventBus, type EventMessage } from '../../../src/engine/events.js';
import {
  HealthMonitor,
  LimitedOutput,
  MAX_OUTPUT,
  goDuration,
  healthTimings,
  nextProbeDelay,
  probeCommand,
  recordProbe,
  type ProbeResult,
} from '../../../src/engine/health.js';

const MS = 1_000_000;

test('healthTimings: nanoseconds to milliseconds, zero means the default', () => {
  assert.deepEqual(healthTimings(undefined), {
    interval: 30_000,
    timeout: 30_000,
    startPeriod: 0,
    startInterval: 5_000,
    retries: 3,
  });
  assert.deepEqual(
    healthTimings({
      Interval: 250 * MS,
      Timeout: 2000 * MS,
      StartPeriod: 10_000 * MS,
      StartInterval: 0,
      Retries: 5,
    }),
    { interval: 250, timeout: 2000, startPeriod: 10_000, startInterval: 5_000, retries: 5 },
  );
});

test('probeCommand: CMD, CMD-SHELL through the shell, NONE and nothing', () => {
  assert.deepEqual(probeCommand({ Healthcheck: { Test: ['CMD', 'true', 'x'] } }), ['true', 'x']);
  assert.deepEqual(probeCommand({ Healthcheck: { Test: ['CMD-SHELL', 'test -f /ok'] } }), [
    '/bin/sh',
    '-c',
    'test -f /ok',
  ]);
  assert.deepEqual(probeCommand({ Shell: ['/bin/ash', '-ec'], Healthcheck: { Test: ['CMD-SHELL', 'x'] } }), [
    '/bin/ash',
    '-ec',
    'x',
  ]);
  assert.equal(probeCommand({ Healthcheck: { Test: ['NONE'] } }), undefined);
  assert.equal(probeCommand({ Healthcheck: { Test: [] } }), undefined);
  assert.equal(probeCommand({}), undefined);
});

const result = (at: number, exitCode: number): ProbeResult => ({
  Start: new Date(at).toISOString(),
  End: new Date(at + 5).toISOString(),
  ExitCode: exitCode,
  Output: `probe at ${at}`,
});

test('recordProbe: retries, the start period, the last five probes', () => {
  const context = { startedAt: 0, startPeriod: 1000, retries: 2 };
  let state: HealthState = { Status: 'starting', FailingStreak: 0, Log: [] };
  state = recordProbe(state, result(100, 1), context);
  assert.deepEqual([state.Status, state.FailingStreak], ['starting', 0], 'inside the start period');
  state = recordProbe(state, result(1500, 1), context);
  assert.deepEqual([state.Status, state.FailingStreak], ['starting', 1]);
  state = recordProbe(state, result(1600, 1), context);
  assert.deepEqual([state.Status, state.FailingStreak], ['unhealthy', 2]);
  state = recordProbe(state, result(1700, 0), context);
  assert.deepEqual([state.Status, state.FailingStreak], ['healthy', 0]);
  // Once healthy, the start period no longer spares failures.
  state = recordProbe({ ...state }, result(200, 1), context);
  assert.deepEqual([state.Status, state.FailingStreak], ['healthy', 1]);
  for (let i = 0; i < 10; i++) state = recordProbe(state, result(2000 + i, -1), context);
  assert.equal(state.Log.length, 5);
  assert.equal(state.Log.at(-1)?.Start, new Date(2009).toISOString());
  assert.equal(state.Status, 'unhealthy');
});

test('nextProbeDelay: start interval while starting in the start period, never past its end', () => {
  const timings = { interval: 30_000, timeout: 1000, startPeriod: 60_000, startInterval: 5_000, retries: 3 };
  assert.equal(nextProbeDelay(timings, 0, 0, 'starting'), 5_000);
  assert.equal(nextProbeDelay(timings, 0, 0, 'healthy'), 30_000);
  assert.equal(nextProbeDelay(timings, 0, 50_000, 'starting'), 10_000, 'what is left of the start period');
  assert.equal(nextProbeDelay(timings, 0, 60_000, 'starting'), 30_000);
  assert.equal(nextProbeDelay({ ...timings, startPeriod: 0 }, 0, 0, 'starting'), 30_000);
});

test("goDuration writes Go's Duration.String for the timeout message", () => {
  assert.equal(goDuration(200), '200ms');
  assert.equal(goDuration(1000), '1s');
  assert.equal(goDuration(1500), '1.5s');
  assert.equal(goDuration(30_000), '30s');
  assert.equal(goDuration(90_000), '1m30s');
  assert.equal(goDuration(7_200_000), '2h0m0s');
});

test('LimitedOutput keeps 4096 bytes and marks the cut', () => {
  const output = new LimitedOutput();
  output.write(Buffer.from('ok\n'));
  assert.equal(output.toString(), 'ok\n');
  output.write(Buffer.alloc(MAX_OUTPUT, 'x'));
  assert.equal(output.toString().length, MAX_OUTPUT + 3);
  assert.ok(output.toString().endsWith('x...'));
});

function container(id: string): ContainerRecord {
  return {
    id,
    name: `name-${id}`,
    created: new Date().toISOString(),
    path: 'sleep',
    args: ['1000'],
    image: 'sha256:x',
    imageRef: 'busybox',
    config: { Healthcheck: { Test: ['CMD', 'probe'], Interval: 1 * MS, Retries: 2 } },
    hostConfig: {},
    state: { ...initialState(), Status: 'running', Running: true, StartedAt: new Date().toISOString() },
    restartCount: 0,
    snapshotKey: id,
    logPath: '/dev/null',
  };
}

/** The next event the filter accepts, bounded by a count of events. */
async function nextEvent(bus: EventBus, accept: (event: EventMessage) => boolean): Promise<EventMessage> {
  const subscription = bus.subscribe({ filter: accept });
  try {
    const event = await subscription.next();
    assert.ok(event !== undefined);
    return event;
  } finally {
    subscription.close();
  }
}

test(
  'HealthMonitor: probes after start, publishes status changes, stops on die',
  { timeout: 30_000 },
  async (t) => {
    // The monitor's timers do not hold the process open; the test does, while it waits.
    const keepAlive = setInterval(() => undefined, 1000);
    t.after(() => clearInterval(keepAlive));
    const bus = new EventBus();
    const records = new Map<string, ContainerRecord>();
    const record = container('c1');
    records.set(record.id, record);
    let exitCode = 1;
    const probed: string[][] = [];
    let saved = 0;
    const monitor = new HealthMonitor({
      containers: {
        find: (id) => records.get(id),
        list: () => [...records.values()],
        save: async () => {
          saved++;
        },
      },
      events: bus,
      runProbe: async (_record, command) => {
        probed.push(command);
        return { exitCode, output: `exit ${exitCode}` };
      },
      log: { error: (message) => assert.fail(message) },
    });
    const start = (action: string): void => {
      bus.publish({ Type: 'container', Action: action, Actor: { ID: record.id } });
    };
    const unhealthy = nextEvent(bus, (e) => e.Action === 'health_status: unhealthy');
    monitor.start();
    const event = await unhealthy;
    assert.equal(event.Actor.ID, 'c1');
    assert.equal(event.Actor.Attributes.name, 'name-c1');
    assert.equal(record.state.Health?.Status, 'unhealthy');
    assert.ok((record.state.Health?.FailingStreak ?? 0) >= 2);
    assert.deepEqual(probed[0], ['probe']);
    assert.ok(saved >= 1, 'a status change is saved');

    exitCode = 0;
    await nextEvent(bus, (e) => e.Action === 'health_status: healthy');
    assert.equal(record.state.Health?.Log.at(-1)?.Output, 'exit 0');

    // A restart makes the status starting again.
    const restarted = nextEvent(bus, (e) => e.Action === 'health_status: healthy');
    start('start');
    await new Promise((r) => setImmediate(r));
    // Starting again, unless the first probe after the restart already succeeded (a loaded machine).
    assert.ok(
      ['starting', 'healthy'].includes(record.state.Health?.Status ?? ''),
      record.state.Health?.Status,
    );
    await restarted;

    start('die');
    await new Promise((r) => setImmediate(r));
    const count = probed.length;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(probed.length, count, 'no probe after the container died');
    monitor.close();
  },
);
