/**
 * berth-netlink against the real kernel through the Netlink client: two network namespaces on a
 * bridge with veth pairs reach each other and the bridge over IPv4 and IPv6, operations are
 * idempotent where docs/netlink.md says so, errors name the failed operation and the process
 * keeps serving, and deleted namespaces are really gone. Traffic goes only to the namespaces and
 * the bridge this test creates, on a 10.X subnet reserved for it.
 */
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Netlink, NetlinkError, type NetOp } from '../../src/network/netlink.js';
import { execProgram, type ExecResult } from '../helpers/exec.js';
import { createSandbox, isRoot, listMounts, type Sandbox } from '../helpers/sandbox.js';
import { testSubnet } from '../helpers/test-subnets.js';

const BINARY =
  process.env.BERTH_NETLINK ?? fileURLToPath(new URL('../../../native/build/berth-netlink', import.meta.url));
const skip = !isRoot()
  ? 'needs root'
  : !existsSync(BINARY)
    ? `${BINARY} is not built (make -C native)`
    : false;

const MTU = 1400; // not the default, so the test sees that it was applied

interface Net {
  sandbox: Sandbox;
  netlink: Netlink;
  bridge: string;
  /** 10.X.1.0/24 on the bridge; 10.X.2.1 is a second bridge address only reachable by route. */
  v4: (host: number) => string;
  other: string;
  v6: (host: number) => string;
}

const group = (hex: string): string => Number.parseInt(hex, 16).toString(16);

async function setup(t: TestContext): Promise<Net> {
  const sandbox = await createSandbox(t);
  const netlink = Netlink.start(BINARY);
  t.after(() => netlink.close());
  const octet = (await testSubnet(t)).split('.')[1];
  const bridge = sandbox.name('br');
  sandbox.trackLink(bridge);
  return {
    sandbox,
    netlink,
    bridge,
    v4: (host) => `10.${octet}.1.${host}`,
    other: `10.${octet}.2.1`,
    // Groups without leading zeros, the way `ip` prints them.
    v6: (host) => `fd00:${group(sandbox.id.slice(0, 4))}:${group(sandbox.id.slice(4, 8))}::${host}`,
  };
}

function inNs(path: string, args: string[]): Promise<ExecResult> {
  return execProgram('nsenter', [`--net=${path}`, ...args], { timeoutMs: 30_000 });
}

/** One reply within 10 s: ping sends again each second until then (a first ARP or neighbour
 * solicitation may meet a bridge port that the kernel enables asynchronously). */
async function ping(path: string, address: string): Promise<ExecResult> {
  return inNs(path, ['busybox', 'ping', address.includes(':') ? '-6' : '-4', '-c', '1', '-w', '10', address]);
}

async function assertPing(path: string, address: string): Promise<void> {
  const result = await ping(path, address);
  assert.equal(result.code, 0, `ping ${address} from ${path}: ${result.stdout}${result.stderr}`);
}

async function hostLink(name: string): Promise<string> {
  return (await execProgram('ip', ['-o', 'link', 'show', 'dev', name])).stdout;
}

/** The bridge with its addresses (idempotent: the same batch can run again). */
const networkOps = (net: Net): NetOp[] => [
  { op: 'bridge', name: net.bridge, mtu: MTU, mac: '02:42:0a:00:00:01' },
  { op: 'sysctl', key: ['net', 'ipv6', 'conf', net.bridge, 'disable_ipv6'], value: '0' },
  { op: 'addr', dev: net.bridge, cidr: `${net.v4(1)}/24` },
  { op: 'addr', dev: net.bridge, cidr: `${net.other}/24` },
  { op: 'addr', dev: net.bridge, cidr: `${net.v6(1)}/64` },
];

