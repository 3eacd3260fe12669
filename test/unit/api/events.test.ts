import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { BerthError } from '../../../src/common/errors.js';
import { encodeEvent, EventBus, type EventMessage } from '../../../src/engine/events.js';
import { EVENT_FILTERS, eventMatcher, parseEventTime } from '../../../src/api/events.js';
import { Filters } from '../../../src/api/filters.js';
import { Router } from '../../../src/api/router.js';
import { ApiServer } from '../../../src/api/server.js';
import { registerSystemRoutes } from '../../../src/api/system.js';

const SECOND = 1_000_000_000n;

/** A bus whose clock the test moves by hand. */
function manualBus(options: { history?: number; queueLimit?: number } = {}): {
  bus: EventBus;
  set(t: bigint): void;
} {
  let now = 1_700_000_000n * SECOND;
  return { bus: new EventBus({ ...options, clock: () => now }), set: (t) => (now = t) };
}

test('published events have Docker shape, with the deprecated fields for containers and images', () => {
  const { bus } = manualBus();
  const container = bus.publish({
    Type: 'container',
    Action: 'start',
    Actor: { ID: 'c1', Attributes: { image: 'busybox', name: 'web' } },
  });
  assert.equal(
    encodeEvent(container),
    '{"status":"start","id":"c1","from":"busybox","Type":"container","Action":"start",' +
      '"Actor":{"ID":"c1","Attributes":{"image":"busybox","name":"web"}},"scope":"local",' +
      '"time":1700000000,"timeNano":1700000000000000000}\n',
  );
  const image = bus.publish({
    Type: 'image',
    Action: 'pull',
    Actor: { ID: 'busybox:latest' },
    timeNano: 1_700_000_001_123_456_789n,
  });
  assert.equal(
    encodeEvent(image),
    '{"status":"pull","id":"busybox:latest","Type":"image","Action":"pull","Actor":{"ID":"busybox:latest","Attributes":{}},' +
      '"scope":"local","time":1700000001,"timeNano":1700000001123456789}\n',
    'timeNano keeps every digit',
  );
  const network = bus.publish({
    Type: 'network',
    Action: 'create',
    Actor: { ID: 'n1', Attributes: { name: 'br' } },
  });
  assert.equal(network.status, undefined);
  assert.ok(!encodeEvent(network).includes('"status"'));
});

test('subscribers get live events; since/until replay kept ones; nothing is replayed without them', async () => {
  const { bus, set } = manualBus();
  set(10n * SECOND);
  bus.publish({ Type: 'daemon', Action: 'reload', Actor: { ID: 'd' } });
  set(20n * SECOND);
  bus.publish({ Type: 'daemon', Action: 'reload', Actor: { ID: 'e' } });
  assert.deepEqual(bus.subscribe().buffered, []);
  assert.deepEqual(
    bus.subscribe({ since: 15n * SECOND }).buffered.map((e) => e.Actor.ID),
    ['e'],
  );
  assert.deepEqual(
    bus.subscribe({ until: 15n * SECOND }).buffered.map((e) => e.Actor.ID),
    ['d'],
  );
  assert.deepEqual(
    bus.subscribe({ since: 10n * SECOND, until: 20n * SECOND }).buffered.map((e) => e.Actor.ID),
    ['d', 'e'],
  );
  bus.close();
  assert.equal(bus.subscriberCount, 0);

  const live = bus.subscribe({ filter: (e) => e.Action === 'die', until: 40n * SECOND });
  assert.equal(bus.subscriberCount, 1);
  set(30n * SECOND);
  bus.publish({ Type: 'container', Action: 'start', Actor: { ID: 'x' } });
  bus.publish({ Type: 'container', Action: 'die', Actor: { ID: 'x' } });
  set(50n * SECOND);
  bus.publish({ Type: 'container', Action: 'die', Actor: { ID: 'late' } });
  const got = await live.next();
  assert.equal(got?.Actor.ID, 'x');
  live.close();
  assert.equal(await live.next(), undefined);
  assert.equal(bus.subscriberCount, 0);
});

test('the bus keeps a bounded history and cuts off a subscriber that falls behind', () => {
  const { bus } = manualBus({ history: 3, queueLimit: 2 });
  const slow = bus.subscribe();
  for (let i = 0; i < 5; i++) bus.publish({ Type: 'daemon', Action: `a${i}`, Actor: { ID: 'd' } });
  assert.deepEqual(
    bus.subscribe({ since: 0n }).buffered.map((e) => e.Action),
    ['a2', 'a3', 'a4'],
  );
  assert.ok(slow.overflowed);
  assert.ok(slow.closed);
});

test('a waiting subscriber is woken by the next event and by close', async () => {
  const { bus } = manualBus();
  const sub = bus.subscribe();
  const next = sub.next();
  bus.publish({ Type: 'volume', Action: 'create', Actor: { ID: 'v' } });
  assert.equal((await next)?.Actor.ID, 'v');
  const pending = sub.next();
  bus.close();
  assert.equal(await pending, undefined);
});

const event = (partial: Partial<EventMessage> & Pick<EventMessage, 'Type' | 'Action'>): EventMessage => ({
  Actor: { ID: 'id', Attributes: {} },
  scope: 'local',
  time: 0,
  timeNano: 0n,
  ...partial,
});

