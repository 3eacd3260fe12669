/**
 * The per-network DNS server on 127.0.0.2 with a free port, against fake upstream resolvers on
 * 127.0.0.1. No query ever leaves loopback.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, RecordType } from 'dns-packet';
import { BerthError } from '../../../src/common/errors.js';
import {
  NetworkDnsServer,
  type DnsRecordSource,
  type NetworkDnsServerOptions,
} from '../../../src/network/dns-server.js';
import { FrameReader, frame } from '../../../src/network/dns-tcp.js';

const SERVER_ADDRESS = '127.0.0.2';
const UPSTREAM_ADDRESS = '127.0.0.1';
/** Every wait in this file ends by this, so a broken server fails the test instead of hanging it. */
const REPLY_WAIT_MS = 5000;

type Table = Record<string, { v4: string[]; v6: string[] }>;

function recordsOf(table: Table, reverse: Record<string, string> = {}): DnsRecordSource {
  return { lookup: (name) => table[name], reverse: (address) => reverse[address] };
}

const NETWORK: Table = {
  web: { v4: ['10.88.0.2'], v6: [] },
  db: { v4: ['10.88.0.3'], v6: ['fd00:88::3'] },
  api: { v4: ['10.88.0.4', '10.88.0.5', '10.88.0.6'], v6: [] },
};
const REVERSE = { '10.88.0.2': 'web', 'fd00:88::3': 'db' };

function rcodeOf(message: Buffer): number {
  return message.readUInt8(3) & 0xf;
}

function makeQuery(name: string, type: RecordType = 'A', id = 0x4242, extra: Partial<Packet> = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
    ...extra,
  });
}

/** A UDP client socket whose replies are read one at a time, each with a bounded wait. */
class UdpClient {
  private readonly socket: UdpSocket;
  private readonly inbox: Buffer[] = [];
  private waiter: (() => void) | undefined;

  constructor(t: TestContext) {
    this.socket = createSocket('udp4');
    this.socket.on('message', (message) => {
      this.inbox.push(message);
      this.waiter?.();
    });
    t.after(() => this.socket.close());
  }

  send(message: Buffer, port: number, address = SERVER_ADDRESS): void {
    this.socket.send(message, port, address);
  }

  async next(): Promise<Buffer> {
    const deadline = Date.now() + REPLY_WAIT_MS;
    while (this.inbox.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no DNS reply');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.inbox.shift()!;
  }

  async ask(message: Buffer, port: number): Promise<Buffer> {
    this.send(message, port);
    return this.next();
  }
}

/** Sends raw bytes over one TCP connection and collects `count` framed replies. */
async function tcpExchange(port: number, payload: Buffer, count: number): Promise<Buffer[]> {
  const socket = connect({ host: SERVER_ADDRESS, port });
  try {
    await once(socket, 'connect');
    socket.write(payload);
    const reader = new FrameReader();
    const replies: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('no DNS reply over TCP')), REPLY_WAIT_MS);
    try {
      for await (const chunk of socket) {
        reader.push(chunk as Buffer);
        for (let m = reader.next(); m !== undefined; m = reader.next()) replies.push(Buffer.from(m));
        if (replies.length >= count) break;
      }
    } finally {
      clearTimeout(timer);
    }
    return replies;
  } finally {
    socket.destroy();
  }
}

interface Received {
  transport: 'udp' | 'tcp';
  raw: Buffer;
  packet: DecodedPacket;
}

type Behaviour = (query: DecodedPacket, transport: 'udp' | 'tcp') => Buffer | undefined;

/** A fake resolver on 127.0.0.1 (UDP and TCP, one port) that records what it is asked. */
class FakeUpstream {
  readonly received: Received[] = [];
  private arrivals: (() => void)[] = [];

