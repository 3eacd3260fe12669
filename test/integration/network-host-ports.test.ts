/**
 * Host port reservations on the real kernel, inside a network namespace the test creates (so
 * wildcard and privileged ports never touch the host's): "all addresses" holds 0.0.0.0 and ::,
 * another process (another daemon) gets Docker's conflict message, a privileged port works as
 * root, ephemeral ports come from the namespace's ip_local_port_range, and a published port
 * reaches the container through the firewall although the reservation listens on it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Firewall } from '../../src/network/firewall.js';
import type { HostPortRequest } from '../../src/network/host-ports.js';
import { execOk, execProgram } from '../helpers/exec.js';
import { createSandbox, isRoot } from '../helpers/sandbox.js';
import type { Sandbox } from '../helpers/sandbox.js';

const skip = !isRoot()
  ? 'needs root'
  : (await execProgram('nft', ['--version']).catch(() => ({ code: 127 }))).code !== 0
    ? 'nft is not installed (apt-get install nftables)'
    : false;

const HOST_PORTS_MODULE = fileURLToPath(new URL('../../src/network/host-ports.js', import.meta.url));

/** Reserves the requested ports in its own process, prints the outcome, holds until stdin ends. */
const RESERVER = `
import { HostPorts } from ${JSON.stringify(HOST_PORTS_MODULE)};
const ports = new HostPorts();
const results = [];
for (const request of JSON.parse(process.argv[2])) {
  try {
    results.push({ port: (await ports.reserve(request)).port });
  } catch (err) {
    results.push({ kind: err.kind, message: err.message });
  }
}
console.log(JSON.stringify(results));
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`;

type Outcome = { port: number } | { kind: string; message: string };

async function netns(sandbox: Sandbox, suffix: string): Promise<string> {
  const name = sandbox.name(suffix);
  sandbox.trackNetns(name);
  await execOk('ip', ['netns', 'add', name]);
  await execOk('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

/** Starts a reserver in `ns`; resolves with its outcomes while it keeps holding the ports. */
async function reserveIn(
  sandbox: Sandbox,
  ns: string,
  requests: HostPortRequest[],
): Promise<{ outcomes: Outcome[]; child: ChildProcessWithoutNullStreams }> {
  const script = join(sandbox.root, 'reserver.mjs');
  await writeFile(script, RESERVER);
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, script, JSON.stringify(requests)], {
    cwd: sandbox.root,
  });
  if (child.pid !== undefined) sandbox.trackProcess(child.pid);
  const outcomes = await new Promise<Outcome[]>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`reserver did not answer: ${err}`)), 20_000);
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) {
        clearTimeout(timer);
        resolve(JSON.parse(out) as Outcome[]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`reserver exited with ${code}: ${err}`));
    });
  });
  return { outcomes, child };
}

/** Ends a reserver and waits for it, so its sockets are closed. */
function stop(child: ChildProcessWithoutNullStreams): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.stdin.end();
  });
}

/** Listening TCP sockets in `ns` as `address:port` strings. */
async function listeners(ns: string): Promise<string[]> {
  const out = await execOk('ip', ['netns', 'exec', ns, 'ss', '-Hltn']);
  return out
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[3] ?? '')
    .filter((local) => local !== '');
}

