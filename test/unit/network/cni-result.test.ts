// Results between versions, per-call parameter checks and the configuration each plugin receives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import { pluginConfig } from '../../../src/network/cni/client.js';
import {
  encodeResult,
  MalformedResult,
  parseResult,
  parseVersionInfo,
} from '../../../src/network/cni/result.js';
import { checkRuntimeConf, formatCniArgs } from '../../../src/network/cni/runtime-conf.js';
import type { CniNetworkList, CniResult } from '../../../src/network/cni/types.js';
import { compareVersions, hasCheck } from '../../../src/network/cni/version.js';

const v04 = {
  cniVersion: '0.4.0',
  interfaces: [
    { name: 'cni0', mac: '0a:58:0a:16:00:01' },
    { name: 'eth0', mac: '0a:58:0a:16:00:05', sandbox: '/run/netns/a' },
  ],
  ips: [
    { version: '4', address: '10.22.0.5/16', gateway: '10.22.0.1', interface: 1 },
    { version: '6', address: 'fd00:22::5/64', gateway: 'fd00:22::1', interface: 1 },
  ],
  routes: [{ dst: '0.0.0.0/0' }, { dst: '::/0', gw: 'fd00:22::1' }],
  dns: { nameservers: ['10.22.0.1'], search: ['example.internal'] },
};

const normalized: CniResult = {
  cniVersion: '0.4.0',
  interfaces: v04.interfaces,
  ips: [
    { address: '10.22.0.5/16', gateway: '10.22.0.1', interface: 1 },
    { address: 'fd00:22::5/64', gateway: 'fd00:22::1', interface: 1 },
  ],
  routes: v04.routes,
  dns: v04.dns,
};

test('a 0.4.0 result is held in the 1.0.0 shape and encoded back for either version', () => {
  const result = parseResult(v04);
  assert.deepEqual(result, normalized);
  assert.deepEqual(encodeResult(result, '0.4.0'), v04);
  const v10 = encodeResult(result, '1.0.0');
  assert.deepEqual(v10, { ...v04, cniVersion: '1.0.0', ips: normalized.ips });
  assert.deepEqual(parseResult(v10), { ...normalized, cniVersion: '1.0.0' });
});

test('empty parts are optional in a result and left out when encoding', () => {
  const result = parseResult({ cniVersion: '1.0.0', ips: [{ address: '10.1.0.2/24' }] });
  assert.deepEqual(result, {
    cniVersion: '1.0.0',
    interfaces: [],
    ips: [{ address: '10.1.0.2/24' }],
    routes: [],
    dns: {},
  });
  assert.deepEqual(encodeResult(result, '1.0.0'), { cniVersion: '1.0.0', ips: [{ address: '10.1.0.2/24' }] });
});