  private constructor(
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
    readonly port: number,
    public behaviour: Behaviour,
  ) {
    udp.on('message', (raw, peer) => {
      const reply = this.record(raw, 'udp');
      if (reply !== undefined) udp.send(reply, peer.port, peer.address);
    });
    tcp.on('connection', (socket: Socket) => {
      const reader = new FrameReader();
      socket.on('error', () => socket.destroy());
      socket.on('data', (chunk: Buffer) => {
        reader.push(chunk);
        for (let m = reader.next(); m !== undefined; m = reader.next()) {
          const reply = this.record(Buffer.from(m), 'tcp');
          if (reply !== undefined) socket.write(frame(reply));
        }
      });
    });
  }

  static async start(t: TestContext, behaviour: Behaviour): Promise<FakeUpstream> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const udp = createSocket('udp4');
      udp.bind(0, UPSTREAM_ADDRESS);
      await once(udp, 'listening');
      const port = udp.address().port;
      const tcp = createServer();
      try {
        tcp.listen(port, UPSTREAM_ADDRESS);
        await once(tcp, 'listening');
      } catch {
        udp.close();
        continue;
      }
      const upstream = new FakeUpstream(udp, tcp, port, behaviour);
      t.after(() => upstream.stop());
      return upstream;
    }
    throw new Error('no free port pair for the fake upstream');
  }

  get address(): string {
    return `${UPSTREAM_ADDRESS}:${this.port}`;
  }

  /** Resolves once `count` queries have arrived in total. */
  async waitFor(count: number): Promise<void> {
    const deadline = Date.now() + REPLY_WAIT_MS;
    while (this.received.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`fake upstream got ${this.received.length} of ${count} queries`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.arrivals.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  private record(raw: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    const packet = dnsPacket.decode(raw);
    this.received.push({ transport, raw, packet });
    const waiting = this.arrivals;
    this.arrivals = [];
    waiting.forEach((wake) => wake());
    return this.behaviour(packet, transport);
  }

  private async stop(): Promise<void> {
    this.udp.close();
    this.tcp.close();
    await once(this.tcp, 'close');
  }
}

/** A resolver's answer to a query with the given records and rcode bits. */
function reply(query: DecodedPacket, answers: Answer[], extraFlags = 0): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id: query.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | extraFlags,
    questions: query.questions,
    answers,
  });
}

const answerWith =
  (address: string): Behaviour =>
  (query) =>
    reply(query, [{ type: 'A', name: query.questions?.[0]?.name ?? '', ttl: 30, data: address }]);

const silent: Behaviour = () => undefined;

async function startServer(
  t: TestContext,
  options: Partial<NetworkDnsServerOptions> = {},
): Promise<NetworkDnsServer> {
  const server = await NetworkDnsServer.listen({
    address: SERVER_ADDRESS,
    port: 0,
    records: recordsOf(NETWORK, REVERSE),
    upstreams: [],
    networkName: 'appnet',
    ...options,
  });
  t.after(() => server.close());
  return server;
}

function answersOf(message: Buffer): { rcode: number; packet: DecodedPacket; data: string[] } {
  const packet = dnsPacket.decode(message);
  const data = (packet.answers ?? []).map((a) => String((a as { data: unknown }).data));
  return { rcode: rcodeOf(message), packet, data };
}

