import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { API_VERSION, BERTH_VERSION } from '../../../src/common/version.js';
import { conflict, invalidArgument, notFound } from '../../../src/common/errors.js';
import { Reply, Router } from '../../../src/api/router.js';
import { ApiServer, type ApiLogger } from '../../../src/api/server.js';
import { encodeFrame, FrameDecoder, MediaType, StdStream } from '../../../src/api/streams.js';

interface Served {
  socket: string;
  api: ApiServer;
  errors: string[];
}

async function serve(t: TestContext, router: Router): Promise<Served> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-api-'));
  const socket = join(dir, 'api.sock');
  const errors: string[] = [];
  const logger: ApiLogger = { debug: () => undefined, error: (message) => errors.push(message) };
  const api = new ApiServer({ router, logger });
  const server = http.createServer();
  api.attach(server);
  server.listen(socket);
  await once(server, 'listening');
  t.after(async () => {
    api.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  return { socket, api, errors };
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(
  socket: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: socket, method, path, headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Sends raw bytes, then `after` once the response head arrived; returns everything until the server closes. */
function rawExchange(
  socket: string,
  bytes: string,
  after: (conn: net.Socket) => void = () => undefined,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const conn = net.connect({ path: socket, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let headSeen = false;
    conn.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (!headSeen && Buffer.concat(chunks).includes('\r\n\r\n')) {
        headSeen = true;
        after(conn);
      }
    });
    conn.on('end', () => {
      conn.end();
      resolve(Buffer.concat(chunks));
    });
    conn.on('error', reject);
    conn.write(bytes);
  });
}

function splitHead(response: Buffer): { head: string; body: Buffer } {
  const at = response.indexOf('\r\n\r\n');
  return { head: response.subarray(0, at + 4).toString('latin1'), body: response.subarray(at + 4) };
}

test('every response carries Docker headers; unknown routes are 404 page not found', async (t) => {
  const { socket } = await serve(
    t,
    new Router().get('/ok', () => ({ a: 1 })),
  );
  for (const path of ['/ok', '/nope', '/v1.12/ok']) {
    const res = await request(socket, 'GET', path);
    assert.equal(res.headers['api-version'], API_VERSION, path);
    assert.equal(res.headers['server'], `Berth/${BERTH_VERSION} (linux)`);
    assert.equal(res.headers['docker-experimental'], 'false');
    assert.equal(res.headers['ostype'], 'linux');
  }
  const missing = await request(socket, 'GET', '/nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.headers['content-type'], 'application/json');
  assert.equal(missing.body, '{"message":"page not found"}\n');
  assert.equal((await request(socket, 'DELETE', '/ok')).status, 404, 'a known path with another method');
});

test('the version prefix picks the API version; out-of-range versions are 400', async (t) => {
  const { socket } = await serve(
    t,
    new Router().get('/v', (ctx) => ({ version: ctx.apiVersion, path: ctx.path })),
  );
  assert.deepEqual(JSON.parse((await request(socket, 'GET', '/v1.41/v')).body), {
    version: '1.41',
    path: '/v',
  });
  assert.deepEqual(JSON.parse((await request(socket, 'GET', '/v')).body), {
    version: API_VERSION,
    path: '/v',
  });
  const old = await request(socket, 'GET', '/v1.12/v');
  assert.equal(old.status, 400);
  assert.match(
    JSON.parse(old.body).message,
    /^client version 1\.12 is too old\. Minimum supported API version is 1\.41/,
  );
  const future = await request(socket, 'GET', '/v9.0/v');
  assert.equal(future.status, 400);
  assert.equal(
    JSON.parse(future.body).message,
    `client version 9.0 is too new. Maximum supported API version is ${API_VERSION}`,
  );
});

test('handler results become responses', async (t) => {
  const router = new Router()
    .get('/object', () => ({ Id: 'x' }))
    .get('/null', () => null)
    .post('/none', () => undefined)
    .post('/created', () => Reply.json(201, { Id: 'c' }))
    .post('/unchanged', () => Reply.empty(304))
    .get('/text', () => Reply.text(200, 'OK'))
    .get('/header', (ctx) => {
      ctx.setHeader('X-Docker-Container-Path-Stat', 'e30=');
      return {};
    });
  const { socket } = await serve(t, router);
  const object = await request(socket, 'GET', '/object');
  assert.equal(object.status, 200);
  assert.equal(object.headers['content-type'], 'application/json');
  assert.equal(object.body, '{"Id":"x"}\n');
  assert.equal((await request(socket, 'GET', '/null')).body, 'null\n');
  const none = await request(socket, 'POST', '/none');
  assert.equal(none.status, 204);
  assert.equal(none.body, '');
  const created = await request(socket, 'POST', '/created');
  assert.deepEqual([created.status, created.body], [201, '{"Id":"c"}\n']);
  assert.equal((await request(socket, 'POST', '/unchanged')).status, 304);
  const text = await request(socket, 'GET', '/text');
  assert.deepEqual([text.body, text.headers['content-type']], ['OK', 'text/plain; charset=utf-8']);
  assert.equal((await request(socket, 'GET', '/header')).headers['x-docker-container-path-stat'], 'e30=');
  const head = await request(socket, 'HEAD', '/object');
  assert.deepEqual([head.status, head.body], [200, ''], 'HEAD is served by the GET route without a body');
});

test('errors get the status of their kind and the message alone', async (t) => {
  const router = new Router()
    .get('/missing', () => {
      throw notFound('No such container: abc');
    })
    .get('/busy', () => {
      throw conflict('the name is in use');
    })
    .get('/bad', () => {
      throw invalidArgument('invalid port');
    })
    .get('/crash', () => {
      throw new TypeError('undefined is not a function');
    });
  const { socket, errors } = await serve(t, router);
  const cases: Array<[string, number, string]> = [
    ['/missing', 404, 'No such container: abc'],
    ['/busy', 409, 'the name is in use'],
    ['/bad', 400, 'invalid port'],
    ['/crash', 500, 'undefined is not a function'],
  ];
  for (const [path, status, message] of cases) {
    const res = await request(socket, 'GET', path);
    assert.equal(res.status, status, path);
    assert.equal(res.body, JSON.stringify({ message }) + '\n');
  }
  assert.equal(errors.length, 1, 'only the 500 is logged as an error');
  assert.match(errors[0] ?? '', /GET \/crash returned error: undefined is not a function/);
});

test('JSON bodies are parsed like Docker ReadJSON, with clear 400s', async (t) => {
  const router = new Router().post('/json', async (ctx) => ({ got: (await ctx.json()) ?? 'empty' }));
  const { socket } = await serve(t, router);
  const json = { 'Content-Type': 'application/json' };
  assert.equal(
    (await request(socket, 'POST', '/json', { headers: json, body: '{"a":1}' })).body,
    '{"got":{"a":1}}\n',
  );
  assert.equal(
    (
      await request(socket, 'POST', '/json', {
        headers: { 'Content-Type': 'application/json; charset=utf-8' },
        body: '[1]',
      })
    ).body,
    '{"got":[1]}\n',
  );
  assert.equal(
    (await request(socket, 'POST', '/json')).body,
    '{"got":"empty"}\n',
    'an empty body is no body',
  );
  const wrongType = await request(socket, 'POST', '/json', {
    headers: { 'Content-Type': 'text/plain' },
    body: '{}',
  });
  assert.equal(wrongType.status, 400);
  assert.equal(
    JSON.parse(wrongType.body).message,
    "unsupported Content-Type header (text/plain): must be 'application/json'",
  );
  const broken = await request(socket, 'POST', '/json', { headers: json, body: '{"a":' });
  assert.equal(broken.status, 400);
  assert.match(JSON.parse(broken.body).message, /^invalid JSON: /);
  const trailing = await request(socket, 'POST', '/json', { headers: json, body: '{} {}' });
  assert.equal(trailing.status, 400);
  const blank = await request(socket, 'POST', '/json', { headers: json, body: '   ' });
  assert.equal(JSON.parse(blank.body).message, 'invalid JSON: got EOF while reading request body');
});

test('a body over the limit is refused with 413, declared or streamed', async (t) => {
  const router = new Router()
    .post('/small', async (ctx) => ({ size: (await ctx.body(16)).length }))
    .post('/stream', async (ctx) => {
      let size = 0;
      for await (const chunk of ctx.bodyStream()) size += (chunk as Buffer).length;
      return { size };
    });
  const { socket } = await serve(t, router);
  assert.equal((await request(socket, 'POST', '/small', { body: 'x'.repeat(16) })).body, '{"size":16}\n');
  const declared = await request(socket, 'POST', '/small', { body: 'x'.repeat(17) });
  assert.equal(declared.status, 413);
  assert.equal(JSON.parse(declared.body).message, 'request body is larger than 16 bytes');
  // Chunked: no Content-Length to check up front.
  const chunked = await new Promise<Response>((resolve, reject) => {
    const req = http.request({ socketPath: socket, method: 'POST', path: '/small', agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.write('x'.repeat(10));
    req.end('y'.repeat(10));
  });
  assert.equal(chunked.status, 413);
  assert.equal(
    (await request(socket, 'POST', '/stream', { body: Buffer.alloc(100_000) })).body,
    '{"size":100000}\n',
  );
});

test('a stream response starts before its first chunk and stops when the client leaves', async (t) => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let aborted: Promise<void> = Promise.resolve();
  const router = new Router().get('/follow', async (ctx) => {
    const stream = ctx.stream(MediaType.Json);
    aborted = new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
    await gate;
    await stream.write('{"n":1}\n');
    await aborted;
    assert.equal(await stream.write('{"n":2}\n'), false, 'writes after the client left report false');
    stream.end();
  });
  const { socket } = await serve(t, router);
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.get({ socketPath: socket, path: '/follow', agent: false }, resolve);
    req.on('error', reject);
  });
  // The head arrived although the handler has written nothing yet.
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'application/json');
  assert.equal(res.headers['transfer-encoding'], 'chunked');
  release();
  const [first] = (await once(res, 'data')) as [Buffer];
  assert.equal(first.toString(), '{"n":1}\n');
  res.destroy();
  await aborted;
});

