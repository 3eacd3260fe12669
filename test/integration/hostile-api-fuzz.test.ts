/**
 * The Engine API, fuzzed against a real berthd: a seeded PRNG (BERTH_FUZZ_SEED) drives a few
 * thousand requests — mutated create bodies for containers, networks, volumes and execs, bad image
 * references, garbage build contexts and archives, random query strings, wrong content types —
 * plus raw-socket abuse (huge headers, truncated and malformed bodies). Every answer must be a
 * status with a JSON `{"message": ...}` body when it is an error, never a 500 for a client's
 * mistake, and never take longer than the per-request bound. Afterwards berthd still answers
 * /_ping, and once its objects are removed nothing it made remains.
 *
 * Nothing here may reach beyond 127.0.0.1: image references are checked with the daemon's own
 * parser and only ones naming a closed loopback port are sent; build contexts never name a
 * remote image or URL; networks only get names and options, never a subnet outside the test pool.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { createSandbox, listMounts, type Sandbox } from '../helpers/sandbox.js';
import { docker, startBerthd } from '../helpers/berthd.js';
import { execProgram } from '../helpers/exec.js';
import { ensureFixture } from '../../fixtures/index.js';
import { parseReference } from '../../src/image/reference.js';
import { prng } from '../helpers/prng.js';

const SEED = Number(process.env.BERTH_FUZZ_SEED ?? 0x5eed);
const REQUESTS = 2500;
const BUDGET_MS = 40_000;
const REQUEST_TIMEOUT_MS = 10_000;
const CLOSED_REGISTRY = '127.0.0.1:1';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

class Gen {
  constructor(readonly random: () => number) {}

  int(n: number): number {
    return Math.floor(this.random() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  chance(p: number): boolean {
    return this.random() < p;
  }

  string(): string {
    return this.pick([
      () => '',
      () => 'a'.repeat(1 + this.int(5000)),
      () => '../../../../etc/passwd',
      () => '/',
      () => '\0',
      () => '\u{1F600}\uFEFF',
      () => '-1',
      () => '1e309',
      () => 'sha256:' + 'f'.repeat(64),
      () => '${HOME}',
      () => 'a:b:c:d',
      () => '__proto__',
      () => 'constructor',
      () => '%00%2e%2e',
      () => ' ',
      () => String.fromCharCode(...Array.from({ length: 1 + this.int(20) }, () => this.int(0x3000))),
    ])();
  }

  scalar(): Json {
    return this.pick<() => Json>([
      () => null,
      () => true,
      () => false,
      () => 0,
      () => -1,
      () => 2 ** 63,
      () => -(2 ** 53),
      () => 1.5,
      () => Number.MAX_VALUE,
      () => this.string(),
    ])();
  }

  value(depth = 0): Json {
    if (depth > 2 || this.chance(0.6)) return this.scalar();
    if (this.chance(0.5)) return Array.from({ length: this.int(4) }, () => this.value(depth + 1));
    const object: { [key: string]: Json } = {};
    for (let i = this.int(4); i > 0; i--) object[this.string()] = this.value(depth + 1);
    return object;
  }

  /** Replace, drop or retype a few values anywhere in a JSON document (keys stay as they are). */
  mutateJson(document: Json): Json {
    const copy = JSON.parse(JSON.stringify(document)) as Json;
    const rounds = 1 + this.int(3);
    for (let round = 0; round < rounds; round++) {
      const holders: Array<{ parent: Json[] | { [key: string]: Json }; key: string | number }> = [];
      const walk = (node: Json): void => {
        if (Array.isArray(node))
          node.forEach((child, i) => {
            holders.push({ parent: node, key: i });
            walk(child);
          });
        else if (node !== null && typeof node === 'object')
          for (const [key, child] of Object.entries(node)) {
            holders.push({ parent: node, key });
            walk(child);
          }
      };
      walk(copy);
      const target = holders.length > 0 ? this.pick(holders) : undefined;
      if (!target) continue;
      const parent = target.parent as Record<string | number, Json>;
      if (this.chance(0.2) && !Array.isArray(target.parent)) delete parent[target.key];
      else parent[target.key] = this.value();
    }
    return copy;
  }

  /** Byte-level damage to a text: flip, insert, delete or truncate. */
  mutateText(text: string): string {
    const at = this.int(text.length + 1);
    switch (this.int(4)) {
      case 0:
        return text.slice(0, at) + String.fromCharCode(this.int(128)) + text.slice(at + 1);
      case 1:
        return (
          text.slice(0, at) + this.pick(['{', '}', '[', ']', '"', ',', ':', '\\', 'null']) + text.slice(at)
        );
      case 2:
        return text.slice(0, at) + text.slice(at + 1 + this.int(8));
      default:
        return text.slice(0, at);
    }
  }

  bytes(max: number): Buffer {
    return Buffer.from(Array.from({ length: this.int(max) }, () => this.int(256)));
  }
}