test(
  'reservations hold ports in the namespace and other processes get Docker conflict message',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const ns = await netns(sandbox, 'p');
    const [low, high] = (
      await execOk('ip', ['netns', 'exec', ns, 'cat', '/proc/sys/net/ipv4/ip_local_port_range'])
    )
      .trim()
      .split(/\s+/)
      .map(Number);

    const first = await reserveIn(sandbox, ns, [
      { proto: 'tcp', hostIp: '', first: 8080, endpoint: 'web' },
      { proto: 'tcp', hostIp: '127.0.0.1', first: 80, endpoint: 'web' },
      { proto: 'udp', hostIp: '', first: 5353, endpoint: 'web' },
      { proto: 'tcp', first: 0, endpoint: 'web' },
    ]);
    assert.deepEqual(first.outcomes.slice(0, 3), [{ port: 8080 }, { port: 80 }, { port: 5353 }]);
    const ephemeral = first.outcomes[3];
    assert.ok(ephemeral !== undefined && 'port' in ephemeral, JSON.stringify(ephemeral));
    assert.ok(low !== undefined && high !== undefined && ephemeral.port >= low && ephemeral.port <= high);
    const listening = await listeners(ns);
    for (const expected of ['0.0.0.0:8080', '[::]:8080', '127.0.0.1:80', `0.0.0.0:${ephemeral.port}`])
      assert.ok(listening.includes(expected), `${expected} in ${listening.join(' ')}`);

    const second = await reserveIn(sandbox, ns, [
      { proto: 'tcp', hostIp: '', first: 8080, endpoint: 'other (1234)' },
      { proto: 'tcp', hostIp: '0.0.0.0', first: 80, endpoint: 'other (1234)' },
      { proto: 'udp', hostIp: '::', first: 5353, endpoint: 'other (1234)' },
      { proto: 'tcp', hostIp: '', first: 8080, last: 8081, endpoint: 'other (1234)' },
    ]);
    const prefix = 'driver failed programming external connectivity on endpoint other (1234)';
    assert.deepEqual(second.outcomes, [
      { kind: 'conflict', message: `${prefix}: Bind for 0.0.0.0:8080 failed: port is already allocated` },
      { kind: 'conflict', message: `${prefix}: Bind for 0.0.0.0:80 failed: port is already allocated` },
      { kind: 'conflict', message: `${prefix}: Bind for [::]:5353 failed: port is already allocated` },
      { port: 8081 },
    ]);
    await stop(second.child);
    await stop(first.child);
    const after = await listeners(ns);
    assert.deepEqual(
      after.filter((local) => /:(80|8080|8081)$/.test(local)),
      [],
    );
  },
);

const CLIENT = `
const s = require('net').connect({ host: '127.0.0.1', port: 8080 });
let data = '';
s.setTimeout(5000, () => { console.log('TIMEOUT'); s.destroy(); });
s.on('data', (c) => (data += c));
s.on('end', () => console.log(data.trim()));
s.on('error', (e) => console.log('ERROR ' + e.code));
`;

const SERVER = `
require('net').createServer((s) => s.end('from the container\\n')).listen(8000, '0.0.0.0', () => console.log('ready'));
`;

test('a published port reaches the container although the reservation listens on it', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const host = await netns(sandbox, 'h');
  const container = await netns(sandbox, 'c');
  const bridge = sandbox.name('br');
  const hostSide = sandbox.name('vh');
  const peer = sandbox.name('vc');
  const inHost = (...args: string[]): Promise<string> => execOk('ip', ['-n', host, ...args]);
  await inHost('link', 'add', bridge, 'type', 'bridge');
  await inHost('addr', 'add', '10.49.0.1/24', 'dev', bridge);
  await inHost('link', 'set', bridge, 'up');
  await execOk('ip', ['netns', 'exec', host, 'sysctl', '-qw', `net.ipv4.conf.${bridge}.route_localnet=1`]);
  await inHost('link', 'add', hostSide, 'type', 'veth', 'peer', 'name', peer);
  await inHost('link', 'set', peer, 'netns', container);
  await inHost('link', 'set', hostSide, 'master', bridge, 'up');
  await execOk('ip', ['-n', container, 'addr', 'add', '10.49.0.2/24', 'dev', peer]);
  await execOk('ip', ['-n', container, 'link', 'set', peer, 'up']);
  const server = spawn('ip', ['netns', 'exec', container, process.execPath, '-e', SERVER], {
    cwd: sandbox.root,
  });
  if (server.pid !== undefined) sandbox.trackProcess(server.pid);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start')), 20_000);
    server.stdout.on('data', () => {
      clearTimeout(timer);
      resolve();
    });
  });

  const reservation = await reserveIn(sandbox, host, [
    { proto: 'tcp', hostIp: '', first: 8080, endpoint: 'web' },
  ]);
  assert.deepEqual(reservation.outcomes, [{ port: 8080 }]);
  const client = async (): Promise<string> =>
    (
      await execOk('ip', ['netns', 'exec', host, process.execPath, '-e', CLIENT], { timeoutMs: 20_000 })
    ).trim();
  // Without DNAT the connection reaches the reservation socket, which closes it at once.
  assert.match(await client(), /^(|ERROR ECONNRESET)$/);
  const firewall = new Firewall({ table: `berth_${sandbox.id}`, netnsPath: `/run/netns/${host}` });
  await firewall.apply({
    networks: [{ bridge, subnets: ['10.49.0.0/24'] }],
    portMaps: [{ proto: 'tcp', hostPort: 8080, containerIp: '10.49.0.2', containerPort: 8000, bridge }],
  });
  assert.equal(await client(), 'from the container');
  await stop(reservation.child);
});