test('hijack with Upgrade: 101, body read ahead, stdin after it, half-close ends the input', async (t) => {
  let seenBody: unknown;
  const router = new Router().post('/exec/{id}/start', async (ctx) => {
    seenBody = await ctx.json();
    const { input, output } = ctx.hijack({ multiplexed: true });
    const received: Buffer[] = [];
    for await (const chunk of input) received.push(chunk as Buffer);
    // The input ended (client half-closed); the output still flows.
    output.write(encodeFrame(StdStream.Stdout, Buffer.concat(received)));
    output.end(encodeFrame(StdStream.Stderr, 'done'));
  });
  const { socket } = await serve(t, router);
  const body = '{"Detach":false,"Tty":false}';
  const response = await rawExchange(
    socket,
    `POST /v1.50/exec/e1/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}early-`,
    (conn) => {
      conn.write('late');
      conn.end();
    },
  );
  const { head, body: stream } = splitHead(response);
  assert.equal(
    head,
    'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\n' +
      `Upgrade: tcp\r\nApi-Version: ${API_VERSION}\r\nDocker-Experimental: false\r\nOstype: linux\r\n` +
      `Server: Berth/${BERTH_VERSION} (linux)\r\n\r\n`,
  );
  assert.deepEqual(seenBody, { Detach: false, Tty: false });
  const decoder = new FrameDecoder();
  const frames = decoder.push(stream);
  decoder.finish();
  assert.deepEqual(
    frames.map((f) => [f.stream, f.payload.toString()]),
    [
      [1, 'early-late'],
      [2, 'done'],
    ],
  );
});

