import { test } from 'node:test';
import assert from 'node:assert/strict';
import { throwsMessage } from './assert-message.js';
import { parseSecurityOpts, type SecurityOptions } from '../../../src/engine/security-opt.js';
import { loadSeccompProfile } from '../../../src/engine/seccomp-profile.js';
import { containerCapabilities, processCapabilities } from '../../../src/engine/capabilities.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from '../../../src/linux/capabilities.js';

// --security-opt as Docker's daemon parses it (daemon_unix.go parseSecurityOpt and its tests).
const optCases: Array<[string[], Partial<SecurityOptions> | RegExp]> = [
  [[], { noNewPrivileges: false, labels: [], unconfinedSystemPaths: false }],
  [['no-new-privileges'], { noNewPrivileges: true }],
  [['no-new-privileges:true'], { noNewPrivileges: true }],
  [['no-new-privileges=false'], { noNewPrivileges: false }],
  [['no-new-privileges=1', 'no-new-privileges=0'], { noNewPrivileges: false }],
  [['seccomp=unconfined'], { seccomp: 'unconfined' }],
  [['seccomp:{"defaultAction":"SCMP_ACT_ALLOW"}'], { seccomp: '{"defaultAction":"SCMP_ACT_ALLOW"}' }],
  [['apparmor=docker-default'], { apparmor: 'docker-default' }],
  [['apparmor:test_profile'], { apparmor: 'test_profile' }],
  [['label=user:USER', 'label=disable', 'disable'], { labels: ['user:USER', 'disable', 'disable'] }],
  [['writable-cgroups=true'], { writableCgroups: true }],
  [['systempaths=unconfined'], { unconfinedSystemPaths: true }],
  [['label'], /^invalid --security-opt 1: "label"$/],
  [['unknown'], /^invalid --security-opt 1: "unknown"$/],
  [['unknown=something'], /^invalid --security-opt 2: "unknown=something"$/],
  [['no-new-privileges=maybe'], /^invalid --security-opt 2: "no-new-privileges=maybe"$/],
  [['systempaths=confined'], /^invalid --security-opt 2: "systempaths=confined"$/],
];

for (const [opts, expected] of optCases) {
  test(`--security-opt ${JSON.stringify(opts)}`, () => {
    if (expected instanceof RegExp) {
      throwsMessage(() => parseSecurityOpts(opts), expected);
      return;
    }
    const parsed = parseSecurityOpts(opts);
    for (const [key, value] of Object.entries(expected)) {
      assert.deepEqual(parsed[key as keyof SecurityOptions], value, key);
    }
  });
}

test('the daemon default no-new-privileges can be turned off per container', () => {
  assert.equal(parseSecurityOpts([], { noNewPrivileges: true }).noNewPrivileges, true);
  assert.equal(
    parseSecurityOpts(['no-new-privileges=false'], { noNewPrivileges: true }).noNewPrivileges,
    false,
  );
});

// --cap-add / --cap-drop (moby caps.TweakCapabilities).
const capCases: Array<[string, string[], string[], boolean, string[] | RegExp]> = [
  ['defaults', [], [], false, DEFAULT_CAPABILITIES],
  [
    'add without prefix, any case',
    ['net_admin', 'Sys_Ptrace'],
    [],
    false,
    [...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE'],
  ],
  [
    'drop with prefix',
    [],
    ['CAP_CHOWN', 'net_raw'],
    false,
    DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_CHOWN' && c !== 'CAP_NET_RAW'),
  ],
  ['add a default again', ['CHOWN'], [], false, DEFAULT_CAPABILITIES],
  ['drop ALL, add some', ['NET_BIND_SERVICE', 'kill'], ['all'], false, ['CAP_NET_BIND_SERVICE', 'CAP_KILL']],
  [
    'add ALL, drop some',
    ['ALL'],
    ['SYS_ADMIN'],
    false,
    ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_ADMIN'),
  ],
  ['privileged ignores drops', [], ['ALL'], true, ALL_CAPABILITIES],
  ['unknown add', ['fly'], [], false, /^unknown capability: "CAP_FLY"$/],
  ['unknown drop', [], ['CAP_FLY'], false, /^unknown capability: "CAP_FLY"$/],
];

for (const [name, add, drop, privileged, expected] of capCases) {
  test(`capabilities: ${name}`, () => {
    if (expected instanceof RegExp)
      throwsMessage(() => containerCapabilities(add, drop, privileged), expected);
    else assert.deepEqual(containerCapabilities(add, drop, privileged), expected);
  });
}

test('capabilities: privileged and ALL give what the engine can grant', () => {
  const available = ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE');
  assert.deepEqual(containerCapabilities(null, null, true, available), available);
  assert.ok(!containerCapabilities(['ALL'], [], false, available).includes('CAP_SYS_RESOURCE'));
});

test('capabilities: a user other than root gets only the bounding set, as after execve', () => {
  assert.deepEqual(processCapabilities(['CAP_KILL'], 0), {
    bounding: ['CAP_KILL'],
    effective: ['CAP_KILL'],
    permitted: ['CAP_KILL'],
  });
  assert.deepEqual(processCapabilities(['CAP_KILL'], 1000), { bounding: ['CAP_KILL'] });
});

const context = { capabilities: ['CAP_CHOWN', 'CAP_SYS_PTRACE'], kernelRelease: '6.18.0-berth' };

test('seccomp: a Docker-format profile is filtered for the arch, capabilities and kernel', () => {
  const profile = {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { name: 'ptrace', action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_PTRACE'] } },
      { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['chown'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_CHOWN'] } },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
      { names: ['sync_file_range2'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['ppc64le'] } },
      { names: ['new_call'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '7.1' } },
      { names: ['old_call'], action: 'SCMP_ACT_ERRNO', excludes: { minKernel: '5.0' } },
      {
        names: ['personality'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }],
        comment: 'kept',
      },
    ],
  };
  assert.deepEqual(loadSeccompProfile(JSON.stringify(profile), context), {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['ptrace'], action: 'SCMP_ACT_ALLOW' },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW' },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
    ],
  });
});

test('seccomp: an OCI profile passes through; an empty one means none', () => {
  const oci = { defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], syscalls: [] };
  assert.deepEqual(loadSeccompProfile(JSON.stringify(oci), context), oci);
  assert.equal(loadSeccompProfile('{}', context), undefined);
});

const badProfiles: Array<[string, RegExp]> = [
  ['/etc/profile.json', /^Decoding seccomp profile failed: /],
  ['[1]', /^Decoding seccomp profile failed: the profile must be a JSON object$/],
  ['{"defaultAction":"SCMP_ACT_ERRNO","syscalls":{}}', /syscalls must be an array/],
  [
    '{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}',
    /both 'architectures' and 'archMap' are specified/,
  ],
  [
    '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}',
    /use either 'name' or 'names'/,
  ],
  [
    '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":"read","action":"SCMP_ACT_ALLOW"}]}',
    /syscalls\[0\]\.names must be an array of strings/,
  ],
  [
    '{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"four"}}]}',
    /invalid kernel version "four"/,
  ],
];

for (const [text, expected] of badProfiles) {
  test(`seccomp: refuses ${text.slice(0, 60)}`, () => {
    throwsMessage(() => loadSeccompProfile(text, context), expected);
  });
}