test('A and AAAA for names on the network: TTL 600, case-insensitive, trailing dot and name.<network>', async (t) => {
  const upstream = await FakeUpstream.start(t, answerWith('192.0.2.99'));
  const server = await startServer(t, { upstreams: [upstream.address] });
  const client = new UdpClient(t);

  for (const name of ['web', 'WEB', 'web.', 'Web.AppNet', 'web.appnet.']) {
    const response = answersOf(await client.ask(makeQuery(name, 'A', 0x1111), server.port));
    assert.equal(response.rcode, 0, name);
    assert.equal(response.packet.id, 0x1111);
    assert.equal(response.packet.flag_ra, true);
    assert.equal(response.packet.questions?.[0]?.name, name.replace(/\.$/, ''), 'question echoed as asked');
    assert.deepEqual(response.data, ['10.88.0.2'], name);
    assert.equal((response.packet.answers?.[0] as { ttl?: number }).ttl, 600);
  }

  const v6 = answersOf(await client.ask(makeQuery('db', 'AAAA'), server.port));
  assert.deepEqual(v6.data, ['fd00:88::3']);

  // Known name without an IPv6 address: NOERROR and no answer, not NXDOMAIN, not forwarded.
  const none = answersOf(await client.ask(makeQuery('web', 'AAAA'), server.port));
  assert.equal(none.rcode, 0);
  assert.deepEqual(none.data, []);

  // Other types for a known name stay here too.
  const txt = answersOf(await client.ask(makeQuery('web', 'TXT'), server.port));
  assert.equal(txt.rcode, 0);
  assert.deepEqual(txt.data, []);

  assert.equal(upstream.received.length, 0, 'nothing about the network was forwarded');
});

test('an alias held by several containers answers with all their addresses', async (t) => {
  const server = await startServer(t);
  const client = new UdpClient(t);
  const response = answersOf(await client.ask(makeQuery('api'), server.port));
  assert.deepEqual([...response.data].sort(), ['10.88.0.4', '10.88.0.5', '10.88.0.6']);
});

test('PTR for container addresses, IPv4 and IPv6, answers name.<network>', async (t) => {
  const upstream = await FakeUpstream.start(t, silent);
  const server = await startServer(t, { upstreams: [upstream.address] });
  const client = new UdpClient(t);

  const v4 = answersOf(await client.ask(makeQuery('2.0.88.10.in-addr.arpa', 'PTR'), server.port));
  assert.deepEqual(v4.data, ['web.appnet']);
  assert.equal((v4.packet.answers?.[0] as { ttl?: number }).ttl, 600);

  const nibbles = '3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.8.0.0.0.0.d.f';
  const v6 = answersOf(await client.ask(makeQuery(`${nibbles}.ip6.arpa`, 'PTR'), server.port));
  assert.deepEqual(v6.data, ['db.appnet']);
  assert.equal(upstream.received.length, 0);
});

test('unknown names are forwarded unchanged and the answer comes back with the client query ID', async (t) => {
  const upstream = await FakeUpstream.start(t, answerWith('192.0.2.7'));
  const server = await startServer(t, { upstreams: [upstream.address] });
  const client = new UdpClient(t);

  const query = makeQuery('elsewhere.example', 'A', 0xbeef);
  const response = answersOf(await client.ask(query, server.port));
  assert.equal(response.packet.id, 0xbeef);
  assert.deepEqual(response.data, ['192.0.2.7']);
  assert.equal(upstream.received.length, 1);
  assert.equal(upstream.received[0]?.transport, 'udp');
  assert.deepEqual(upstream.received[0]?.raw, query, 'the query went out byte for byte');

  // An address that is not a container's goes upstream too.
  const ptr = answersOf(await client.ask(makeQuery('9.9.88.10.in-addr.arpa', 'PTR', 0x0101), server.port));
  assert.equal(ptr.packet.id, 0x0101);
  assert.equal(upstream.received.length, 2);
});

test('records are consulted on every query, nothing is cached', async (t) => {
  const table: Table = { web: { v4: ['10.88.0.2'], v6: [] } };
  const server = await startServer(t, { records: recordsOf(table) });
  const client = new UdpClient(t);
  assert.deepEqual(answersOf(await client.ask(makeQuery('web'), server.port)).data, ['10.88.0.2']);
  table.web = { v4: ['10.88.0.9'], v6: [] };
  assert.deepEqual(answersOf(await client.ask(makeQuery('web'), server.port)).data, ['10.88.0.9']);
});

test('no upstreams: SERVFAIL for names the network does not know', async (t) => {
  const server = await startServer(t, { upstreams: [] });
  const client = new UdpClient(t);
  const response = await client.ask(makeQuery('elsewhere.example', 'A', 0x0a0b), server.port);
  assert.equal(rcodeOf(response), 2);
  assert.equal(response.readUInt16BE(0), 0x0a0b);
});