test('hijack at API 1.41 announces raw-stream; a TTY stream is raw at any version', async (t) => {
  const router = new Router().post('/attach/{tty}', (ctx) => {
    ctx.hijack({ multiplexed: ctx.params.tty === 'no' }).output.end('x');
  });
  const { socket } = await serve(t, router);
  const ask = (path: string): Promise<Buffer> =>
    rawExchange(
      socket,
      `POST ${path} HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`,
      (c) => c.end(),
    );
  assert.match(
    splitHead(await ask('/v1.41/attach/no')).head,
    /Content-Type: application\/vnd\.docker\.raw-stream\r\n/,
  );
  assert.match(
    splitHead(await ask('/v1.50/attach/yes')).head,
    /Content-Type: application\/vnd\.docker\.raw-stream\r\n/,
  );
  assert.match(
    splitHead(await ask('/v1.50/attach/no')).head,
    /Content-Type: application\/vnd\.docker\.multiplexed-stream\r\n/,
  );
});

test('hijack without Upgrade: 200 and the raw output; the input is empty', async (t) => {
  const router = new Router().post('/attach', async (ctx) => {
    const { input, output } = ctx.hijack({ multiplexed: false });
    let size = 0;
    for await (const chunk of input) size += (chunk as Buffer).length;
    output.end(`input=${size}`);
  });
  const { socket } = await serve(t, router);
  const response = await rawExchange(socket, 'POST /attach HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n');
  const { head, body } = splitHead(response);
  assert.match(
    head,
    /^HTTP\/1\.1 200 OK\r\nContent-Type: application\/vnd\.docker\.raw-stream\r\nApi-Version: /,
  );
  assert.equal(body.toString(), 'input=0');
});

