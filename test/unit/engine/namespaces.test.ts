import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsMessage } from './assert-message.js';
import {
  checkNetworkModeConflicts,
  containerNamespaces,
  type NamespaceOptions,
} from '../../../src/engine/namespaces.js';
import { containerSysctls } from '../../../src/engine/sysctls.js';
import type { HostConfig } from '../../../src/engine/docker-types.js';
import type { NamespaceType } from '../../../src/oci/runtime-spec.js';

const options = (overrides: Partial<NamespaceOptions> = {}): NamespaceOptions => ({
  cgroupVersion: 2,
  namespacePath: (kind, ref) => `/proc/${ref}/ns/${kind === 'network' ? 'net' : kind}`,
  networkDisabled: false,
  ...overrides,
});

const list = (hostConfig: HostConfig, overrides: Partial<NamespaceOptions> = {}): string[] =>
  containerNamespaces(hostConfig, options(overrides)).map((ns) =>
    ns.path ? `${ns.type}=${ns.path}` : ns.type,
  );

// Docker's WithNamespaces for each mode.
const cases: Array<[string, HostConfig, Partial<NamespaceOptions>, string[]]> = [
  ['defaults on cgroup v2', {}, {}, ['mount', 'network', 'uts', 'pid', 'ipc', 'cgroup']],
  [
    'defaults on cgroup v1: host cgroup namespace',
    {},
    { cgroupVersion: 1 },
    ['mount', 'network', 'uts', 'pid', 'ipc'],
  ],
  [
    '--cgroupns private on v1',
    { CgroupnsMode: 'private' },
    { cgroupVersion: 1 },
    ['mount', 'network', 'uts', 'pid', 'ipc', 'cgroup'],
  ],
  ['--cgroupns host on v2', { CgroupnsMode: 'host' }, {}, ['mount', 'network', 'uts', 'pid', 'ipc']],
  [
    'all host',
    {
      NetworkMode: 'host',
      UTSMode: 'host',
      PidMode: 'host',
      IpcMode: 'host',
      CgroupnsMode: 'host',
      UsernsMode: 'host',
    },
    {},
    ['mount'],
  ],
  [
    'shared with another container',
    { NetworkMode: 'container:web', PidMode: 'container:web', IpcMode: 'container:db' },
    {},
    ['mount', 'network=/proc/web/ns/net', 'uts', 'pid=/proc/web/ns/pid', 'ipc=/proc/db/ns/ipc', 'cgroup'],
  ],
  [
    '--network none: a namespace of its own',
    { NetworkMode: 'none' },
    {},
    ['mount', 'network', 'uts', 'pid', 'ipc', 'cgroup'],
  ],
  [
    'a network namespace the engine prepared',
    { NetworkMode: 'bridge' },
    { networkNamespacePath: '/run/berth/netns/abc' },
    ['mount', 'network=/run/berth/netns/abc', 'uts', 'pid', 'ipc', 'cgroup'],
  ],
  [
    'NetworkDisabled wins over host',
    { NetworkMode: 'host' },
    { networkDisabled: true },
    ['mount', 'network', 'uts', 'pid', 'ipc', 'cgroup'],
  ],
  [
    '--ipc none, shareable and private are namespaces of their own',
    { IpcMode: 'none' },
    {},
    ['mount', 'network', 'uts', 'pid', 'ipc', 'cgroup'],
  ],
];

for (const [name, hostConfig, overrides, expected] of cases) {
  test(`namespaces: ${name}`, () => {
    assert.deepEqual(list(hostConfig, overrides), expected);
  });
}

const invalid: Array<[HostConfig, RegExp]> = [
  [{ IpcMode: 'bogus' }, /^invalid IPC mode: bogus$/],
  [{ IpcMode: 'container:' }, /^invalid IPC mode: container:$/],
  [{ PidMode: 'private' }, /^invalid PID mode: private$/],
  [{ PidMode: 'container:' }, /^invalid PID mode: container:$/],
  [{ UTSMode: 'private' }, /^invalid UTS mode: private$/],
  [{ CgroupnsMode: 'shared' }, /^invalid cgroup namespace mode: shared$/],
  [{ UsernsMode: 'private' }, /^invalid userns mode: private$/],
  [{ NetworkMode: 'container:' }, /^Invalid network mode: invalid container format container:<name\|id>$/],
];

