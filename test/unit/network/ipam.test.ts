import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import type { ErrorKind } from '../../../src/common/errors.js';
import {
  Ipam,
  bipPool,
  parseAddressPools,
  parseIpv4Routes,
  parseIpv6Routes,
  planNetworkPools,
  ulaAddressPool,
} from '../../../src/network/ipam.js';
import type { IpamFile, IpamOptions, IpamPoolConfig, PlannedPool } from '../../../src/network/ipam.js';

const NETWORK = { name: 'net1', id: 'abc123' };

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-ipam-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Expects a BerthError of `kind` whose message is exactly `message` (or matches it). */
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

const noRoutes = async (): Promise<string[]> => [];

async function userNetwork(
  t: TestContext,
  configs: IpamPoolConfig[],
  enableIPv6 = false,
): Promise<{ ipam: Ipam; options: IpamOptions }> {
  const pools = await planNetworkPools({ configs, enableIPv6 }, { usedSubnets: [], routes: noRoutes });
  const options = { path: join(await tempDir(t), 'ipam.json'), network: NETWORK };
  return { ipam: await Ipam.create(options, pools), options };
}

const next = async (ipam: Ipam, owner: string): Promise<string | undefined> =>
  (await ipam.allocate({ owner })).ipv4?.address;

// ---- choosing subnets ---------------------------------------------------------------------

test('a new network gets the first default pool that no network and no host route uses', async () => {
  const plan = (usedSubnets: string[], routes: string[]): Promise<PlannedPool[]> =>
    planNetworkPools({}, { usedSubnets, routes: async () => routes });
  assert.deepEqual(await plan([], []), [
    { config: { Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }, userSubnet: false },
  ]);
  assert.equal((await plan(['172.17.0.0/16'], ['172.18.0.0/24']))[0]?.config.Subnet, '172.19.0.0/16');
  // A host route over all of 172.16.0.0/12 (a VPN, say) sends networks to 192.168.0.0/16 in /20s.
  const pools = await plan(['192.168.0.0/20'], ['172.16.0.0/12', '10.0.0.0/8']);
  assert.deepEqual(pools[0]?.config, { Subnet: '192.168.16.0/20', Gateway: '192.168.16.1' });
});

test('default-address-pools: custom pools, exhaustion and bad entries', async () => {
  const defaultPools = [{ base: '10.10.0.0/23', size: 24 }];
  const plan = (usedSubnets: string[]): Promise<PlannedPool[]> =>
    planNetworkPools({}, { usedSubnets, defaultPools, routes: noRoutes });
  assert.equal((await plan(['10.10.0.0/24']))[0]?.config.Subnet, '10.10.1.0/24');
  await rejectsWith(
    plan(['10.10.0.0/24', '10.10.1.0/24']),
    'unavailable',
    'could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network',
  );
  assert.throws(
    () => parseAddressPools([{ base: '10.0.0.0/33', size: 24 }]),
    /invalid base pool "10.0.0.0\/33"/,
  );
  assert.throws(
    () => parseAddressPools([{ base: '10.0.0.0/16', size: 8 }]),
    /^BerthError: invalid pools size: 8$/,
  );
});

test('a pool of 2^56 candidates skips a blocking route in one step', async () => {
  const pools = await planNetworkPools(
    { enableIPv4: false, enableIPv6: true },
    { usedSubnets: [], defaultPools: [{ base: 'fd00::/8', size: 64 }], routes: async () => ['fd00::/9'] },
  );
  assert.deepEqual(pools[0]?.config, { Subnet: 'fd80::/64', Gateway: 'fd80::1' });
});

test('an IPv6 network gets a subnet from a unique-local pool derived from a seed', async () => {
  const pool = ulaAddressPool('machine-1');
  assert.deepEqual(ulaAddressPool('machine-1'), pool);
  assert.notDeepEqual(ulaAddressPool('machine-2'), pool);
  assert.match(pool.base, /^fd[0-9a-f]{2}:[0-9a-f]{4}:[0-9a-f]{4}::\/48$/);
  const planned = await planNetworkPools(
    { enableIPv6: true },
    { usedSubnets: [], defaultPools: [{ base: '10.99.0.0/16', size: 24 }, pool], routes: noRoutes },
  );
  assert.equal(planned.length, 2);
  assert.equal(planned[1]?.config.Subnet, pool.base.replace('/48', '/64'));
});