test('silent upstreams: SERVFAIL after trying at most three of them', async (t) => {
  const upstreams = await Promise.all([0, 1, 2, 3].map(() => FakeUpstream.start(t, silent)));
  const server = await startServer(t, {
    upstreams: upstreams.map((u) => u.address),
    upstreamTimeoutMs: 100,
  });
  const client = new UdpClient(t);
  const response = await client.ask(makeQuery('slow.example', 'A', 0x5151), server.port);
  assert.equal(rcodeOf(response), 2);
  assert.equal(response.readUInt16BE(0), 0x5151);
  assert.deepEqual(
    upstreams.map((u) => u.received.length),
    [1, 1, 1, 0],
  );
});

test('a SERVFAIL from the first upstream moves on to the next', async (t) => {
  const failing = await FakeUpstream.start(t, (query) => reply(query, [], 2));
  const working = await FakeUpstream.start(t, answerWith('192.0.2.8'));
  const server = await startServer(t, { upstreams: [failing.address, working.address] });
  const client = new UdpClient(t);
  const response = answersOf(await client.ask(makeQuery('x.example'), server.port));
  assert.equal(response.rcode, 0);
  assert.deepEqual(response.data, ['192.0.2.8']);
  assert.equal(failing.received.length, 1);

  // When all fail, the last failure is relayed.
  server.setUpstreams([failing.address]);
  assert.equal(rcodeOf(await client.ask(makeQuery('y.example'), server.port)), 2);
});

test('an NXDOMAIN from upstream is relayed as is', async (t) => {
  const upstream = await FakeUpstream.start(t, (query) => reply(query, [], 3));
  const server = await startServer(t, { upstreams: [upstream.address] });
  const client = new UdpClient(t);
  assert.equal(rcodeOf(await client.ask(makeQuery('nope.example'), server.port)), 3);
});

test('TCP: local and forwarded queries pipelined on one connection, forwarded over TCP', async (t) => {
  const upstream = await FakeUpstream.start(t, answerWith('192.0.2.10'));
  const server = await startServer(t, { upstreams: [upstream.address] });
  const payload = Buffer.concat([
    frame(makeQuery('db', 'A', 1)),
    frame(makeQuery('far.example', 'A', 2)),
    frame(makeQuery('DB.appnet', 'AAAA', 3)),
  ]);
  const replies = (await tcpExchange(server.port, payload, 3)).map(answersOf);
  const byId = new Map(replies.map((r) => [r.packet.id, r.data]));
  assert.deepEqual(byId.get(1), ['10.88.0.3']);
  assert.deepEqual(byId.get(2), ['192.0.2.10']);
  assert.deepEqual(byId.get(3), ['fd00:88::3']);
  assert.deepEqual(
    upstream.received.map((r) => [r.transport, r.packet.id]),
    [['tcp', 2]],
  );
});

test('a truncated UDP answer from upstream is fetched again over TCP', async (t) => {
  const upstream = await FakeUpstream.start(t, (query, transport) =>
    transport === 'udp'
      ? reply(query, [], dnsPacket.TRUNCATED_RESPONSE)
      : reply(query, [{ type: 'A', name: query.questions?.[0]?.name ?? '', ttl: 30, data: '192.0.2.11' }]),
  );
  const server = await startServer(t, { upstreams: [upstream.address] });
  const client = new UdpClient(t);
  const response = answersOf(await client.ask(makeQuery('big.example', 'A', 0x7777), server.port));
  assert.equal(response.packet.id, 0x7777);
  assert.equal(response.packet.flag_tc, false);
  assert.deepEqual(response.data, ['192.0.2.11']);
  assert.deepEqual(
    upstream.received.map((r) => r.transport),
    ['udp', 'tcp'],
  );
});

