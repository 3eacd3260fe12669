/**
 * berth's nftables table on the real kernel, always inside network namespaces the test creates
 * (the host's ruleset is never touched): the table is replaced atomically, shrinks when the state
 * does, leaves other tables alone, and a published port really reaches a "container" namespace
 * from the first namespace's 127.0.0.1 and from the container itself (hairpin).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Firewall } from '../../src/network/firewall.js';
import type { FirewallState } from '../../src/network/firewall.js';
import { execOk, execProgram } from '../helpers/exec.js';
import { createSandbox, isRoot } from '../helpers/sandbox.js';
import type { Sandbox } from '../helpers/sandbox.js';

const skip = !isRoot()
  ? 'needs root'
  : (await execProgram('nft', ['--version']).catch(() => ({ code: 127 }))).code !== 0
    ? 'nft is not installed (apt-get install nftables)'
    : false;

async function netns(sandbox: Sandbox, suffix: string): Promise<string> {
  const name = sandbox.name(suffix);
  sandbox.trackNetns(name);
  await execOk('ip', ['netns', 'add', name]);
  await execOk('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

const nft = (ns: string, args: string[]): Promise<string> =>
  execOk('ip', ['netns', 'exec', ns, 'nft', ...args]);

interface NftRule {
  chain: string;
  expr: unknown[];
}

/** The rules of a table, read back as nft's JSON. */
async function rules(ns: string, table: string): Promise<{ chains: string[]; rules: NftRule[] }> {
  const json = JSON.parse(await nft(ns, ['-j', 'list', 'table', 'inet', table])) as {
    nftables: { chain?: { name: string }; rule?: NftRule }[];
  };
  return {
    chains: json.nftables.flatMap((item) => (item.chain ? [item.chain.name] : [])).sort(),
    rules: json.nftables.flatMap((item) => (item.rule ? [item.rule] : [])),
  };
}

/** Rules of `chain` whose JSON contains every fragment. */
const find = (all: NftRule[], chain: string, ...fragments: string[]): NftRule[] =>
  all.filter((rule) => rule.chain === chain && fragments.every((f) => JSON.stringify(rule.expr).includes(f)));

const STATE: FirewallState = {
  networks: [
    { bridge: 'br-a', subnets: ['10.88.0.0/16', 'fd00:88::/64'] },
    { bridge: 'br-b', subnets: ['10.89.0.0/16'], icc: false },
  ],
  portMaps: [
    { proto: 'tcp', hostPort: 8080, containerIp: '10.88.0.2', containerPort: 80, bridge: 'br-a' },
    {
      proto: 'udp',
      hostIp: '127.0.0.1',
      hostPort: 5353,
      containerIp: '10.89.0.2',
      containerPort: 53,
      bridge: 'br-b',
    },
  ],
};