/** A ustar archive of the given files (enough of the format for fuzz seeds). */
function tar(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const header = Buffer.alloc(512);
    header.write(name, 0, 100);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(Buffer.byteLength(content).toString(8).padStart(11, '0') + '\0', 124);
    header.write('00000000000\0', 136);
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    const data = Buffer.alloc(Math.ceil(Buffer.byteLength(content) / 512) * 512);
    data.write(content);
    blocks.push(header, data);
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

interface FuzzRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

function send(socketPath: string, request: FuzzRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = request.body === undefined ? undefined : Buffer.from(request.body);
    const headers: Record<string, string | number> = { ...(request.headers ?? {}) };
    if (body !== undefined && headers['Content-Type'] === undefined)
      headers['Content-Type'] = 'application/json';
    if (body !== undefined) headers['Content-Length'] = body.length;
    const req = http.request(
      {
        socketPath,
        method: request.method,
        path: request.path,
        headers,
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** What is wrong with an answer, or undefined. Streams (200 with JSON lines) are fine. */
function judge(answer: Answer, method = 'GET'): string | undefined {
  if (answer.status >= 500) return `status ${answer.status}: ${answer.body.slice(0, 300)}`;
  // A HEAD answer has no body to judge.
  if (answer.status < 400 || method === 'HEAD') return undefined;
  try {
    const parsed = JSON.parse(answer.body) as { message?: unknown };
    if (typeof parsed.message !== 'string' || parsed.message === '')
      return `status ${answer.status} without a message: ${answer.body.slice(0, 300)}`;
  } catch {
    return `status ${answer.status} with a body that is not JSON: ${answer.body.slice(0, 300)}`;
  }
  return undefined;
}

/** A streaming route (pull, build, load) reports errors inside a 200: none may be a crash text. */
function judgeStream(answer: Answer): string | undefined {
  if (answer.status !== 200) return judge(answer);
  if (
    /TypeError|RangeError|ReferenceError|Cannot read properties|is not a function|undefined/.test(answer.body)
  )
    return `stream reports an internal error: ${answer.body.slice(0, 300)}`;
  return undefined;
}

/** The seeds: valid documents the mutations start from. */
function seeds(sandbox: Sandbox): Record<string, Json> {
  return {
    container: {
      Image: 'busybox',
      Cmd: ['true'],
      Entrypoint: null,
      Env: ['A=1'],
      User: '0:0',
      WorkingDir: '/tmp',
      Labels: { a: 'b' },
      ExposedPorts: { '80/tcp': {} },
      StopSignal: 'SIGTERM',
      StopTimeout: 1,
      Healthcheck: { Test: ['CMD', 'true'], Interval: 1_000_000_000, Retries: 1 },
      Volumes: { '/data': {} },
      HostConfig: {
        CgroupParent: sandbox.cgroupParent,
        Binds: ['fuzzvol:/vol:ro'],
        Mounts: [{ Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1024 } }],
        Memory: 64 * 1024 * 1024,
        MemorySwap: -1,
        CpuShares: 512,
        NanoCpus: 500_000_000,
        PidsLimit: 100,
        PortBindings: { '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '0' }] },
        RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 },
        LogConfig: { Type: 'json-file', Config: { 'max-size': '1m' } },
        Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1024 }],
        Sysctls: { 'net.ipv4.ip_forward': '1' },
        CapAdd: ['NET_ADMIN'],
        CapDrop: ['MKNOD'],
        SecurityOpt: ['no-new-privileges'],
        Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/n', CgroupPermissions: 'rwm' }],
        Dns: ['127.0.0.1'],
        ExtraHosts: ['h:127.0.0.1'],
        ShmSize: 1024 * 1024,
        Tmpfs: { '/run': 'size=1m' },
        NetworkMode: 'bridge',
        IpcMode: 'private',
        PidMode: '',
        Init: true,
      },
      NetworkingConfig: { EndpointsConfig: { bridge: { Aliases: ['x'] } } },
    },
    network: {
      Name: 'fuzznet',
      Driver: 'bridge',
      Internal: false,
      Attachable: true,
      EnableIPv6: false,
      Labels: { a: 'b' },
      Options: {
        'com.docker.network.bridge.name': sandbox.name('fz'),
        'com.docker.network.driver.mtu': '1400',
        'com.docker.network.bridge.enable_icc': 'true',
      },
    },
    volume: { Name: 'fuzzvol', Driver: 'local', Labels: { a: 'b' }, DriverOpts: { size: '1m' } },
    exec: {
      Cmd: ['true'],
      AttachStdout: true,
      AttachStderr: true,
      Tty: false,
      Env: ['A=1'],
      User: 'root',
      WorkingDir: '/',
      Privileged: false,
    },
  };
}

/** An image reference that, if it parses at all, names the closed loopback registry. */
function reference(gen: Gen): string {
  const candidates = [
    `${CLOSED_REGISTRY}/a/b:c`,
    `${CLOSED_REGISTRY}/x@sha256:${'a'.repeat(64)}`,
    `${CLOSED_REGISTRY}/UPPER`,
    `${CLOSED_REGISTRY}/a:${'t'.repeat(200)}`,
    `${CLOSED_REGISTRY}/${'a/'.repeat(100)}b`,
    `${CLOSED_REGISTRY}/x@sha256:short`,
    `${CLOSED_REGISTRY}//x`,
    '',
    ':',
    '@',
  ];
  let text = gen.pick(candidates);
  for (let i = gen.int(3); i > 0; i--) text = gen.mutateText(text);
  return text;
}

function safeToPull(fromImage: string, tag: string | undefined): boolean {
  const full = tag ? (tag.startsWith('sha256:') ? `${fromImage}@${tag}` : `${fromImage}:${tag}`) : fromImage;
  try {
    return parseReference(full).domain === CLOSED_REGISTRY;
  } catch {
    return true; // berthd refuses it before any connection
  }
}

const query = (params: Record<string, string>): string =>
  Object.keys(params).length === 0
    ? ''
    : '?' +
      Object.entries(params)
        .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)
        .join('&');