test('a local answer too large for UDP is truncated with TC and complete over TCP', async (t) => {
  const many: string[] = [];
  for (let i = 0; i < 200; i++) many.push(`10.89.${i >> 8}.${i & 255}`);
  const server = await startServer(t, { records: recordsOf({ crowd: { v4: many, v6: [] } }) });
  const client = new UdpClient(t);

  const udp = await client.ask(makeQuery('crowd'), server.port);
  assert.ok(udp.length <= 512);
  const udpAnswers = answersOf(udp);
  assert.equal(udpAnswers.packet.flag_tc, true);
  assert.ok(udpAnswers.data.length > 0 && udpAnswers.data.length < 200);

  const [tcp] = await tcpExchange(server.port, frame(makeQuery('crowd')), 1);
  assert.ok(tcp);
  const tcpAnswers = answersOf(tcp);
  assert.equal(tcpAnswers.packet.flag_tc, false);
  assert.deepEqual([...tcpAnswers.data].sort(), [...many].sort());
});

test('malformed messages are dropped and the server keeps answering (UDP and TCP)', async (t) => {
  const upstream = await FakeUpstream.start(t, answerWith('192.0.2.12'));
  const server = await startServer(t, { upstreams: [upstream.address] });
  const client = new UdpClient(t);

  const junk = [
    Buffer.alloc(0),
    Buffer.from([0xff]),
    Buffer.from('definitely not dns, but long enough for a header'),
    Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]),
    Buffer.from([0, 1, 1, 0, 0, 9, 0, 0, 0, 0, 0, 0, 3, 0x61]),
    // A response, which must never be answered.
    dnsPacket.encode({ type: 'response', id: 5, questions: [{ type: 'A', name: 'web' }] }),
  ];
  for (const message of junk) client.send(message, server.port);
  const answer = await client.ask(makeQuery('web', 'A', 0x6060), server.port);
  assert.equal(answer.readUInt16BE(0), 0x6060, 'the first reply is the one to the valid query');
  assert.equal(upstream.received.length, 0, 'junk was not forwarded');

  const tcpPayload = Buffer.concat([
    frame(Buffer.from('garbage')),
    frame(Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1])),
    frame(makeQuery('web', 'A', 0x7070)),
  ]);
  const replies = await tcpExchange(server.port, tcpPayload, 1);
  assert.equal(replies[0]?.readUInt16BE(0), 0x7070);

  // A connection that announces a large message and then hangs up leaves nothing behind.
  const half = connect({ host: SERVER_ADDRESS, port: server.port });
  await once(half, 'connect');
  half.end(Buffer.from([0xff, 0xff, 1, 2, 3]));
  await once(half, 'close');

  assert.deepEqual(answersOf(await client.ask(makeQuery('web', 'A', 0x8080), server.port)).data, [
    '10.88.0.2',
  ]);
});

test('other opcodes get NOTIMP', async (t) => {
  const server = await startServer(t);
  const client = new UdpClient(t);
  const status = makeQuery('web', 'A', 0x0909);
  status.writeUInt16BE(status.readUInt16BE(2) | (2 << 11), 2);
  const response = await client.ask(status, server.port);
  assert.equal(response.readUInt16BE(0), 0x0909);
  assert.equal(rcodeOf(response), 4);
});

test('forwarded queries beyond the concurrency cap get SERVFAIL at once', async (t) => {
  const upstream = await FakeUpstream.start(t, silent);
  const server = await startServer(t, {
    upstreams: [upstream.address],
    maxConcurrentForwards: 1,
    upstreamTimeoutMs: 60_000,
  });
  const client = new UdpClient(t);
  client.send(makeQuery('first.example', 'A', 1), server.port);
  await upstream.waitFor(1);
  const second = await client.ask(makeQuery('second.example', 'A', 2), server.port);
  assert.equal(second.readUInt16BE(0), 2);
  assert.equal(rcodeOf(second), 2);
  assert.equal(upstream.received.length, 1, 'the second query was not forwarded');
  // Local names are still answered while forwarding is saturated.
  assert.deepEqual(answersOf(await client.ask(makeQuery('web', 'A', 3), server.port)).data, ['10.88.0.2']);
});