test(
  'apply replaces only berth table, shrinks with the state, and remove deletes it',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const ns = await netns(sandbox, 'fw');
    const table = `berth_${sandbox.id}`;
    await execOk('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
      input:
        'table inet other {\n\tchain c {\n\t\ttype filter hook forward priority 10; policy accept;\n\t\tcounter\n\t}\n}\n',
    });
    const otherBefore = await nft(ns, ['list', 'table', 'inet', 'other']);
    const firewall = new Firewall({ table, netnsPath: `/run/netns/${ns}` });

    await firewall.apply(STATE);
    await firewall.apply(STATE); // applying again replaces, it does not add
    const full = await rules(ns, table);
    assert.deepEqual(full.chains, ['forward', 'output', 'postrouting', 'prerouting', 'published']);
    assert.equal(
      find(full.rules, 'published', '"dnat"', '"addr":"10.88.0.2"', '"port":80', '8080').length,
      1,
    );
    assert.equal(
      find(full.rules, 'published', '"dnat"', '"addr":"10.89.0.2"', '"port":53', '127.0.0.1').length,
      1,
    );
    assert.equal(find(full.rules, 'postrouting', '"masquerade"', '"addr":"10.88.0.0"', '"len":16').length, 2);
    assert.equal(find(full.rules, 'postrouting', '"masquerade"', 'fd00:88::').length, 2);
    assert.equal(find(full.rules, 'forward', '"br-a"', '"br-b"', '"drop"').length, 2); // isolation, both ways
    assert.equal(find(full.rules, 'prerouting', '"fib"', '"jump"').length, 1);
    assert.equal(find(full.rules, 'output', '"fib"', '"jump"').length, 1);

    // A restarted daemon reconciles with what is left: the stale rules go.
    await new Firewall({ table, netnsPath: `/run/netns/${ns}` }).reconcile({
      networks: [STATE.networks[0] ?? { bridge: 'br-a', subnets: [] }],
      portMaps: [],
    });
    const small = await rules(ns, table);
    assert.equal(find(small.rules, 'published', '"dnat"').length, 0);
    assert.equal(small.rules.filter((rule) => JSON.stringify(rule.expr).includes('br-b')).length, 0);
    assert.equal(find(small.rules, 'postrouting', '"masquerade"', '"addr":"10.88.0.0"').length, 2);

    assert.equal(await nft(ns, ['list', 'table', 'inet', 'other']), otherBefore);
    await firewall.remove();
    await firewall.remove(); // nothing left to remove is fine
    const tables = await nft(ns, ['list', 'tables']);
    assert.match(tables, /table inet other/);
    assert.doesNotMatch(tables, new RegExp(table));
    assert.equal(await nft(ns, ['list', 'table', 'inet', 'other']), otherBefore);
    const hostTables = await execOk('nft', ['list', 'tables']);
    assert.doesNotMatch(hostTables, new RegExp(table), 'the host ruleset never saw the table');
  },
);

// ---- a published port, end to end ----------------------------------------------------------

const SERVER = `
const net = require('net');
net.createServer((s) => s.end('hello to ' + s.remoteAddress + '\\n')).listen(8000, '0.0.0.0', () => console.log('ready'));
`;

const CLIENT = `
const net = require('net');
const s = net.connect({ host: process.argv[1], port: Number(process.argv[2]) });
let data = '';
s.setTimeout(Number(process.argv[3]), () => { console.log('TIMEOUT'); s.destroy(); });
s.on('data', (c) => (data += c));
s.on('end', () => console.log(data.trim()));
s.on('error', (e) => console.log('ERROR ' + e.code));
`;

/**
 * Connects from inside `ns` and returns what the server said, or ERROR <code>, or TIMEOUT when
 * nothing answers within `waitMs` (how a dropped packet shows).
 */
async function fetchFrom(ns: string, host: string, port: number, waitMs = 5000): Promise<string> {
  const args = ['netns', 'exec', ns, process.execPath, '-e', CLIENT, host, String(port), String(waitMs)];
  return (await execOk('ip', args, { timeoutMs: waitMs + 15_000 })).trim();
}

/** Starts the TCP server on port 8000 in `ns` and waits (bounded) until it listens. */
async function startServer(sandbox: Sandbox, ns: string): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER], {
    cwd: sandbox.root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) sandbox.trackProcess(child.pid);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start')), 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}`));
    });
  });
}