function randomQuery(gen: Gen, names: string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (let i = gen.int(4); i > 0; i--) {
    const name = gen.pick(names);
    params[name] = gen.pick([
      () => gen.string(),
      () => JSON.stringify(gen.value()),
      () => '{"label":["a=b"],"status":["exited"]}',
      () => '{"dangling":{"true":true}}',
      () => '1',
      () => 'true',
      () => '-5',
    ])();
  }
  return params;
}

/** One fuzz request, built from the kind chosen by the PRNG. */
function nextRequest(
  gen: Gen,
  base: Record<string, Json>,
  target: string,
): { request: FuzzRequest; stream: boolean } {
  const jsonBody = (seed: Json): string =>
    gen.chance(0.25) ? gen.mutateText(JSON.stringify(seed)) : JSON.stringify(gen.mutateJson(seed));
  const missing = `nonexistent-${gen.int(1000)}`;
  switch (gen.int(14)) {
    case 0:
    case 1: {
      const name: Record<string, string> = gen.chance(0.5)
        ? { name: gen.chance(0.5) ? gen.string() : `c${gen.int(100000)}` }
        : {};
      return {
        request: {
          method: 'POST',
          path: `/containers/create${query({ ...name, ...randomQuery(gen, ['platform']) })}`,
          body: jsonBody(base.container ?? null),
        },
        stream: false,
      };
    }
    case 2:
      return {
        request: { method: 'POST', path: '/networks/create', body: jsonBody(base.network ?? null) },
        stream: false,
      };
    case 3:
      return {
        request: { method: 'POST', path: '/volumes/create', body: jsonBody(base.volume ?? null) },
        stream: false,
      };
    case 4: {
      const fromImage = reference(gen);
      const tag = gen.chance(0.3) ? gen.string() : undefined;
      const params: Record<string, string> = { fromImage, ...(tag === undefined ? {} : { tag }) };
      if (!safeToPull(fromImage, tag)) return { request: { method: 'GET', path: '/_ping' }, stream: false };
      return { request: { method: 'POST', path: `/images/create${query(params)}` }, stream: true };
    }
    case 5: {
      const body = gen.pick([
        () => gen.bytes(4096),
        () => gzipSync(gen.bytes(2048)),
        () => tar({ Dockerfile: 'FROM scratch\n' + gen.mutateText('COPY missing /\nRUN ["x"]\nLABEL a=b') }),
        () => tar({ Dockerfile: gen.bytes(200).toString('latin1') }),
        () => tar({ 'not-a-dockerfile': 'x' }),
        () => tar({ Dockerfile: 'FROM scratch\nCOPY . /\n' }).subarray(0, 300 + gen.int(700)),
      ])();
      const params = randomQuery(gen, [
        't',
        'dockerfile',
        'buildargs',
        'labels',
        'target',
        'shmsize',
        'memory',
        'q',
      ]);
      if (gen.chance(0.2)) params.dockerfile = '../../../../../etc/hostname';
      return {
        request: {
          method: 'POST',
          path: `/build${query(params)}`,
          headers: { 'Content-Type': 'application/x-tar' },
          body,
        },
        stream: true,
      };
    }
    case 6:
      return {
        request: {
          method: 'POST',
          path: `/containers/${gen.chance(0.8) ? target : missing}/exec`,
          body: jsonBody(base.exec ?? null),
        },
        stream: false,
      };
    case 7: {
      const path = gen.pick(['/tmp', '/', '/../../..', '', '/nonexistent', '/etc/hostname', gen.string()]);
      return {
        request: {
          method: 'PUT',
          path: `/containers/${target}/archive${query({ path, ...randomQuery(gen, ['noOverwriteDirNonDir', 'copyUIDGID']) })}`,
          headers: { 'Content-Type': 'application/x-tar' },
          body: gen.pick([
            () => gen.bytes(3000),
            () => tar({ [gen.pick(['a', '../escape', '/abs', 'd/'])]: 'x' }).subarray(0, gen.int(1600)),
            () => gzipSync(gen.bytes(1000)),
          ])(),
        },
        stream: false,
      };
    }
    case 8:
      return {
        request: {
          method: 'POST',
          path: '/images/load' + query(randomQuery(gen, ['quiet'])),
          headers: { 'Content-Type': 'application/x-tar' },
          body: gen.chance(0.5)
            ? gen.bytes(3000)
            : tar({ 'manifest.json': gen.mutateText('[{"Config":"c","RepoTags":["a:b"],"Layers":["l"]}]') }),
        },
        stream: true,
      };
    case 9: {
      const route = gen.pick([
        '/containers/json',
        '/images/json',
        '/networks',
        '/volumes',
        '/system/df',
        '/info',
        '/version',
        `/containers/${target}/json`,
        `/containers/${target}/top`,
        `/containers/${target}/changes`,
        `/containers/${target}/archive`,
        `/containers/${missing}/json`,
        `/images/${encodeURIComponent(gen.string())}/json`,
        `/images/busybox/history`,
        `/networks/${encodeURIComponent(gen.string())}`,
        `/volumes/${encodeURIComponent(gen.string())}`,
        `/exec/${missing}/json`,
      ]);
      const params = randomQuery(gen, [
        'all',
        'filters',
        'limit',
        'size',
        'ps_args',
        'path',
        'verbose',
        'digests',
      ]);
      return {
        request: { method: gen.chance(0.9) ? 'GET' : 'HEAD', path: route + query(params) },
        stream: false,
      };
    }
    case 10: {
      const route = gen.pick([
        `/containers/${missing}`,
        `/images/${encodeURIComponent(`${CLOSED_REGISTRY}/${missing}`)}`,
        `/networks/${missing}`,
        `/volumes/${missing}`,
      ]);
      return {
        request: { method: 'DELETE', path: route + query(randomQuery(gen, ['force', 'v', 'noprune'])) },
        stream: false,
      };
    }
    case 11: {
      const route = gen.pick([
        `/containers/${target}/resize`,
        `/containers/${missing}/start`,
        `/containers/${missing}/stop`,
        `/containers/${target}/rename`,
        `/images/busybox/tag`,
        '/containers/prune',
        '/networks/prune',
        '/volumes/prune',
        '/images/prune',
      ]);
      const params = randomQuery(gen, ['h', 'w', 'name', 'repo', 'tag', 'filters', 't', 'force']);
      if (route.endsWith('/rename')) params.name = `r${gen.int(1000)}-${gen.string().slice(0, 20)}`;
      if (route.endsWith('/rename') && gen.chance(0.9)) params.name = gen.string();
      // Renaming the target to a valid name would change nothing the other requests depend on (they use its id).
      return { request: { method: 'POST', path: route + query(params) }, stream: false };
    }
    case 12: {
      // Wrong or missing content types on JSON routes.
      const contentType = gen.pick([
        'text/plain',
        'application/x-www-form-urlencoded',
        '',
        'application/json; charset=latin1',
        'multipart/form-data',
      ]);
      return {
        request: {
          method: 'POST',
          path: gen.pick([
            '/containers/create',
            '/networks/create',
            '/volumes/create',
            `/containers/${target}/exec`,
          ]),
          headers: { 'Content-Type': contentType },
          body: gen.chance(0.5) ? '{}' : gen.bytes(200),
        },
        stream: false,
      };
    }
    default: {
      // Unknown routes, versions and methods.
      const path = gen.pick([
        '/v0.1/info',
        '/v99.99/info',
        '/v1.x/info',
        '/v1.41/../../info',
        '/%2e%2e/%2e%2e/info',
        '/containers/%00/json',
        `/${encodeURIComponent(gen.string())}`,
        '/containers/create/extra',
      ]);
      return {
        request: { method: gen.pick(['GET', 'POST', 'PATCH', 'OPTIONS', 'PUT']), path },
        stream: false,
      };
    }
  }
}

