import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import type { ErrorKind } from '../../../src/common/errors.js';
import {
  FALLBACK_EPHEMERAL_RANGE,
  HostPorts,
  readEphemeralPortRange,
} from '../../../src/network/host-ports.js';

const LOCAL = '127.0.0.1';

function listen(port: number, host = LOCAL): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port, host }, () => resolve(server));
  });
}

const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve) => server.close(() => resolve()));

/** True when a TCP listener can take the port on 127.0.0.1 right now. */
async function tcpFree(port: number): Promise<boolean> {
  try {
    await closeServer(await listen(port));
    return true;
  } catch {
    return false;
  }
}

/** `count` consecutive ports that are free on 127.0.0.1 (bounded search). */
async function freePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const probe = await listen(0);
    const address = probe.address();
    await closeServer(probe);
    const first = typeof address === 'object' && address !== null ? address.port : 0;
    if (first === 0 || first + count - 1 > 65535) continue;
    let ok = true;
    for (let port = first; port < first + count && ok; port++) ok = await tcpFree(port);
    if (ok) return first;
  }
  throw new Error(`no ${count} consecutive free ports`);
}

async function occupy(t: TestContext, port: number): Promise<void> {
  const server = await listen(port);
  t.after(() => closeServer(server));
}

async function rejectsWith(
  promise: Promise<unknown>,
  kind: ErrorKind,
  message: string | RegExp,
): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BerthError, `a BerthError, got ${String(err)}`);
    assert.equal(err.kind, kind);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

test('a reservation holds the port against other programs until it is released', async () => {
  const port = await freePorts(1);
  const ports = new HostPorts();
  const reservation = await ports.reserve({ proto: 'tcp', hostIp: LOCAL, first: port, endpoint: 'web' });
  assert.deepEqual({ ...reservation }, { proto: 'tcp', hostIp: LOCAL, port });
  assert.equal(await tcpFree(port), false);
  await ports.release(reservation);
  await ports.release(reservation); // twice is harmless
  assert.equal(await tcpFree(port), true);
});

test('a port taken by another program fails with Docker message', async (t) => {
  const port = await freePorts(1);
  await occupy(t, port);
  await rejectsWith(
    new HostPorts().reserve({ proto: 'tcp', hostIp: LOCAL, first: port, endpoint: 'web (0123abcd)' }),
    'conflict',
    `driver failed programming external connectivity on endpoint web (0123abcd): Bind for ${LOCAL}:${port} failed: port is already allocated`,
  );
});

test('a range gives the next free port of the range, continuing after the last one', async (t) => {
  const first = await freePorts(3);
  await occupy(t, first);
  const ports = new HostPorts();
  const request = { proto: 'tcp' as const, hostIp: LOCAL, first, last: first + 2, endpoint: 'web' };
  const a = await ports.reserve(request);
  const b = await ports.reserve(request);
  assert.deepEqual([a.port, b.port], [first + 1, first + 2]);
  await rejectsWith(
    ports.reserve(request),
    'conflict',
    `driver failed programming external connectivity on endpoint web: Bind for ${LOCAL}:${first}-${first + 2} failed: port is already allocated`,
  );
  await ports.release(a);
  assert.equal((await ports.reserve(request)).port, first + 1); // wrapped around to the freed one
});

test('port 0 takes the next free ephemeral port; an exhausted range says so', async (t) => {
  const first = await freePorts(3);
  await occupy(t, first + 1);
  const ports = new HostPorts({ ephemeralRange: async () => ({ first, last: first + 2 }) });
  const request = { proto: 'tcp' as const, hostIp: LOCAL, first: 0, endpoint: 'web' };
  const a = await ports.reserve(request);
  const b = await ports.reserve(request);
  assert.deepEqual([a.port, b.port], [first, first + 2]);
  await rejectsWith(
    ports.reserve(request),
    'conflict',
    'driver failed programming external connectivity on endpoint web: all ports are allocated',
  );
});

test('UDP reservations bind the port for UDP only', async () => {
  const port = await freePorts(1);
  const ports = new HostPorts();
  const udp = await ports.reserve({ proto: 'udp', hostIp: LOCAL, first: port, endpoint: 'dns' });
  const other = createSocket('udp4');
  const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    other.once('error', resolve);
    other.bind(port, LOCAL, () => resolve(undefined));
  });
  other.close();
  assert.equal(error?.code, 'EADDRINUSE');
  const tcp = await ports.reserve({ proto: 'tcp', hostIp: LOCAL, first: port, endpoint: 'dns' });
  await rejectsWith(
    ports.reserve({ proto: 'udp', hostIp: LOCAL, first: port, endpoint: 'dns2' }),
    'conflict',
    /Bind for 127.0.0.1:\d+ failed: port is already allocated/,
  );
  await ports.release(udp);
  await ports.release(tcp);
});

test('a connection that reaches the reservation socket is closed, not served', async () => {
  const port = await freePorts(1);
  const ports = new HostPorts();
  const reservation = await ports.reserve({ proto: 'tcp', hostIp: LOCAL, first: port, endpoint: 'web' });
  const received = await new Promise<string>((resolve, reject) => {
    const socket = connect({ host: LOCAL, port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('the reservation socket kept the connection open'));
    }, 10_000);
    socket.on('data', (chunk) => (data += chunk.toString()));
    socket.on('error', () => undefined); // a reset is as good as a close here
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
  });
  assert.equal(received, '');
  await ports.release(reservation);
});

test('bad requests are refused clearly', async () => {
  const ports = new HostPorts();
  await rejectsWith(
    ports.reserve({ proto: 'tcp', hostIp: '1.2.3', first: 80, endpoint: 'web' }),
    'invalid-argument',
    'invalid host IP address: 1.2.3',
  );
  await rejectsWith(
    ports.reserve({ proto: 'tcp', hostIp: LOCAL, first: 9000, last: 8000, endpoint: 'web' }),
    'invalid-argument',
    'invalid host port range: 9000-8000',
  );
  // 192.0.2.1 (TEST-NET-1) is no address of this host: binding fails, no traffic is sent.
  await rejectsWith(
    ports.reserve({ proto: 'tcp', hostIp: '192.0.2.1', first: 8080, endpoint: 'web' }),
    'invalid-argument',
    'driver failed programming external connectivity on endpoint web: failed to bind host port 192.0.2.1:8080/tcp: cannot assign requested address',
  );
});

test('the ephemeral range comes from ip_local_port_range, else Docker fallback', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-ports-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'ip_local_port_range');
  await writeFile(file, '32768\t60999\n');
  assert.deepEqual(await readEphemeralPortRange(file), { first: 32768, last: 60999 });
  await writeFile(file, 'garbage\n');
  assert.deepEqual(await readEphemeralPortRange(file), FALLBACK_EPHEMERAL_RANGE);
  assert.deepEqual(await readEphemeralPortRange(join(dir, 'missing')), { first: 49153, last: 65535 });
});