/** A "host" namespace that forwards, as berthd's host does. */
async function hostNetns(sandbox: Sandbox): Promise<string> {
  const host = await netns(sandbox, 'h');
  await execOk('ip', ['netns', 'exec', host, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  return host;
}

/**
 * A bridge in `host` with address `<prefix>.1/24` and one "container" namespace on it at
 * `<prefix>.2` running the server, wired as berth's endpoints are.
 */
async function containerOnBridge(
  sandbox: Sandbox,
  host: string,
  n: number,
  prefix: string,
): Promise<{ bridge: string; container: string }> {
  const bridge = sandbox.name(`br${n}`);
  const hostSide = sandbox.name(`vh${n}`);
  const peer = sandbox.name(`vc${n}`);
  const container = await netns(sandbox, `c${n}`);
  const inHost = (...args: string[]): Promise<string> => execOk('ip', ['-n', host, ...args]);
  const inContainer = (...args: string[]): Promise<string> => execOk('ip', ['-n', container, ...args]);
  await inHost('link', 'add', bridge, 'type', 'bridge');
  await inHost('addr', 'add', `${prefix}.1/24`, 'dev', bridge);
  await inHost('link', 'set', bridge, 'up');
  await execOk('ip', ['netns', 'exec', host, 'sysctl', '-qw', `net.ipv4.conf.${bridge}.route_localnet=1`]);
  await inHost('link', 'add', hostSide, 'type', 'veth', 'peer', 'name', peer);
  await inHost('link', 'set', peer, 'netns', container);
  await inHost('link', 'set', hostSide, 'master', bridge, 'up');
  // With br_netfilter loaded (as here) the hairpin DNAT is bridged back out of the same port.
  await inHost('link', 'set', hostSide, 'type', 'bridge_slave', 'hairpin', 'on');
  await inContainer('addr', 'add', `${prefix}.2/24`, 'dev', peer);
  await inContainer('link', 'set', peer, 'up');
  await inContainer('route', 'add', 'default', 'via', `${prefix}.1`);
  await startServer(sandbox, container);
  return { bridge, container };
}

test(
  'a published port reaches the container from 127.0.0.1 and from the container itself',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const host = await hostNetns(sandbox);
    const { bridge, container } = await containerOnBridge(sandbox, host, 1, '10.47.0');
    const firewall = new Firewall({ table: `berth_${sandbox.id}`, netnsPath: `/run/netns/${host}` });
    const network = { bridge, subnets: ['10.47.0.0/24'] };
    assert.equal(await fetchFrom(host, '127.0.0.1', 8080), 'ERROR ECONNREFUSED'); // nothing yet
    await firewall.apply({
      networks: [network],
      portMaps: [{ proto: 'tcp', hostPort: 8080, containerIp: '10.47.0.2', containerPort: 8000, bridge }],
    });
    // From the host's loopback: DNAT in output, then masquerade to the bridge address.
    assert.equal(await fetchFrom(host, '127.0.0.1', 8080), 'hello to 10.47.0.1');
    // Hairpin: the container reaches its own published port through the host address.
    assert.equal(await fetchFrom(container, '10.47.0.1', 8080), 'hello to 10.47.0.1');
    // The container port itself stays reachable from the host directly (no DNAT involved).
    assert.equal(await fetchFrom(host, '10.47.0.2', 8000), 'hello to 10.47.0.1');

    await firewall.apply({ networks: [network], portMaps: [] });
    assert.equal(await fetchFrom(host, '127.0.0.1', 8080), 'ERROR ECONNREFUSED');
  },
);

test(
  'networks are isolated from each other; an internal network reaches nothing outside',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const host = await hostNetns(sandbox);
    const one = await containerOnBridge(sandbox, host, 1, '10.47.0');
    const two = await containerOnBridge(sandbox, host, 2, '10.48.0');
    const firewall = new Firewall({ table: `berth_${sandbox.id}`, netnsPath: `/run/netns/${host}` });
    const portMaps: FirewallState['portMaps'] = [
      { proto: 'tcp', hostPort: 8080, containerIp: '10.47.0.2', containerPort: 8000, bridge: one.bridge },
    ];
    // Plain routing between the two bridges works before berth's rules exist.
    assert.equal(await fetchFrom(two.container, '10.47.0.2', 8000), 'hello to 10.48.0.2');

    await firewall.apply({
      networks: [
        { bridge: one.bridge, subnets: ['10.47.0.0/24'] },
        { bridge: two.bridge, subnets: ['10.48.0.0/24'] },
      ],
      portMaps,
    });
    assert.equal(await fetchFrom(two.container, '10.47.0.2', 8000, 2000), 'TIMEOUT');
    // A published port is public: the other network reaches it through the host's address.
    assert.equal(await fetchFrom(two.container, '10.48.0.1', 8080), 'hello to 10.47.0.1');

    await firewall.apply({
      networks: [
        { bridge: one.bridge, subnets: ['10.47.0.0/24'] },
        { bridge: two.bridge, subnets: ['10.48.0.0/24'], internal: true },
      ],
      portMaps,
    });
    assert.equal(await fetchFrom(two.container, '10.48.0.1', 8080, 2000), 'TIMEOUT');
    assert.equal(await fetchFrom(one.container, '10.48.0.2', 8000, 2000), 'TIMEOUT');
    assert.equal(await fetchFrom(one.container, '10.47.0.1', 8080), 'hello to 10.47.0.1');
  },
);
