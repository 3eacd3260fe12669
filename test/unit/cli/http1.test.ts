/** berth's small HTTP/1.1 client against raw servers that frame their answers in every way it reads. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Readable } from 'node:stream';
import { HttpResponse, Http1Client, type Upgraded } from '../../../src/cli/http1.js';
import { readText } from '../../../src/cli/client.js';
import { FakeDockerApi } from '../../helpers/fake-docker-api.js';
import { runBerth } from './harness.js';

/** Every test is bounded: a client that waits forever fails instead of hanging the run. */
const LIMIT = { timeout: 20_000 };

/** A TCP server on 127.0.0.1 answering each request head with `answer(head)`, written in pieces. */
async function rawServer(
  t: { after(fn: () => Promise<void> | void): void },
  answer: (head: string, socket: net.Socket) => void,
): Promise<{ client: Http1Client; connections: () => number }> {
  let connections = 0;
  const server = net.createServer((socket) => {
    connections++;
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        answer(head, socket);
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const client = new Http1Client(() => net.connect(port, '127.0.0.1'), `127.0.0.1:${port}`);
  t.after(() => {
    client.close();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { client, connections: () => connections };
}

/** Writes the parts one by one, each in its own packet as far as timing allows. */
async function trickle(socket: net.Socket, parts: string[]): Promise<void> {
  for (const part of parts) {
    socket.write(part);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('chunked, sized and empty bodies on one kept-alive connection, split anywhere', LIMIT, async (t) => {
  const { client, connections } = await rawServer(t, (head, socket) => {
    const path = head.split(' ')[1];
    if (path === '/chunked')
      void trickle(socket, [
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r',
        '\nhello\r\n7;ext=1\r\n, world\r',
        '\n0\r\nTrailer: x\r\n\r\n',
      ]);
    else if (path === '/sized')
      void trickle(socket, ['HTTP/1.1 201 Created\r\nContent-Length: 5\r\n', '\r\nab', 'cde']);
    else socket.write('HTTP/1.1 204 No Content\r\nX-Thing: a\r\nX-Thing: b\r\n\r\n');
  });
  const chunked = await client.request({ method: 'GET', path: '/chunked', headers: {} });
  assert.equal(chunked.statusCode, 200);
  assert.equal(await readText(chunked), 'hello, world');
  const sized = await client.request({ method: 'GET', path: '/sized', headers: {} });
  assert.equal(sized.statusCode, 201);
  assert.equal(sized.statusMessage, 'Created');
  assert.equal(await readText(sized), 'abcde');
  const empty = await client.request({ method: 'POST', path: '/empty', headers: {} });
  assert.equal(empty.headers['x-thing'], 'a, b');
  assert.equal(await readText(empty), '');
  assert.equal(connections(), 1, 'each answer complete, the connection was reused');
});

test('a body without length ends with the connection; an early close is a hang-up', LIMIT, async (t) => {
  const { client } = await rawServer(t, (head, socket) => {
    if (head.includes('/until-close')) socket.end('HTTP/1.1 200 OK\r\n\r\nall of it');
    else socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort');
  });
  const res = await client.request({ method: 'GET', path: '/until-close', headers: {} });
  assert.equal(await readText(res), 'all of it');
  const cut = await client.request({ method: 'GET', path: '/cut', headers: {} });
  await assert.rejects(readText(cut), { code: 'ECONNRESET', message: 'socket hang up' });
  const refused = new Http1Client(() => net.connect(1, '127.0.0.1'), 'x');
  await assert.rejects(refused.request({ method: 'GET', path: '/', headers: {} }), { code: 'ECONNREFUSED' });
});

test(
  'readText collects a body, and fails for an error or a stream destroyed before its end',
  LIMIT,
  async () => {
    assert.equal(await readText(Readable.from([Buffer.from('{"a":'), '1}'])), '{"a":1}');
    const failing = new Readable({ read() {} });
    failing.push('part');
    setImmediate(() => failing.destroy(new Error('boom')));
    await assert.rejects(readText(failing), /boom/);
    const cut = new Readable({ read() {} });
    setImmediate(() => cut.destroy());
    await assert.rejects(readText(cut), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    const ended = Readable.from([]);
    ended.resume();
    await new Promise((resolve) => ended.once('end', resolve));
    assert.equal(await readText(ended), '', 'nothing more to read');
  },
);

test('an upgrade hands over the connection with the bytes that came with the 101', LIMIT, async (t) => {
  const { client } = await rawServer(t, (head, socket) => {
    if (head.includes('/refused')) {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 27\r\n\r\n{"message":"no such thing"}');
      return;
    }
    socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: raw\r\n\r\nfirst ');
    socket.once('data', (chunk) => socket.end(`echo ${chunk.toString()}`));
  });
  const upgraded = (await client.upgrade({
    method: 'POST',
    path: '/attach',
    headers: { Connection: 'Upgrade', Upgrade: 'tcp' },
  })) as Upgraded;
  assert.equal(upgraded.statusCode, 101);
  assert.equal(upgraded.headers['content-type'], 'raw');
  upgraded.socket.write('ping');
  upgraded.socket.resume();
  assert.equal(await readText(upgraded.socket), 'first echo ping');
  const refused = await client.upgrade({ method: 'POST', path: '/refused', headers: {} });
  assert.ok(refused instanceof HttpResponse);
  assert.equal(refused.statusCode, 404);
  assert.equal(await readText(refused), '{"message":"no such thing"}');
});

test('a streamed request body goes out chunked and arrives whole', LIMIT, async (t) => {
  const server = http.createServer((req, res) => {
    let size = 0;
    req.on('data', (chunk: Buffer) => (size += chunk.length));
    req.on('end', () => res.end(`${req.headers['transfer-encoding']} ${size}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as net.AddressInfo;
  const client = new Http1Client(() => net.connect(port, '127.0.0.1'), `127.0.0.1:${port}`);
  t.after(() => client.close());
  const parts = Array.from({ length: 64 }, (_, i) => Buffer.alloc(16 * 1024, i));
  const res = await client.request({
    method: 'POST',
    path: '/load',
    headers: {},
    body: Readable.from(parts),
  });
  assert.equal(await readText(res), `chunked ${64 * 16 * 1024}`);
});

test('an aborted request fails and closes its connection', LIMIT, async (t) => {
  const { client } = await rawServer(t, () => undefined);
  const controller = new AbortController();
  const pending = client.request({ method: 'GET', path: '/never', headers: {}, signal: controller.signal });
  controller.abort();
  await assert.rejects(pending, { code: 'ABORT_ERR' });
});

test('run: an attach that ends before the start is answered still ends the session', LIMIT, async (t) => {
  const fake = await FakeDockerApi.start();
  t.after(() => fake.close());
  // No output: the attach stream ends while berth still waits for the start.
  fake.hijack('POST', /\/attach$/, (_req, socket) => void socket.end());
  fake.route('POST', /\/start$/, async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    return { status: 204 };
  });
  fake.route('POST', /\/wait$/, () => ({ json: { StatusCode: 7 } }));
  const result = await runBerth(fake.host, ['run', '--rm', 'busybox', 'true']);
  assert.equal(result.code, 7);
  assert.equal(result.stdout, '');
});