/** A namespace attached to the bridge as eth0 with address host; routes only when asked. */
async function attach(
  net: Net,
  suffix: string,
  host: number,
  routes: boolean,
): Promise<{ path: string; attachMs: number }> {
  const path = join(net.sandbox.root, `ns-${suffix}`);
  net.sandbox.trackMount(path);
  const hostName = net.sandbox.name(`v${suffix}`);
  net.sandbox.trackLink(hostName);
  await net.netlink.run([{ op: 'netns-create', path }]);
  const started = performance.now();
  await net.netlink.run([
    { op: 'veth', hostName, peerName: 'eth0', netns: path, mtu: MTU, peerMac: `02:42:0a:00:00:0${host}` },
    { op: 'master', dev: hostName, bridge: net.bridge },
    { op: 'up', dev: hostName },
    { op: 'enter', path },
    { op: 'sysctl', key: ['net', 'ipv6', 'conf', 'eth0', 'disable_ipv6'], value: '0' },
    { op: 'addr', dev: 'eth0', cidr: `${net.v4(host)}/24` },
    { op: 'addr', dev: 'eth0', cidr: `${net.v6(host)}/64` },
    { op: 'up', dev: 'eth0' },
    ...(routes
      ? [
          { op: 'route', dst: 'default', gateway: net.v4(1), dev: 'eth0' } as const,
          { op: 'route', dst: 'default', gateway: net.v6(1), dev: 'eth0' } as const,
        ]
      : []),
  ]);
  return { path, attachMs: performance.now() - started };
}