test('event filters follow dockerd', () => {
  const match = (filters: object, ev: EventMessage): boolean =>
    eventMatcher(Filters.parse(JSON.stringify(filters)))(ev);
  const start = event({
    Type: 'container',
    Action: 'start',
    Actor: { ID: 'abcdef', Attributes: { name: 'web', image: 'busybox:1.36', env: 'prod' } },
  });
  assert.ok(match({}, start));
  assert.ok(match({ type: ['container'] }, start));
  assert.ok(!match({ type: ['image'] }, start));
  assert.ok(match({ event: ['start', 'die'] }, start));
  assert.ok(!match({ event: ['stop'] }, start));
  assert.ok(match({ container: ['abc'] }, start), 'id prefix');
  assert.ok(match({ container: ['web'] }, start), 'name');
  assert.ok(!match({ container: ['other'] }, start));
  assert.ok(match({ image: ['busybox'] }, start), 'image without its tag');
  assert.ok(match({ image: ['busybox:1.36'] }, start));
  assert.ok(!match({ image: ['alpine'] }, start));
  assert.ok(match({ label: ['env=prod'] }, start));
  assert.ok(!match({ label: ['env=dev'] }, start));
  assert.ok(match({ scope: ['local'] }, start));
  assert.ok(!match({ scope: ['swarm'] }, start));
  const exec = event({ Type: 'container', Action: 'exec_start: sh -c true' });
  assert.ok(match({ event: ['exec_start'] }, exec), 'exec_start matches its detailed form');
  assert.ok(!match({ event: ['start'] }, exec));
  const pulled = event({
    Type: 'image',
    Action: 'pull',
    Actor: { ID: 'localhost:5000/app:1', Attributes: { name: 'localhost:5000/app:1' } },
  });
  assert.ok(match({ image: ['localhost:5000/app'] }, pulled), 'a registry port is not a tag');
  assert.ok(!match({ image: ['localhost'] }, pulled));
  const reload = event({
    Type: 'daemon',
    Action: 'reload',
    Actor: { ID: 'd-id', Attributes: { name: 'host1' } },
  });
  assert.ok(match({ daemon: ['host1'] }, reload));
  assert.ok(!match({ daemon: ['host2'] }, reload));
  assert.ok(EVENT_FILTERS.includes('label'));
});

test('since and until are seconds with an optional fraction', () => {
  assert.equal(parseEventTime('since', undefined), undefined);
  assert.equal(parseEventTime('since', ''), undefined);
  assert.equal(parseEventTime('since', '1700000000'), 1_700_000_000n * SECOND);
  assert.equal(parseEventTime('since', '1700000000.000000001'), 1_700_000_000n * SECOND + 1n);
  assert.equal(parseEventTime('since', '1700000000.5'), 1_700_000_000n * SECOND + 500_000_000n);
  assert.throws(
    () => parseEventTime('until', '10m'),
    (err: unknown) =>
      err instanceof BerthError &&
      err.kind === 'invalid-argument' &&
      err.message === 'invalid value for until: "10m" is not a timestamp (seconds since the epoch)',
  );
});

test('GET /events streams kept and live events and ends at until', async (t) => {
  const bus = new EventBus();
  const router = new Router();
  registerSystemRoutes(router, {
    id: 'engine-id',
    events: bus,
    settings: () => ({
      dataRoot: '/var/lib/berth',
      debug: false,
      logDriver: 'json-file',
      liveRestore: false,
      defaultRuntime: 'berth',
      runtimes: {},
      insecureRegistries: [],
      registryMirrors: [],
      defaultAddressPools: [],
    }),
  });
  const api = new ApiServer({ router });
  const dir = await mkdtemp(join(tmpdir(), 'berth-events-'));
  const socket = join(dir, 'api.sock');
  const server = http.createServer();
  api.attach(server);
  server.listen(socket);
  await once(server, 'listening');
  t.after(async () => {
    api.close();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  const get = (path: string, onHead?: () => void): Promise<{ status: number; lines: string[] }> =>
    new Promise((resolve, reject) => {
      http
        .get({ socketPath: socket, path, agent: false }, (res) => {
          onHead?.();
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, lines: body.split('\n').filter(Boolean) }),
          );
        })
        .on('error', reject);
    });
  const seconds = (ns: bigint): string => `${ns / SECOND}.${String(ns % SECOND).padStart(9, '0')}`;
  const first = bus.publish({
    Type: 'container',
    Action: 'create',
    Actor: { ID: 'c1', Attributes: { name: 'a' } },
  });
  bus.publish({ Type: 'image', Action: 'tag', Actor: { ID: 'i1' } });
  const past = await get(
    `/v1.50/events?since=${seconds(first.timeNano)}&until=${seconds(bus.now())}&filters=${encodeURIComponent('{"type":{"container":true}}')}`,
  );
  assert.equal(past.status, 200);
  assert.deepEqual(past.lines, [encodeEvent(first).trim()]);
  // until slightly ahead: the live event (stamped inside the window) arrives, then the stream
  // ends by itself.
  const since = bus.now();
  const ahead = get(`/events?since=${seconds(since)}&until=${seconds(since + SECOND / 2n)}`, () =>
    bus.publish({ Type: 'volume', Action: 'create', Actor: { ID: 'v1' }, timeNano: since + 1n }),
  );
  const result = await ahead;
  assert.equal(result.lines.length, 1);
  assert.equal(JSON.parse(result.lines[0] ?? '{}').Actor.ID, 'v1');
  assert.equal(bus.subscriberCount, 0, 'the subscription ends with the stream');
  const bad = await get('/events?since=20&until=10');
  assert.equal(bad.status, 400);
  assert.deepEqual(JSON.parse(bad.lines[0] ?? '{}'), {
    message: '`since` time (20) cannot be after `until` time (10)',
  });
  const unknown = await get(`/events?filters=${encodeURIComponent('{"colour":["red"]}')}`);
  assert.equal(unknown.status, 400);
});