test('host routes are read from /proc/net/route (host byte order) and /proc/net/ipv6_route', () => {
  const v4 = [
    'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
    'eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
    'eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
    'docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0',
  ].join('\n');
  assert.deepEqual(parseIpv4Routes(v4, true), ['192.168.0.0/24', '172.17.0.0/16']);
  assert.deepEqual(parseIpv4Routes('header\nx\tAC110000\t0\t1\t0\t0\t0\tFFFF0000\t0\t0\t0', false), [
    '172.17.0.0/16',
  ]);
  const zero = '0'.repeat(32);
  const v6 = [
    `fd001234000000000000000000000000 40 ${zero} 00 ${zero} 00000100 00000001 00000000 00000001     eth0`,
    `${zero} 00 ${zero} 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0`,
  ].join('\n');
  assert.deepEqual(parseIpv6Routes(v6), ['fd00:1234::/64']);
});

// ---- validating user configuration ---------------------------------------------------------

test('user subnets are validated with Docker messages, all problems at once', async () => {
  const plan = (configs: IpamPoolConfig[]): Promise<PlannedPool[]> =>
    planNetworkPools({ configs }, { usedSubnets: [], routes: noRoutes });
  await rejectsWith(
    plan([{ Subnet: '10.1.0.0/33' }]),
    'invalid-argument',
    /invalid subnet 10.1.0.0\/33: invalid CIDR block notation/,
  );
  await rejectsWith(
    plan([{ Subnet: '10.1.2.3/16', IPRange: '10.2.0.0/24', Gateway: '10.3.0.1' }]),
    'invalid-argument',
    [
      'invalid network config:',
      'invalid subnet 10.1.2.3/16: it should be 10.1.0.0/16',
      "invalid ip-range 10.2.0.0/24: parent subnet 10.1.2.3/16 doesn't contain ip-range",
      "invalid gateway 10.3.0.1: parent subnet 10.1.2.3/16 doesn't contain this address",
    ].join('\n'),
  );
  await rejectsWith(
    plan([{ Subnet: '10.1.0.0/24', IPRange: '10.1.0.0/16' }]),
    'invalid-argument',
    /invalid ip-range 10.1.0.0\/16: CIDR block is bigger than its parent subnet 10.1.0.0\/24/,
  );
  await rejectsWith(
    plan([{ Subnet: '10.1.0.0/24', Gateway: 'fd00::1', AuxiliaryAddresses: { host: 'nope' } }]),
    'invalid-argument',
    /invalid gateway fd00::1: parent subnet is an IPv4 block\ninvalid auxiliary address host: invalid address/,
  );
  await rejectsWith(
    plan([{ Subnet: '', Gateway: '10.0.0.1' }]),
    'invalid-argument',
    'every ip-range or gateway must have a corresponding subnet',
  );
  await rejectsWith(
    plan([{ Subnet: '10.1.0.0/24', Gateway: '10.1.0.255' }]),
    'forbidden',
    'failed to allocate gateway (10.1.0.255): Address already in use',
  );
});

test('a user subnet that overlaps another network or another subnet of the request is refused', async () => {
  const overlap = 'Pool overlaps with other one on this address space';
  await rejectsWith(
    planNetworkPools(
      { configs: [{ Subnet: '10.5.0.0/24' }] },
      { usedSubnets: ['10.0.0.0/8'], routes: noRoutes },
    ),
    'forbidden',
    overlap,
  );
  await rejectsWith(
    planNetworkPools(
      { configs: [{ Subnet: '10.5.0.0/16' }, { Subnet: '10.5.1.0/24' }] },
      { usedSubnets: [], routes: noRoutes },
    ),
    'forbidden',
    overlap,
  );
});

test('the gateway defaults to the first free address of the ip-range; a given one is kept', async () => {
  const pools = await planNetworkPools(
    {
      configs: [
        { Subnet: '10.7.0.0/16', IPRange: '10.7.4.0/24' },
        { Subnet: '10.8.0.0/24', Gateway: '10.8.0.254', AuxiliaryAddresses: { router: '10.8.0.1' } },
      ],
    },
    { usedSubnets: [], routes: noRoutes },
  );
  assert.deepEqual(
    pools.map((pool) => pool.config),
    [
      { Subnet: '10.7.0.0/16', IPRange: '10.7.4.0/24', Gateway: '10.7.4.0' },
      { Subnet: '10.8.0.0/24', Gateway: '10.8.0.254', AuxiliaryAddresses: { router: '10.8.0.1' } },
    ],
  );
  assert.ok(pools.every((pool) => pool.userSubnet));
});

