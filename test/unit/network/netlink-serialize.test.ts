/** The berth-netlink line protocol as the client writes and reads it (docs/netlink.md). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import {
  MAX_BATCH_OPS,
  NetlinkError,
  parseAnswer,
  serializeBatch,
  serializeOp,
  type NetOp,
} from '../../../src/network/netlink.js';

const invalid = (fn: () => unknown, message: RegExp): void =>
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof BerthError, `not a BerthError: ${String(err)}`);
    assert.equal(err.kind, 'invalid-argument');
    assert.match(err.message, message);
    return true;
  });

test('every operation serializes to its line', () => {
  const cases: Array<[NetOp, string]> = [
    [{ op: 'netns-create', path: '/run/berth/netns/abc' }, 'netns-create /run/berth/netns/abc'],
    [{ op: 'netns-delete', path: '/run/berth/netns/abc' }, 'netns-delete /run/berth/netns/abc'],
    [{ op: 'netns-prepare' }, 'netns-prepare'],
    [{ op: 'enter', path: '/run/berth/netns/abc' }, 'enter /run/berth/netns/abc'],
    [{ op: 'bridge', name: 'berth0', mtu: 1500 }, 'bridge berth0 1500'],
    [
      { op: 'bridge', name: 'berth0', mtu: 9000, mac: '02:42:0a:00:00:01' },
      'bridge berth0 9000 02:42:0a:00:00:01',
    ],
    [
      { op: 'veth', hostName: 'veth1a2b', peerName: 'eth0', netns: '/n/x', mtu: 1500 },
      'veth veth1a2b eth0 /n/x 1500',
    ],
    [
      {
        op: 'veth',
        hostName: 'veth1a2b',
        peerName: 'eth1',
        netns: '/n/x',
        mtu: 1400,
        peerMac: '02:42:AC:11:00:02',
      },
      'veth veth1a2b eth1 /n/x 1400 02:42:AC:11:00:02',
    ],
    [{ op: 'master', dev: 'veth1a2b', bridge: 'berth0' }, 'master veth1a2b berth0'],
    [{ op: 'up', dev: 'eth0' }, 'up eth0'],
    [{ op: 'down', dev: 'eth0' }, 'down eth0'],
    [{ op: 'link-delete', dev: 'veth1a2b' }, 'link-delete veth1a2b'],
    [{ op: 'mtu', dev: 'eth0', mtu: 65536 }, 'mtu eth0 65536'],
    [{ op: 'rename', dev: 'eth0', newName: 'eth.5' }, 'rename eth0 eth.5'],
    [{ op: 'addr', dev: 'eth0', cidr: '10.1.2.3/24' }, 'addr eth0 10.1.2.3/24'],
    [{ op: 'addr', dev: 'eth0', cidr: 'fd00:1::2/64' }, 'addr eth0 fd00:1::2/64'],
    [{ op: 'addr-del', dev: 'eth0', cidr: '10.1.2.3/32' }, 'addr-del eth0 10.1.2.3/32'],
    [{ op: 'route', dst: 'default', gateway: '10.1.2.1', dev: 'eth0' }, 'route default 10.1.2.1 eth0'],
    [{ op: 'route', dst: 'default', gateway: 'fd00:1::1', dev: 'eth0' }, 'route default fd00:1::1 eth0'],
    [{ op: 'route', dst: '10.9.0.0/16', dev: 'eth0' }, 'route 10.9.0.0/16 - eth0'],
    [{ op: 'route', dst: '::/0', dev: 'eth0' }, 'route ::/0 - eth0'],
    [
      { op: 'sysctl', key: ['net', 'ipv4', 'conf', 'br.0', 'route_localnet'], value: '1' },
      'sysctl net/ipv4/conf/br.0/route_localnet 1',
    ],
  ];
  for (const [op, line] of cases) assert.equal(serializeOp(op), line);
});

test('a batch is its lines, each ended by a newline, then an empty line', () => {
  assert.equal(
    serializeBatch([
      { op: 'up', dev: 'a' },
      { op: 'down', dev: 'b' },
    ]),
    'up a\ndown b\n\n',
  );
});

test('values that the line protocol cannot carry are refused', () => {
  invalid(() => serializeOp({ op: 'up', dev: '' }), /up: dev must be a non-empty string/);
  invalid(() => serializeOp({ op: 'up', dev: 'a b' }), /up: dev must be .* without whitespace, got "a b"/);
  invalid(() => serializeOp({ op: 'up', dev: 'a\nup b' }), /without whitespace/);
  invalid(() => serializeOp({ op: 'up', dev: 'a\u0000' }), /without whitespace/);
  invalid(() => serializeOp({ op: 'enter', path: '/a\tb' }), /enter: path/);
  invalid(
    () => serializeOp({ op: 'sysctl', key: ['net', 'ipv4', 'ip_forward'], value: '1 2' }),
    /sysctl: value/,
  );
  invalid(
    () => serializeOp({ op: 'sysctl', key: ['net', 'ipv4', 'ip_forward'], value: '' }),
    /sysctl: value/,
  );
});

test('interface names, paths, mtus and macs are checked', () => {
  invalid(
    () => serializeOp({ op: 'up', dev: 'a23456789012345x' }),
    /dev "a23456789012345x" is not a valid interface name/,
  );
  assert.equal(serializeOp({ op: 'up', dev: 'a23456789012345' }), 'up a23456789012345');
  invalid(() => serializeOp({ op: 'master', dev: 'eth0', bridge: 'a/b' }), /bridge "a\/b" is not a valid/);
  invalid(() => serializeOp({ op: 'rename', dev: 'eth0', newName: 'eth0:1' }), /newName/);
  invalid(() => serializeOp({ op: 'up', dev: '..' }), /not a valid interface name/);
  invalid(
    () => serializeOp({ op: 'netns-create', path: 'relative/ns' }),
    /path "relative\/ns" is not an absolute path/,
  );
  invalid(
    () => serializeOp({ op: 'veth', hostName: 'v', peerName: 'eth0', netns: 'ns', mtu: 1500 }),
    /veth: netns "ns" is not an absolute path/,
  );
  for (const bad of [0, -1, 1.5, 65537, Number.NaN])
    invalid(
      () => serializeOp({ op: 'mtu', dev: 'eth0', mtu: bad }),
      /mtu: mtu .* is not an integer between 1 and 65536/,
    );
  invalid(
    () => serializeOp({ op: 'bridge', name: 'b', mtu: 1500, mac: '02:42:0a:00:00' }),
    /mac "02:42:0a:00:00" is not a mac address/,
  );
  invalid(
    () =>
      serializeOp({
        op: 'veth',
        hostName: 'v',
        peerName: 'e',
        netns: '/n',
        mtu: 1500,
        peerMac: 'zz:42:0a:00:00:01',
      }),
    /peerMac/,
  );
});

test('addresses and routes are checked', () => {
  for (const bad of ['10.1.2.3', '10.1.2.3/33', 'fd00::1/129', '10.1.2/24', 'x/8', '10.1.2.3/024', '/24'])
    invalid(
      () => serializeOp({ op: 'addr', dev: 'eth0', cidr: bad }),
      /addr: cidr .* is not an address\/prefix/,
    );
  invalid(() => serializeOp({ op: 'route', dst: 'default', dev: 'eth0' }), /default route needs a gateway/);
  invalid(
    () => serializeOp({ op: 'route', dst: 'default', gateway: 'gw', dev: 'eth0' }),
    /gateway "gw" is not an IP address/,
  );
  invalid(
    () => serializeOp({ op: 'route', dst: '10.0.0.0/8', gateway: 'fd00::1', dev: 'eth0' }),
    /gateway fd00::1 is not in the address family of 10.0.0.0\/8/,
  );
});

test('sysctl keys are parts joined by slashes, never leaving /proc/sys', () => {
  invalid(() => serializeOp({ op: 'sysctl', key: [], value: '1' }), /key is empty/);
  invalid(() => serializeOp({ op: 'sysctl', key: ['net', '..', 'x'], value: '1' }), /key part "\.\."/);
  invalid(() => serializeOp({ op: 'sysctl', key: ['net/ipv4', 'ip_forward'], value: '1' }), /contain '\/'/);
  invalid(
    () => serializeOp({ op: 'sysctl', key: ['net', ''], value: '1' }),
    /sysctl: key must be a non-empty/,
  );
});

test('batches are bounded like berth-netlink bounds them', () => {
  invalid(() => serializeBatch([]), /at least one operation/);
  const many = Array.from({ length: MAX_BATCH_OPS + 1 }, (): NetOp => ({ op: 'up', dev: 'eth0' }));
  invalid(() => serializeBatch(many), /at most 256 operations, got 257/);
  assert.doesNotThrow(() => serializeBatch(many.slice(1)));
  const longPath = '/' + 'p'.repeat(9000);
  invalid(() => serializeOp({ op: 'enter', path: longPath }), /longer than 8192 bytes/);
  const big = Array.from({ length: 10 }, (): NetOp => ({ op: 'enter', path: '/' + 'p'.repeat(8000) }));
  invalid(() => serializeBatch(big), /larger than 65536 bytes/);
});

test('answers: ok, or the failed operation with its message', () => {
  const ops: NetOp[] = [
    { op: 'up', dev: 'a' },
    { op: 'veth', hostName: 'v', peerName: 'eth0', netns: '/n', mtu: 1500 },
  ];
  assert.equal(parseAnswer('ok', ops), undefined);
  const error = parseAnswer('error 2 veth v eth0 /n 1500: File exists', ops);
  assert.ok(error instanceof NetlinkError);
  assert.equal(error.index, 2);
  assert.deepEqual(error.op, ops[1]);
  assert.equal(error.detail, 'veth v eth0 /n 1500: File exists');
  assert.match(error.message, /veth v eth0 \/n 1500: File exists/);
  assert.throws(() => parseAnswer('okay', ops), /berth-netlink said something unexpected: "okay"/);
  assert.throws(() => parseAnswer('error x y', ops), /unexpected/);
});