test('a malformed result is refused with the field named', () => {
  const cases: [unknown, RegExp][] = [
    ['text', /must be a JSON object/],
    [{ ips: [] }, /^cniVersion is missing$/],
    [
      { cniVersion: '0.2.0', ip4: { ip: '10.0.0.2/24' } },
      /^cniVersion "0.2.0" is not one this client reads$/,
    ],
    [{ cniVersion: '1.0.0', interfaces: [{ mac: 'x' }] }, /^interfaces\[0\]\.name is missing$/],
    [
      { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2' }] },
      /^ips\[0\]\.address "10.0.0.2" is not an address/,
    ],
    [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/33' }] }, /^ips\[0\]\.address "10.0.0.2\/33"/],
    [
      { cniVersion: '0.4.0', ips: [{ address: '10.0.0.2/24' }] },
      /^ips\[0\]\.version undefined does not match/,
    ],
    [{ cniVersion: '0.4.0', ips: [{ version: '6', address: '10.0.0.2/24' }] }, /^ips\[0\]\.version "6"/],
    [
      { cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24', gateway: 'fd00::1' }] },
      /gateway "fd00::1" is not an IPv4/,
    ],
    [{ cniVersion: '1.0.0', ips: [{ address: '10.0.0.2/24', interface: 0 }] }, /interface 0 is not an index/],
    [{ cniVersion: '1.0.0', routes: [{ gw: '10.0.0.1' }] }, /^routes\[0\]\.dst is missing$/],
    [
      { cniVersion: '1.0.0', dns: { nameservers: '10.0.0.1' } },
      /^dns\.nameservers must be a list of strings$/,
    ],
  ];
  for (const [value, message] of cases)
    assert.throws(
      () => parseResult(value),
      (err: unknown) => err instanceof MalformedResult && message.test(err.message),
    );
});

test('a VERSION answer needs cniVersion and supportedVersions', () => {
  assert.deepEqual(parseVersionInfo({ cniVersion: '1.0.0', supportedVersions: ['0.4.0', '1.0.0'] }), {
    cniVersion: '1.0.0',
    supportedVersions: ['0.4.0', '1.0.0'],
  });
  assert.throws(() => parseVersionInfo({ cniVersion: '1.0.0' }), /supportedVersions is missing/);
  assert.throws(() => parseVersionInfo({ supportedVersions: [] }), /cniVersion is missing/);
});

test('per-call parameters follow the spec rules', () => {
  const ok = { containerId: 'abc_1.2-x', netns: '/run/netns/a', ifName: 'eth0' };
  checkRuntimeConf(ok, true);
  checkRuntimeConf({ ...ok, netns: '' }, false);
  const bad: [object, boolean, RegExp][] = [
    [{ containerId: '' }, true, /^CNI container ID "" must start/],
    [{ containerId: '-a' }, true, /^CNI container ID "-a"/],
    [{ containerId: 'a/b' }, true, /^CNI container ID "a\/b"/],
    [{ ifName: '' }, true, /^CNI interface name ""/],
    [{ ifName: 'a-very-long-name0' }, true, /^CNI interface name "a-very-long-name0" must be 1 to 15/],
    [{ ifName: 'eth:0' }, true, /^CNI interface name "eth:0"/],
    [{ ifName: '..' }, true, /^CNI interface name "\.\."/],
    [{ netns: '' }, true, /^CNI network namespace "" must be an absolute path$/],
    [{ args: [['K8S_POD;NAME', 'x']] }, true, /^CNI argument "K8S_POD;NAME=x"/],
    [{ args: [['A', 'b;c']] }, true, /^CNI argument "A=b;c"/],
  ];
  for (const [change, needsNetns, message] of bad)
    assert.throws(
      () => checkRuntimeConf({ ...ok, ...change }, needsNetns),
      (err: unknown) =>
        err instanceof BerthError && err.kind === 'invalid-argument' && message.test(err.message),
    );
  assert.equal(
    formatCniArgs([
      ['IgnoreUnknown', '1'],
      ['K8S_POD_NAME', 'web-0'],
    ]),
    'IgnoreUnknown=1;K8S_POD_NAME=web-0',
  );
  assert.equal(formatCniArgs(undefined), '');
});

test('each plugin gets the list name and version, its own capabilities and prevResult in the list version', () => {
  const net: CniNetworkList = {
    cniVersion: '0.4.0',
    name: 'pods',
    plugins: [
      { type: 'bridge', name: 'ignored', cniVersion: '9.9.9' },
      { type: 'portmap', capabilities: { portMappings: true, bandwidth: false } },
    ],
  };
  const capabilityArgs = {
    portMappings: [{ hostPort: 80, containerPort: 8080, protocol: 'tcp' }],
    bandwidth: {},
  };
  const first = pluginConfig(net, net.plugins[0] ?? { type: '' }, undefined, capabilityArgs);
  assert.deepEqual(first, { type: 'bridge', name: 'pods', cniVersion: '0.4.0' });
  const second = pluginConfig(net, net.plugins[1] ?? { type: '' }, normalized, capabilityArgs);
  assert.deepEqual(second, {
    type: 'portmap',
    name: 'pods',
    cniVersion: '0.4.0',
    capabilities: { portMappings: true, bandwidth: false },
    runtimeConfig: { portMappings: capabilityArgs.portMappings },
    prevResult: v04,
  });
});

test('versions compare numerically and CHECK starts at 0.4.0', () => {
  assert.ok(compareVersions('0.10.0', '0.4.0') > 0);
  assert.ok(compareVersions('0.3.1', '0.4.0') < 0);
  assert.equal(compareVersions('1.0.0', '1.0.0'), 0);
  assert.equal(hasCheck('0.3.1'), false);
  assert.equal(hasCheck('0.4.0'), true);
  assert.equal(hasCheck('1.0.0'), true);
});