test('bip and fixed-cidr give the default bridge its pool', () => {
  assert.deepEqual(bipPool('172.17.0.1/16'), {
    config: { Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' },
    userSubnet: false,
  });
  assert.deepEqual(bipPool('10.50.0.1/16', '10.50.1.0/24').config.IPRange, '10.50.1.0/24');
  assert.throws(() => bipPool('10.50.0.0/16'), /invalid bip 10.50.0.0\/16/);
  assert.throws(() => bipPool('10.50.0.1/16', '10.60.0.0/24'), /invalid fixed-cidr 10.60.0.0\/24/);
});

// ---- allocating ------------------------------------------------------------------------------

test('a /30 has one address besides network, gateway and broadcast; exhaustion names the network', async (t) => {
  const { ipam } = await userNetwork(t, [{ Subnet: '10.0.0.0/30' }]);
  assert.deepEqual(await ipam.allocate({ owner: 'a' }), {
    ipv4: { address: '10.0.0.2', prefixLen: 30, gateway: '10.0.0.1' },
  });
  await rejectsWith(
    ipam.allocate({ owner: 'b' }),
    'unavailable',
    "no available IPv4 addresses on this network's address pools: net1 (abc123)",
  );
  await ipam.release('a');
  assert.equal(await next(ipam, 'b'), '10.0.0.2');
});

test('allocation continues after the last address, does not reuse a released one at once, and wraps', async (t) => {
  const { ipam } = await userNetwork(t, [{ Subnet: '10.0.0.0/29' }]); // .1 gateway, .2-.6 usable
  assert.equal(await next(ipam, 'a'), '10.0.0.2');
  assert.equal(await next(ipam, 'b'), '10.0.0.3');
  await ipam.release('a');
  assert.equal(await next(ipam, 'c'), '10.0.0.4');
  assert.equal(await next(ipam, 'd'), '10.0.0.5');
  assert.equal(await next(ipam, 'e'), '10.0.0.6');
  assert.equal(await next(ipam, 'f'), '10.0.0.2'); // wrapped past broadcast, network and gateway
  await rejectsWith(ipam.allocate({ owner: 'g' }), 'unavailable', /no available IPv4 addresses/);
});

test('static and dynamic addresses never collide; static addresses follow Docker rules', async (t) => {
  const { ipam } = await userNetwork(t, [
    { Subnet: '10.0.1.0/24', AuxiliaryAddresses: { printer: '10.0.1.3' } },
  ]);
  assert.equal((await ipam.allocate({ owner: 's', ipv4: '10.0.1.4' })).ipv4?.address, '10.0.1.4');
  assert.equal(await next(ipam, 'a'), '10.0.1.2');
  assert.equal(await next(ipam, 'b'), '10.0.1.5'); // .3 is auxiliary, .4 static
  for (const taken of ['10.0.1.2', '10.0.1.1', '10.0.1.3', '10.0.1.0', '10.0.1.255'])
    await rejectsWith(ipam.allocate({ owner: 'x', ipv4: taken }), 'forbidden', 'Address already in use');
  await rejectsWith(
    ipam.allocate({ owner: 'x', ipv4: '10.9.9.9' }),
    'invalid-argument',
    'no configured subnet or ip-range contain the IP address 10.9.9.9',
  );
  await rejectsWith(
    ipam.allocate({ owner: 'x', ipv4: 'abc' }),
    'invalid-argument',
    'invalid IPv4 address: abc',
  );
  await rejectsWith(
    ipam.allocate({ owner: 'x', ipv4: '0.0.0.0' }),
    'invalid-argument',
    'invalid IPv4 address: 0.0.0.0',
  );
  await rejectsWith(
    ipam.allocate({ owner: 'x', ipv6: 'fd00::5' }),
    'invalid-argument',
    'user specified IP address is supported only when connecting to networks with user configured subnets',
  );
  // The same owner again gets what it holds; asking it for another static address is a conflict.
  assert.equal(await next(ipam, 'a'), '10.0.1.2');
  await rejectsWith(ipam.allocate({ owner: 'a', ipv4: '10.0.1.9' }), 'conflict', /already holds 10.0.1.2/);
  assert.equal(ipam.allocations().length, 3);
});

test('a static address needs a user-configured subnet', async (t) => {
  const pools = await planNetworkPools({}, { usedSubnets: [], routes: noRoutes });
  const ipam = await Ipam.create({ path: join(await tempDir(t), 'ipam.json') }, pools);
  await rejectsWith(
    ipam.allocate({ owner: 'x', ipv4: '172.17.0.9' }),
    'invalid-argument',
    'user specified IP address is supported only when connecting to networks with user configured subnets',
  );
  assert.equal(await next(ipam, 'y'), '172.17.0.2');
});

test('dynamic addresses come from the ip-range; static ones may lie anywhere in the subnet', async (t) => {
  const { ipam } = await userNetwork(t, [
    { Subnet: '10.1.0.0/16', IPRange: '10.1.4.0/30', Gateway: '10.1.0.1' },
  ]);
  const got = [];
  for (const owner of ['a', 'b', 'c', 'd']) got.push(await next(ipam, owner));
  assert.deepEqual(got, ['10.1.4.0', '10.1.4.1', '10.1.4.2', '10.1.4.3']);
  await rejectsWith(ipam.allocate({ owner: 'e' }), 'unavailable', /no available IPv4 addresses/);
  assert.equal((await ipam.allocate({ owner: 'e', ipv4: '10.1.9.9' })).ipv4?.address, '10.1.9.9');
});

test('dual stack: one IPv4 and one IPv6 address per endpoint; IPv6 subnets are ignored without --ipv6', async (t) => {
  const { ipam } = await userNetwork(t, [{ Subnet: '10.2.0.0/24' }, { Subnet: 'fd00:2::/64' }], true);
  assert.deepEqual(await ipam.allocate({ owner: 'a' }), {
    ipv4: { address: '10.2.0.2', prefixLen: 24, gateway: '10.2.0.1' },
    ipv6: { address: 'fd00:2::2', prefixLen: 64, gateway: 'fd00:2::1' },
  });
  assert.deepEqual(await ipam.allocate({ owner: 'b', ipv6: 'FD00:2::0:99' }), {
    ipv4: { address: '10.2.0.3', prefixLen: 24, gateway: '10.2.0.1' },
    ipv6: { address: 'fd00:2::99', prefixLen: 64, gateway: 'fd00:2::1' },
  });
  await rejectsWith(ipam.allocate({ owner: 'c', ipv6: 'fd00:2::' }), 'forbidden', 'Address already in use');
  await rejectsWith(
    ipam.allocate({ owner: 'c', ipv6: '10.2.0.9' }),
    'invalid-argument',
    'invalid IPv6 address: 10.2.0.9',
  );

  const v4only = await planNetworkPools(
    { configs: [{ Subnet: '10.3.0.0/24' }, { Subnet: 'fd00:3::/64' }] },
    { usedSubnets: [], routes: noRoutes },
  );
  assert.deepEqual(
    v4only.map((pool) => pool.config.Subnet),
    ['10.3.0.0/24'],
  );
});

// ---- persistence -----------------------------------------------------------------------------

test('allocations and the position survive a reopen; the file is written before the address is returned', async (t) => {
  const { ipam, options } = await userNetwork(t, [{ Subnet: '10.4.0.0/24' }]);
  await next(ipam, 'a');
  await next(ipam, 'b');
  await ipam.release('a');
  const file = JSON.parse(await readFile(options.path, 'utf8')) as IpamFile;
  assert.deepEqual(file.pools[0]?.allocations, { '10.4.0.3': 'b' });
  assert.equal(file.pools[0]?.cursor, '10.4.0.3');

  const reopened = await Ipam.open(options);
  assert.deepEqual(reopened.allocations(), [{ address: '10.4.0.3', owner: 'b' }]);
  assert.deepEqual(reopened.pools(), ipam.pools());
  assert.equal(await next(reopened, 'c'), '10.4.0.4'); // not .2: the released address waits its turn

  // What allocate() returns is already on disk when it returns.
  const seen: string[] = [];
  const watching = await Ipam.open({
    ...options,
    persist: async (path, state) => {
      await writeFile(path, JSON.stringify(state));
      seen.push(Object.keys(state.pools[0]?.allocations ?? {}).join(','));
    },
  });
  const address = await next(watching, 'd');
  assert.equal(
    seen
      .at(-1)
      ?.split(',')
      .includes(address ?? ''),
    true,
  );
});

test('a failed write leaves the allocation undone', async (t) => {
  const { options } = await userNetwork(t, [{ Subnet: '10.6.0.0/24' }]);
  let fail = true;
  const ipam = await Ipam.open({
    ...options,
    persist: async () => {
      if (fail) throw new Error('disk full');
    },
  });
  await assert.rejects(ipam.allocate({ owner: 'a' }), /disk full/);
  assert.deepEqual(ipam.allocations(), []);
  fail = false;
  assert.equal(await next(ipam, 'b'), '10.6.0.2');
});

/** A persist hook whose writes wait until `finish()` (or fail with `fail()`). */
function heldWrites(): {
  persist: NonNullable<IpamOptions['persist']>;
  pending: () => number;
  finish: () => void;
  fail: () => void;
} {
  const waiting: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  return {
    persist: () => new Promise<void>((resolve, reject) => waiting.push({ resolve, reject })),
    pending: () => waiting.length,
    finish: () => waiting.shift()?.resolve(),
    fail: () => waiting.shift()?.reject(new Error('disk full')),
  };
}

const settledYet = async (promise: Promise<unknown>): Promise<boolean> => {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
};

test('allocateAhead answers before its write; later operations wait for that write', async (t) => {
  const { options } = await userNetwork(t, [{ Subnet: '10.7.0.0/24' }]);
  const writes = heldWrites();
  const ipam = await Ipam.open({ ...options, persist: writes.persist });
  const { result, stored } = await ipam.allocateAhead({ owner: 'a' });
  assert.equal(result.ipv4?.address, '10.7.0.2');
  assert.equal(writes.pending(), 1);
  assert.equal(await settledYet(stored), false);
  // Memory takes the allocation only with the write, and the next operation queues behind it.
  assert.deepEqual(ipam.allocations(), []);
  const second = ipam.allocateAhead({ owner: 'b' });
  const idle = ipam.idle();
  assert.equal(await settledYet(second), false);
  writes.finish();
  await stored;
  assert.deepEqual(ipam.allocations(), [{ address: '10.7.0.2', owner: 'a' }]);
  assert.equal((await second).result.ipv4?.address, '10.7.0.3');
  assert.equal(await settledYet(idle), false, 'idle waits for the second write too');
  writes.finish();
  await idle;
  assert.equal(ipam.allocations().length, 2);
});

test('allocateAhead: a failed write rejects `stored` and leaves the addresses free', async (t) => {
  const { options } = await userNetwork(t, [{ Subnet: '10.8.0.0/24' }]);
  const writes = heldWrites();
  const ipam = await Ipam.open({ ...options, persist: writes.persist });
  const { result, stored } = await ipam.allocateAhead({ owner: 'a' });
  assert.equal(result.ipv4?.address, '10.8.0.2');
  writes.fail();
  await assert.rejects(stored, /disk full/);
  assert.deepEqual(ipam.allocations(), []);
  const again = ipam.allocateAhead({ owner: 'b' });
  assert.equal((await again).result.ipv4?.address, '10.8.0.2');
  writes.finish();
  await (
    await again
  ).stored;
  // A request the pools refuse rejects at once, with nothing written.
  await rejectsWith(
    ipam.allocateAhead({ owner: 'c', ipv4: '10.8.0.2' }),
    'forbidden',
    'Address already in use',
  );
  assert.equal(writes.pending(), 0);
});

test('concurrent allocations on one network are serialised and distinct', async (t) => {
  const { ipam, options } = await userNetwork(t, [{ Subnet: '10.9.0.0/24' }]);
  const owners = Array.from({ length: 30 }, (_, i) => `o${i}`);
  const addresses = await Promise.all(owners.map((owner) => next(ipam, owner)));
  assert.equal(new Set(addresses).size, owners.length);
  const reopened = await Ipam.open(options);
  assert.equal(reopened.allocations().length, owners.length);
});

test('retain frees the addresses of owners that no longer exist', async (t) => {
  const { ipam } = await userNetwork(t, [{ Subnet: '10.11.0.0/24' }]);
  await next(ipam, 'keep');
  await next(ipam, 'gone');
  assert.deepEqual(await ipam.retain(['keep']), [{ address: '10.11.0.3', owner: 'gone' }]);
  assert.deepEqual(ipam.allocations(), [{ address: '10.11.0.2', owner: 'keep' }]);
});

test('open: a missing file is not found (or created from pools); a corrupt one is an internal error', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'ipam.json');
  await rejectsWith(Ipam.open({ path }), 'not-found', `IPAM state ${path} does not exist`);
  const pools = await planNetworkPools(
    { configs: [{ Subnet: '10.12.0.0/24' }] },
    { usedSubnets: [], routes: noRoutes },
  );
  const created = await Ipam.open({ path }, pools);
  assert.deepEqual(created.pools(), pools);
  await writeFile(path, '{"version":1,"pools":[{"config":{"Subnet":"10.12.0.0/24","Gateway":"10.13.0.1"}}]}');
  await rejectsWith(Ipam.open({ path }), 'internal', /is corrupt: bad gateway 10.13.0.1/);
  await writeFile(path, '{"version":1,');
  await rejectsWith(Ipam.open({ path }), 'internal', /is corrupt/);
});
