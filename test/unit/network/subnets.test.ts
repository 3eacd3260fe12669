import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalIp,
  cidrContains,
  cidrCovers,
  cidrFirst,
  cidrLast,
  cidrOverlaps,
  cidrSize,
  formatCidr,
  formatIp,
  isCanonical,
  maskCidr,
  parseCidr,
  parseIp,
} from '../../../src/network/subnets.js';
import type { Cidr, IpAddress } from '../../../src/network/subnets.js';

const cidr = (text: string): Cidr => {
  const parsed = parseCidr(text);
  assert.ok(parsed, `${text} parses`);
  return parsed;
};

const ip = (text: string): IpAddress => {
  const parsed = parseIp(text);
  assert.ok(parsed, `${text} parses`);
  return parsed;
};

test('IPv4 addresses parse strictly, like Go netip', () => {
  assert.deepEqual(parseIp('172.18.0.1'), { family: 4, value: 0xac120001n });
  for (const bad of ['1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.-1', '', '1..2.3', ' 1.2.3.4'])
    assert.equal(parseIp(bad), undefined, bad);
});

test('IPv6 addresses parse with compression and a dotted tail, and print as RFC 5952', () => {
  const cases: [string, string][] = [
    ['fd00:1::', 'fd00:1::'],
    ['FD00:0001:0000:0000:0000:0000:0000:0002', 'fd00:1::2'],
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
  ];
  for (const [input, output] of cases) assert.equal(canonicalIp(input), output, input);
  for (const bad of [
    '1::2::3',
    '12345::',
    'fe80::1%eth0',
    ':1:2',
    '1:2:3:4:5:6:7:8:9',
    'g::1',
    '1:2:3:4:5:6:7::8',
  ])
    assert.equal(parseIp(bad), undefined, bad);
});

test('CIDR arithmetic: bounds, size, canonical form, containment and overlap', () => {
  const net = cidr('172.18.5.7/16');
  assert.equal(isCanonical(net), false);
  assert.equal(formatCidr(maskCidr(net)), '172.18.0.0/16');
  assert.equal(formatIp({ family: 4, value: cidrFirst(net) }), '172.18.0.0');
  assert.equal(formatIp({ family: 4, value: cidrLast(net) }), '172.18.255.255');
  assert.equal(cidrSize(cidr('10.0.0.0/30')), 4n);
  assert.equal(cidrSize(cidr('fd00::/64')), 1n << 64n);
  assert.equal(cidrContains(net, ip('172.18.200.1')), true);
  assert.equal(cidrContains(net, ip('172.19.0.1')), false);
  assert.equal(cidrContains(cidr('fd00::/64'), ip('172.18.0.1')), false);
  assert.equal(cidrOverlaps(cidr('10.0.0.0/8'), cidr('10.20.0.0/16')), true);
  assert.equal(cidrOverlaps(cidr('10.0.0.0/16'), cidr('10.1.0.0/16')), false);
  assert.equal(cidrCovers(cidr('10.0.0.0/8'), cidr('10.20.0.0/16')), true);
  assert.equal(cidrCovers(cidr('10.20.0.0/16'), cidr('10.0.0.0/8')), false);
  for (const bad of ['10.0.0.0', '10.0.0.0/33', 'fd00::/129', '10.0.0.0/08', 'x/8', '10.0.0.0/'])
    assert.equal(parseCidr(bad), undefined, bad);
});