/** Raw requests the http client would not send: the answer, or `closed` when berthd hung up. */
function raw(socketPath: string, bytes: Buffer | string, halfClose: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ path: socketPath });
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`raw request: no answer and no close within ${REQUEST_TIMEOUT_MS} ms`));
    }, REQUEST_TIMEOUT_MS);
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(answer === '' ? 'closed' : answer);
    });
    socket.write(bytes);
    if (halfClose) socket.end();
  });
}

function rawStatus(answer: string): number | 'closed' {
  if (answer === 'closed') return 'closed';
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0);
}

async function hostState(sandbox: Sandbox): Promise<{ mounts: string[]; netns: string[]; links: string[] }> {
  const mounts = (await listMounts()).map((m) => m.mountPoint).filter((p) => p.startsWith(sandbox.root));
  const netns = (await execProgram('ip', ['netns', 'list'])).stdout
    .split('\n')
    .filter((l) => l.includes(sandbox.id));
  const links = (await execProgram('ip', ['-o', 'link', 'show'])).stdout
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1] ?? '')
    .filter((name) => name.startsWith(`bt${sandbox.id}`));
  return { mounts: mounts.sort(), netns, links: links.sort() };
}

test('Engine API fuzz: every answer is a status with a JSON message, never a 500, never a hang', async (t) => {
  const sandbox = await createSandbox(t);
  const busybox = await ensureFixture('busybox');
  const daemon = await startBerthd(t, sandbox);
  const loaded = await docker(sandbox, daemon.dockerHost, ['load', '-i', busybox.dockerArchive]);
  assert.equal(loaded.code, 0, loaded.stderr);
  const before = await hostState(sandbox);
  const started = await docker(sandbox, daemon.dockerHost, [
    'run',
    '-d',
    '--cgroup-parent',
    sandbox.cgroupParent,
    '--name',
    'fuzz-target',
    'busybox',
    'sleep',
    '1000',
  ]);
  assert.equal(started.code, 0, started.stderr);
  const target = started.stdout.trim();

  const gen = new Gen(prng(SEED));
  const base = seeds(sandbox);
  const findings: string[] = [];
  const statuses = new Map<number, number>();
  const begin = Date.now();
  let sent = 0;
  for (; sent < REQUESTS && Date.now() - begin < BUDGET_MS; sent++) {
    const { request, stream } = nextRequest(gen, base, target);
    const describe = (): string => {
      const body = request.body === undefined ? '' : Buffer.from(request.body);
      const shown =
        body === ''
          ? ''
          : body.length > 4000
            ? `${body.length} bytes`
            : JSON.stringify(body.toString('latin1'));
      return `#${sent} ${request.method} ${request.path} ${JSON.stringify(request.headers ?? {})} ${shown}`;
    };
    try {
      const answer = await send(daemon.socket, request);
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      const problem = stream ? judgeStream(answer) : judge(answer, request.method);
      if (problem) findings.push(`${describe()}\n    -> ${problem}`);
    } catch (err) {
      findings.push(`${describe()}\n    -> ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  t.diagnostic(
    `seed ${SEED}: ${sent} requests in ${Date.now() - begin} ms; statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
  );
  assert.ok(sent >= 1000, `only ${sent} requests in the time budget`);

  // Raw abuse the http client would not produce.
  const socket = daemon.socket;
  const rawCases: Array<{
    name: string;
    bytes: Buffer | string;
    halfClose: boolean;
    ok: (status: number | 'closed') => boolean;
  }> = [
    {
      // Go's (and so Docker's) bound is 1 MiB of headers: twice that must be refused.
      name: 'a 2 MiB header',
      bytes: `GET /info HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(2 * 1024 * 1024)}\r\n\r\n`,
      halfClose: false,
      ok: (s) => s === 431 || s === 400 || s === 'closed',
    },
    {
      name: '2000 headers',
      bytes: `GET /info HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 2000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`,
      halfClose: false,
      ok: (s) => s === 431 || s === 400 || s === 200 || s === 'closed',
    },
    {
      name: 'a body shorter than its Content-Length, then EOF',
      bytes:
        'POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"Image":"busy',
      halfClose: true,
      ok: (s) => s === 'closed' || (typeof s === 'number' && s >= 400 && s < 500),
    },
    {
      name: 'broken chunked encoding',
      bytes:
        'POST /volumes/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      halfClose: true,
      ok: (s) => s === 400 || s === 'closed',
    },
    {
      name: 'a truncated chunked body, then EOF',
      bytes:
        'POST /networks/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"Name":',
      halfClose: true,
      ok: (s) => s === 'closed' || (typeof s === 'number' && s >= 400 && s < 500),
    },
    {
      name: 'Content-Length and Transfer-Encoding together',
      bytes:
        'POST /volumes/create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
      halfClose: true,
      ok: (s) => s === 400 || s === 'closed',
    },
    {
      name: 'a request line of garbage',
      bytes: '\x00\x01\x02 garbage \xff\r\n\r\n',
      halfClose: true,
      ok: (s) => s === 400 || s === 'closed',
    },
    {
      name: 'an upgrade request with a short body',
      bytes: `POST /containers/${target}/attach?stream=1&stdout=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 100\r\n\r\nab`,
      halfClose: true,
      ok: (s) => s === 'closed' || (typeof s === 'number' && s >= 400 && s < 500) || s === 101,
    },
  ];
  for (const rawCase of rawCases) {
    const answer = await raw(socket, rawCase.bytes, rawCase.halfClose).catch(
      (err: Error) => `error: ${err.message}`,
    );
    const status = answer.startsWith('error: ') ? 0 : rawStatus(answer);
    if (!rawCase.ok(status)) findings.push(`raw: ${rawCase.name} -> ${answer.slice(0, 300)}`);
  }
  // A JSON body larger than any create body needs.
  const huge = await send(socket, {
    method: 'POST',
    path: '/containers/create',
    body: JSON.stringify({
      Image: 'busybox',
      Env: Array.from({ length: 1 }, () => 'A='.padEnd(64 * 1024 * 1024, 'x')),
    }),
  }).catch((err: Error) => ({ status: 0, contentType: '', body: err.message }));
  // Closing the connection on an oversized body (EPIPE/ECONNRESET while sending) is a refusal too.
  const hugeProblem =
    huge.status === 0 ? (/EPIPE|ECONNRESET/.test(huge.body) ? undefined : huge.body) : judge(huge);
  if (hugeProblem) findings.push(`64 MiB create body -> ${hugeProblem}`);

  const ping = await send(socket, { method: 'GET', path: '/_ping' });
  assert.equal(ping.status, 200, 'berthd still answers /_ping');
  assert.equal(daemon.child.exitCode, null, 'berthd still runs');

  // Everything the fuzzing made goes away through the API, and nothing is left on the host.
  for (const args of [
    ['rm', '-f', target],
    ['container', 'prune', '-f'],
    ['network', 'prune', '-f'],
    ['volume', 'prune', '-a', '-f'],
  ]) {
    const result = await docker(sandbox, daemon.dockerHost, args);
    assert.equal(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
  }
  assert.deepEqual(await hostState(sandbox), before, 'no mount, netns or link left by the fuzzing');
  assert.deepEqual(
    findings,
    [],
    `seed ${SEED}: ${findings.length} bad answers:\n${findings.slice(0, 40).join('\n')}`,
  );
});