test('two namespaces on a bridge reach each other and the bridge over IPv4 and IPv6', { skip }, async (t) => {
  const net = await setup(t);
  await net.netlink.run(networkOps(net));
  await net.netlink.run(networkOps(net)); // again: an existing bridge and addresses are fine
  const { path: a, attachMs } = await attach(net, 'a', 2, false);
  const { path: b } = await attach(net, 'b', 3, true);
  t.diagnostic(
    `attaching a namespace (veth, master, addresses, up: one batch) took ${attachMs.toFixed(2)} ms`,
  );

  // What the kernel now holds: names, mtu, mac, master, addresses.
  const eth0 = (await inNs(a, ['ip', '-o', 'link', 'show', 'dev', 'eth0'])).stdout;
  // The UP flag, not the operational state: the kernel updates that asynchronously.
  assert.match(eth0, new RegExp(`<[A-Z_,-]*\\bUP\\b[A-Z_,-]*> mtu ${MTU} .*link/ether 02:42:0a:00:00:02`));
  const hostEnd = await hostLink(net.sandbox.name('va'));
  assert.match(hostEnd, new RegExp(`<[A-Z_,-]*\\bUP\\b[A-Z_,-]*> mtu ${MTU} .*master ${net.bridge} `));
  assert.match(await hostLink(net.bridge), new RegExp(`mtu ${MTU} .*link/ether 02:42:0a:00:00:01`));
  const addresses = (await inNs(a, ['ip', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
  assert.match(addresses, new RegExp(`inet ${net.v4(2).replaceAll('.', '\\.')}/24 brd ${net.v4(255)}`));
  assert.match(addresses, new RegExp(`inet6 ${net.v6(2)}/64 scope global nodad`));
  const lo = (await inNs(a, ['ip', '-o', 'link', 'show', 'dev', 'lo'])).stdout;
  assert.match(lo, /LOOPBACK,UP/);

  await assertPing(a, net.v4(3));
  await assertPing(b, net.v4(2));
  await assertPing(a, net.v4(1));
  await assertPing(a, net.v6(3));
  await assertPing(b, net.v6(2));
  await assertPing(a, net.v6(1));
  await assertPing(a, '127.0.0.1');

  // The second bridge address is off-link: only a default route reaches it.
  await assertPing(b, net.other);
  const unrouted = await ping(a, net.other);
  assert.notEqual(unrouted.code, 0, 'a namespace without a default route reached an off-link address');
  await net.netlink.run([
    { op: 'enter', path: a },
    { op: 'route', dst: 'default', gateway: net.v4(1), dev: 'eth0' },
  ]);
  await assertPing(a, net.other);
  assert.match(
    (await inNs(a, ['ip', 'route', 'show', 'default'])).stdout,
    new RegExp(`default via ${net.v4(1)} dev eth0`),
  );
  // Existing routes and addresses are fine; missing ones to delete too.
  await net.netlink.run([
    { op: 'enter', path: a },
    { op: 'route', dst: 'default', gateway: net.v4(1), dev: 'eth0' },
    { op: 'addr', dev: 'eth0', cidr: `${net.v4(2)}/24` },
    { op: 'addr-del', dev: 'eth0', cidr: `${net.v6(2)}/64` },
    { op: 'addr-del', dev: 'eth0', cidr: `${net.v6(2)}/64` },
    { op: 'link-delete', dev: 'nothere0' },
  ]);
  assert.doesNotMatch((await inNs(a, ['ip', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout, /inet6 fd/);
});

test(
  'errors name the failed operation; the rest of the batch is skipped; the next batch runs on the host',
  { skip },
  async (t) => {
    const net = await setup(t);
    await net.netlink.run(networkOps(net));
    const { path: a } = await attach(net, 'a', 2, true);
    const hostName = net.sandbox.name('va');
    const spare = net.sandbox.name('sp');
    net.sandbox.trackLink(spare);

    const failing: NetOp[] = [
      { op: 'link-delete', dev: 'nothere0' },
      { op: 'veth', hostName, peerName: 'eth1', netns: a, mtu: MTU },
      { op: 'bridge', name: spare, mtu: MTU },
    ];
    await assert.rejects(net.netlink.run(failing), (err: unknown) => {
      assert.ok(err instanceof NetlinkError, String(err));
      assert.equal(err.index, 2);
      assert.deepEqual(err.op, failing[1]);
      assert.equal(err.detail, `veth ${hostName} eth1 ${a} ${MTU}: File exists`);
      return true;
    });
    assert.equal(await hostLink(spare), '', 'an operation after the failed one ran');

    // A failure inside a namespace: the next batch is back in the host namespace.
    await assert.rejects(
      net.netlink.run([
        { op: 'enter', path: a },
        { op: 'up', dev: 'eth9' },
      ]),
      /up eth9: No such device/,
    );
    await net.netlink.run([{ op: 'bridge', name: spare, mtu: MTU }]);
    assert.match(await hostLink(spare), new RegExp(spare));
    assert.equal((await inNs(a, ['ip', '-o', 'link', 'show', 'dev', spare])).code, 1);

    // The kernel's own explanation comes along; a veth is not a bridge.
    await assert.rejects(
      net.netlink.run([{ op: 'mtu', dev: spare, mtu: 20 }]),
      /mtu \S+ 20: Invalid argument: mtu less than device minimum/,
    );
    await assert.rejects(
      net.netlink.run([{ op: 'bridge', name: hostName, mtu: MTU }]),
      /exists and is not a bridge \(veth\): File exists/,
    );

    // Rename (down first) to a name with a dot, whose sysctl key needs slashes.
    const dotted = net.sandbox.name('b.1');
    net.sandbox.trackLink(dotted);
    await net.netlink.run([
      { op: 'down', dev: spare },
      { op: 'rename', dev: spare, newName: dotted },
      { op: 'mtu', dev: dotted, mtu: 1300 },
      { op: 'sysctl', key: ['net', 'ipv4', 'conf', dotted, 'route_localnet'], value: '1' },
    ]);
    assert.equal((await readFile(`/proc/sys/net/ipv4/conf/${dotted}/route_localnet`, 'utf8')).trim(), '1');
    assert.match(await hostLink(dotted), /mtu 1300 /);
    await net.netlink.run([
      { op: 'link-delete', dev: dotted },
      { op: 'link-delete', dev: dotted },
    ]);
    assert.equal(await hostLink(dotted), '');
  },
);

test('raw protocol: one answer per batch, unknown operations, and serving goes on', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const bridge = sandbox.name('br');
  sandbox.trackLink(bridge);
  const input = [
    `bridge ${bridge} 1500\nbridge ${bridge} 1500 02:42:0a:00:00:01\nveth ${bridge} eth0 /proc/self/ns/net 1500\n`,
    'frobnicate now\n',
    `up ${bridge}\n`,
    `link-delete ${bridge}\n`,
  ]
    .map((batch) => `${batch}\n`)
    .join('');
  const result = spawnSync(BINARY, [], { input, timeout: 30_000 });
  assert.equal(result.status, 0, result.stderr.toString());
  assert.deepEqual(result.stdout.toString().split('\n'), [
    `error 3 veth ${bridge} eth0 /proc/self/ns/net 1500: File exists`,
    'error 1 unknown operation frobnicate',
    'ok',
    'ok',
    '',
  ]);
  assert.equal(await hostLink(bridge), '');
});

test('a deleted namespace is gone, with its devices; deleting again is fine', { skip }, async (t) => {
  const net = await setup(t);
  await net.netlink.run(networkOps(net));
  const { path: a } = await attach(net, 'a', 2, true);
  const hostName = net.sandbox.name('va');
  assert.notEqual(await hostLink(hostName), '');
  await assert.rejects(net.netlink.run([{ op: 'netns-create', path: a }]), /File exists/);

  await net.netlink.run([{ op: 'netns-delete', path: a }]);
  assert.equal(existsSync(a), false);
  assert.equal(
    (await listMounts()).some((m) => m.mountPoint === a),
    false,
  );
  // Nothing else holds the namespace (berth-netlink keeps no fd or socket of it), so the kernel
  // destroys it and the veth pair with it; that happens asynchronously.
  let gone = false;
  for (let attempt = 0; attempt < 200 && !gone; attempt++) {
    gone = (await hostLink(hostName)) === '';
    if (!gone) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(gone, `${hostName} outlived its namespace`);
  await net.netlink.run([{ op: 'netns-delete', path: a }]);
  await assert.rejects(net.netlink.run([{ op: 'enter', path: a }]), /No such file or directory/);
});

/** The network namespaces (inode numbers) a process holds open by fd, other than its own. */
async function heldNamespaces(pid: number): Promise<string[]> {
  const own = await readlink(`/proc/${pid}/ns/net`);
  const held: string[] = [];
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    if (target.startsWith('net:[') && target !== own) held.push(target.slice(5, -1));
  }
  return held;
}

test(
  'netns-prepare makes the namespace the next netns-create hands out; one at most',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const child = spawn(BINARY, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    if (child.pid !== undefined) sandbox.trackProcess(child.pid);
    const pid = child.pid ?? 0;
    child.stdout.setEncoding('utf8');
    let output = '';
    child.stdout.on('data', (chunk: string) => (output += chunk));
    /** Sends one batch and waits (at most 10 s) for its answer. */
    const ask = async (batch: string): Promise<string> => {
      const answered = output.split('\n').length;
      child.stdin.write(`${batch}\n\n`);
      for (let i = 0; i < 1000 && output.split('\n').length === answered; i++)
        await new Promise((resolve) => setTimeout(resolve, 10));
      return output.split('\n')[answered - 1] ?? '';
    };
    const first = join(sandbox.root, 'ns-first');
    const second = join(sandbox.root, 'ns-second');
    sandbox.trackMount(first);
    sandbox.trackMount(second);

    assert.deepEqual(await heldNamespaces(pid), []);
    assert.equal(await ask('netns-prepare'), 'ok');
    const spare = await heldNamespaces(pid);
    assert.equal(spare.length, 1, 'one prepared namespace held by fd');
    assert.equal(await ask('netns-prepare'), 'ok');
    assert.deepEqual(await heldNamespaces(pid), spare, 'a second netns-prepare keeps the first one');

    assert.equal(await ask(`netns-create ${first}`), 'ok');
    assert.equal(String(statSync(first).ino), spare[0], 'the prepared namespace is mounted');
    assert.deepEqual(await heldNamespaces(pid), [], 'and no longer held');
    assert.match((await inNs(first, ['ip', '-o', 'link', 'show', 'lo'])).stdout, /[<,]UP[,>]/);

    // Without a prepared one, netns-create makes a new namespace as before.
    assert.equal(await ask(`netns-create ${second}`), 'ok');
    assert.notEqual(String(statSync(second).ino), spare[0]);
    assert.match((await inNs(second, ['ip', '-o', 'link', 'show', 'lo'])).stdout, /[<,]UP[,>]/);

    assert.equal(await ask(`netns-delete ${first}\nnetns-delete ${second}\nnetns-prepare`), 'ok');
    assert.equal(existsSync(first) || existsSync(second), false);
    child.stdin.end();
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
  },
);