test('close() ends pending forwards and frees the UDP and TCP port', async (t) => {
  const upstream = await FakeUpstream.start(t, silent);
  const server = await NetworkDnsServer.listen({
    address: SERVER_ADDRESS,
    port: 0,
    records: recordsOf(NETWORK),
    upstreams: [upstream.address],
    upstreamTimeoutMs: 60_000,
  });
  const port = server.port;
  const client = new UdpClient(t);
  client.send(makeQuery('pending.example'), port);
  await upstream.waitFor(1);
  const idle = connect({ host: SERVER_ADDRESS, port });
  await once(idle, 'connect');
  const idleClosed = once(idle, 'close');

  await server.close();
  await idleClosed;

  const udp = createSocket('udp4');
  udp.bind({ address: SERVER_ADDRESS, port, exclusive: true });
  await once(udp, 'listening');
  udp.close();
  const tcp = createServer();
  tcp.listen(port, SERVER_ADDRESS);
  await once(tcp, 'listening');
  tcp.close();
  await once(tcp, 'close');
  await server.close(); // a second close is harmless
});

test('listen errors: port in use, bad address, bad upstream', async (t) => {
  const server = await startServer(t);
  await assert.rejects(
    NetworkDnsServer.listen({
      address: SERVER_ADDRESS,
      port: server.port,
      records: recordsOf({}),
      upstreams: [],
    }),
    (err: unknown) =>
      err instanceof BerthError &&
      err.kind === 'unavailable' &&
      err.message.includes(`${SERVER_ADDRESS}:${server.port}`),
  );
  await assert.rejects(
    NetworkDnsServer.listen({ address: 'gateway', port: 0, records: recordsOf({}), upstreams: [] }),
    (err: unknown) =>
      err instanceof BerthError && err.kind === 'invalid-argument' && err.message.includes('"gateway"'),
  );
  await assert.rejects(
    NetworkDnsServer.listen({
      address: SERVER_ADDRESS,
      port: 0,
      records: recordsOf({}),
      upstreams: ['dns.example'],
    }),
    (err: unknown) =>
      err instanceof BerthError && err.kind === 'invalid-argument' && err.message.includes('"dns.example"'),
  );
});

test('the server never forwards to itself', async (t) => {
  const warnings: string[] = [];
  const server = await startServer(t, {
    maxConcurrentForwards: 4,
    log: { debug: () => undefined, warn: (message) => warnings.push(message) },
  });
  server.setUpstreams([`${SERVER_ADDRESS}:${server.port}`]);
  const client = new UdpClient(t);
  const response = await client.ask(makeQuery('loop.example', 'A', 0x0c0c), server.port);
  assert.equal(rcodeOf(response), 2);
  assert.deepEqual(warnings, [], 'no query went round in circles until the cap');
});

test('a record source that throws costs a SERVFAIL, not the server', async (t) => {
  const warnings: string[] = [];
  const server = await startServer(t, {
    records: {
      lookup: (name) => {
        if (name === 'boom') throw new Error('record store unavailable');
        return NETWORK[name];
      },
      reverse: () => undefined,
    },
    log: { debug: () => undefined, warn: (message) => warnings.push(message) },
  });
  const client = new UdpClient(t);
  const response = await client.ask(makeQuery('boom', 'A', 0x0d0d), server.port);
  assert.equal(response.readUInt16BE(0), 0x0d0d);
  assert.equal(rcodeOf(response), 2);
  assert.ok(warnings.some((w) => w.includes('record store unavailable')));
  assert.deepEqual(answersOf(await client.ask(makeQuery('web'), server.port)).data, ['10.88.0.2']);
});