for (const [hostConfig, expected] of invalid) {
  test(`namespaces refused: ${JSON.stringify(hostConfig)}`, () => {
    throwsMessage(() => list(hostConfig), expected);
  });
}

test('namespaces: container modes need the engine resolver', () => {
  throwsMessage(
    () => containerNamespaces({ PidMode: 'container:x' }, { cgroupVersion: 2, networkDisabled: false }),
    /namespacePath is needed/,
  );
});

test('create-time conflicts of the network and UTS modes (runconfig validateNetMode)', () => {
  const conflicts: Array<[Parameters<typeof checkNetworkModeConflicts>[0], HostConfig, RegExp]> = [
    [
      { Hostname: 'x' },
      { NetworkMode: 'container:a' },
      /^conflicting options: hostname and the network mode$/,
    ],
    [{}, { NetworkMode: 'container:a', Dns: ['1.1.1.1'] }, /^conflicting options: dns and the network mode$/],
    [
      {},
      { NetworkMode: 'container:a', ExtraHosts: ['a:1.2.3.4'] },
      /custom host-to-IP mapping and the network mode/,
    ],
    [
      {},
      { NetworkMode: 'container:a', PublishAllPorts: true },
      /port publishing and the container type network mode/,
    ],
    [
      { ExposedPorts: { '80/tcp': {} } },
      { NetworkMode: 'container:a' },
      /port exposing and the container type network mode/,
    ],
    [{}, { NetworkMode: 'container:a', Links: ['db'] }, /container type network can't be used with links/],
    [{ MacAddress: '02:42:ac:11:00:02' }, { NetworkMode: 'host' }, /mac-address and the network mode/],
    [{ Hostname: 'x' }, { UTSMode: 'host' }, /^conflicting options: hostname and the UTS mode$/],
    [{}, { NetworkMode: 'host', Links: ['db'] }, /host type networking can't be used with links/],
  ];
  for (const [config, hostConfig, expected] of conflicts)
    throwsMessage(() => checkNetworkModeConflicts(config, hostConfig), expected);
  checkNetworkModeConflicts({ Hostname: 'x' }, { NetworkMode: 'host' });
  checkNetworkModeConflicts({}, { NetworkMode: 'container:a', UTSMode: 'host' });
});

const all = new Set<NamespaceType>(['mount', 'network', 'uts', 'pid', 'ipc']);

test('sysctls: Docker defaults for a network of the container own, user values win', () => {
  assert.deepEqual(containerSysctls({}, { privateNetwork: true, namespaces: all }), {
    'net.ipv4.ping_group_range': '0 2147483647',
    'net.ipv4.ip_unprivileged_port_start': '0',
  });
  assert.deepEqual(
    containerSysctls(
      {
        'net.ipv4.ip_unprivileged_port_start': '1024',
        'kernel.shmmax': '1000',
        'fs.mqueue.msg_max': '20',
        'kernel.domainname': 'd',
      },
      { privateNetwork: true, namespaces: all },
    ),
    {
      'net.ipv4.ping_group_range': '0 2147483647',
      'net.ipv4.ip_unprivileged_port_start': '1024',
      'kernel.shmmax': '1000',
      'fs.mqueue.msg_max': '20',
      'kernel.domainname': 'd',
    },
  );
  assert.deepEqual(containerSysctls(null, { privateNetwork: false, namespaces: all }), {});
});

test('sysctls: runc messages for sysctls of a namespace shared with the host', () => {
  const without = (type: NamespaceType): Set<NamespaceType> => new Set([...all].filter((t) => t !== type));
  const cases: Array<[string, Set<NamespaceType>, RegExp]> = [
    [
      'net.ipv4.ip_forward',
      without('network'),
      /^sysctl "net.ipv4.ip_forward" is not allowed in the hosts network namespace$/,
    ],
    ['kernel.msgmax', without('ipc'), /^sysctl "kernel.msgmax" is not allowed in the hosts ipc namespace$/],
    [
      'kernel.domainname',
      without('uts'),
      /^sysctl "kernel.domainname" is not in a separate kernel namespace$/,
    ],
    ['kernel.hostname', all, /conflicts with the OCI "hostname" field/],
    ['vm.swappiness', all, /^sysctl "vm.swappiness" is not in a separate kernel namespace$/],
  ];
  for (const [key, namespaces, expected] of cases)
    throwsMessage(() => containerSysctls({ [key]: '1' }, { privateNetwork: false, namespaces }), expected);
});