test('an error after the hijack goes into the stream as a system-error frame', async (t) => {
  const router = new Router().post('/exec', (ctx) => {
    ctx.hijack({ multiplexed: true });
    throw conflict('container is not running');
  });
  const { socket } = await serve(t, router);
  const response = await rawExchange(
    socket,
    'POST /exec HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n',
  );
  assert.deepEqual(splitHead(response).body, encodeFrame(StdStream.Systemerr, 'container is not running'));
});

test('an upgrade request to an ordinary route gets an ordinary response and the connection closes', async (t) => {
  const router = new Router().post('/exec/{id}/start', () => {
    throw notFound('No such exec instance: e1');
  });
  const { socket } = await serve(t, router);
  const response = (
    await rawExchange(
      socket,
      'POST /exec/e1/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}',
    )
  ).toString();
  assert.match(response, /^HTTP\/1\.1 404 Not Found\r\n/);
  assert.match(response, /\r\nConnection: close\r\n/);
  assert.ok(response.endsWith('{"message":"No such exec instance: e1"}\n'));
  const chunked = (
    await rawExchange(
      socket,
      'POST /exec/e1/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    )
  ).toString();
  assert.match(chunked, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.ok(chunked.includes('must send its body with Content-Length'));
});

test('close() ends streams and hijacked connections', async (t) => {
  let streamEnded: Promise<void> = Promise.resolve();
  const router = new Router()
    .get('/follow', async (ctx) => {
      const stream = ctx.stream(MediaType.Json);
      streamEnded = new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
      await streamEnded;
      stream.end();
    })
    .post('/attach', (ctx) => {
      ctx.hijack({ multiplexed: false }).output.write('started');
    });
  const { socket, api } = await serve(t, router);
  const follow = new Promise<string>((resolve, reject) => {
    http
      .get({ socketPath: socket, path: '/follow', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve('ended'));
      })
      .on('error', reject);
  });
  const attached = rawExchange(
    socket,
    'POST /attach HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n',
    () => api.close(),
  );
  assert.equal(await follow, 'ended');
  assert.ok((await attached).toString().endsWith('started'));
});
