import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import { Firewall, renderReplaceScript, renderTable } from '../../../src/network/firewall.js';
import type { FirewallState } from '../../../src/network/firewall.js';

const STATE: FirewallState = {
  networks: [
    { bridge: 'br-a', subnets: ['10.88.0.0/16', 'fd00:88::/64'] },
    { bridge: 'br-b', subnets: ['10.89.0.0/16'], icc: false, masquerade: false },
    { bridge: 'br-i', subnets: ['10.90.0.0/16'], internal: true },
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
    {
      proto: 'tcp',
      hostIp: '::',
      hostPort: 8080,
      containerIp: 'fd00:88::2',
      containerPort: 80,
      bridge: 'br-a',
    },
    { proto: 'tcp', hostPort: 9090, containerIp: '10.90.0.2', containerPort: 80, bridge: 'br-i' },
  ],
};

/** The rules of one chain, in order, without the chain's header. */
function chain(script: string, name: string): string[] {
  const match = new RegExp(`\\tchain ${name} \\{\\n([\\s\\S]*?)\\n\\t\\}`).exec(script);
  assert.ok(match, `chain ${name} exists`);
  return (match[1] ?? '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('type '));
}

test('forward: internal drops first, published ports, replies, isolation, icc, outbound, inbound drop', () => {
  assert.deepEqual(chain(renderTable(STATE), 'forward'), [
    'iifname "br-i" oifname != "br-i" drop',
    'oifname "br-i" iifname != "br-i" drop',
    'oifname "br-a" ip daddr 10.88.0.2 tcp dport 80 ct status dnat accept',
    'oifname "br-b" ip daddr 10.89.0.2 udp dport 53 ct status dnat accept',
    'oifname "br-a" ip6 daddr fd00:88::2 tcp dport 80 ct status dnat accept',
    'oifname "br-a" ct state established,related accept',
    'oifname "br-b" ct state established,related accept',
    'oifname "br-i" ct state established,related accept',
    'iifname "br-a" oifname { "br-b", "br-i" } drop',
    'iifname "br-b" oifname { "br-a", "br-i" } drop',
    'iifname "br-i" oifname { "br-a", "br-b" } drop',
    'iifname "br-a" oifname "br-a" accept',
    'iifname "br-b" oifname "br-b" drop',
    'iifname "br-i" oifname "br-i" accept',
    'iifname "br-a" accept',
    'iifname "br-b" accept',
    'oifname "br-a" drop',
    'oifname "br-b" drop',
  ]);
});

test('nat: DNAT of published ports for local destinations, masquerade, hairpin and loopback', () => {
  const script = renderTable(STATE);
  assert.deepEqual(chain(script, 'published'), [
    'meta nfproto ipv4 tcp dport 8080 dnat ip to 10.88.0.2:80',
    'ip daddr 127.0.0.1 udp dport 5353 dnat ip to 10.89.0.2:53',
    'meta nfproto ipv6 tcp dport 8080 dnat ip6 to [fd00:88::2]:80',
  ]); // the internal network's port is not published
  assert.deepEqual(chain(script, 'prerouting'), ['fib daddr type local jump published']);
  assert.deepEqual(chain(script, 'output'), ['fib daddr type local jump published']);
  assert.match(script, /chain output \{\n\t\ttype nat hook output priority -100; policy accept;/);
  assert.deepEqual(chain(script, 'postrouting'), [
    'ip saddr 10.88.0.0/16 oifname != "br-a" masquerade',
    'ip6 saddr fd00:88::/64 oifname != "br-a" masquerade',
    'ip saddr 10.88.0.0/16 oifname "br-a" ct status dnat masquerade',
    'ip6 saddr fd00:88::/64 oifname "br-a" ct status dnat masquerade',
    'oifname "br-a" ip saddr 127.0.0.0/8 masquerade',
    'ip saddr 10.89.0.0/16 oifname "br-b" ct status dnat masquerade', // masquerade off: hairpin only
    'oifname "br-b" ip saddr 127.0.0.0/8 masquerade',
  ]);
});

test('the replace script creates, deletes and redefines only berth table in one transaction', () => {
  const script = renderReplaceScript({ networks: [], portMaps: [] }, 'berth_t1');
  const lines = script.split('\n');
  assert.deepEqual(lines.slice(0, 3), [
    'table inet berth_t1 {}',
    'delete table inet berth_t1',
    'table inet berth_t1 {',
  ]);
  assert.doesNotMatch(script, /flush|ruleset/);
});

test('bad input is refused before nft runs, naming the field', () => {
  const base = STATE.networks[0] ?? { bridge: 'x', subnets: [] };
  const cases: [FirewallState, RegExp][] = [
    [{ networks: [{ ...base, bridge: 'br"; flush ruleset' }], portMaps: [] }, /invalid bridge name/],
    [
      { networks: [{ ...base, subnets: ['10.0.0.0/40'] }], portMaps: [] },
      /invalid subnet 10.0.0.0\/40 of bridge br-a/,
    ],
    [{ networks: [base, base], portMaps: [] }, /bridge br-a is listed twice/],
    [
      {
        networks: [base],
        portMaps: [
          { proto: 'tcp', hostPort: 0, containerIp: '10.88.0.2', containerPort: 80, bridge: 'br-a' },
        ],
      },
      /invalid host port 0/,
    ],
    [
      {
        networks: [base],
        portMaps: [
          { proto: 'tcp', hostPort: 80, containerIp: '10.88.0.2', containerPort: 80, bridge: 'nope' },
        ],
      },
      /unknown bridge nope/,
    ],
    [
      {
        networks: [base],
        portMaps: [
          {
            proto: 'tcp',
            hostIp: '0.0.0.0',
            hostPort: 80,
            containerIp: 'fd00:88::2',
            containerPort: 80,
            bridge: 'br-a',
          },
        ],
      },
      /differ in family/,
    ],
  ];
  for (const [state, message] of cases)
    assert.throws(
      () => renderTable(state),
      (err: unknown) =>
        err instanceof BerthError && err.kind === 'invalid-argument' && message.test(err.message),
    );
  assert.throws(() => new Firewall({ table: 'bad name' }), /invalid nftables table name/);
});

/** A stand-in for nft (and nsenter) that records its arguments and stdin, or fails. */
async function fakeNft(
  t: TestContext,
  fail: boolean,
): Promise<{ binary: string; calls: () => Promise<{ args: string[]; stdin: string }[]> }> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-fake-nft-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const binary = join(dir, 'fake-nft');
  await writeFile(
    binary,
    [
      '#!/usr/bin/env node',
      "const fs = require('fs');",
      "const stdin = fs.readFileSync(0, 'utf8');",
      `const dir = ${JSON.stringify(dir)};`,
      "const n = fs.readdirSync(dir).filter((name) => name.startsWith('call-')).length;",
      "fs.writeFileSync(dir + '/call-' + String(n).padStart(3, '0') + '.json', JSON.stringify({ args: process.argv.slice(2), stdin }));",
      fail
        ? "process.stderr.write('Error: Could not process rule: No such file or directory\\n'); process.exit(1);"
        : '',
    ].join('\n'),
  );
  await chmod(binary, 0o755);
  const calls = async (): Promise<{ args: string[]; stdin: string }[]> => {
    const names = (await readdir(dir)).filter((name) => name.startsWith('call-')).sort();
    return Promise.all(names.map(async (name) => JSON.parse(await readFile(join(dir, name), 'utf8'))));
  };
  return { binary, calls };
}

test('apply feeds the script to nft -f - (through nsenter for another namespace); remove deletes the table', async (t) => {
  const fake = await fakeNft(t, false);
  const local = new Firewall({ table: 't1', nftBinary: fake.binary });
  await local.apply(STATE);
  const inNetns = new Firewall({
    table: 't1',
    nftBinary: 'nft',
    nsenterBinary: fake.binary,
    netnsPath: '/run/netns/x',
  });
  await inNetns.remove();
  const calls = await fake.calls();
  assert.equal(calls.length, 2);
  assert.deepEqual(calls[0]?.args, ['-f', '-']);
  assert.equal(calls[0]?.stdin, renderReplaceScript(STATE, 't1'));
  assert.deepEqual(calls[1]?.args, ['--net=/run/netns/x', '--', 'nft', '-f', '-']);
  assert.equal(calls[1]?.stdin, 'table inet t1 {}\ndelete table inet t1\n');
});

test('an nft failure is reported with its message; a missing nft is unavailable', async (t) => {
  const fake = await fakeNft(t, true);
  await assert.rejects(new Firewall({ table: 't2', nftBinary: fake.binary }).apply(STATE), (err: unknown) => {
    assert.ok(err instanceof BerthError);
    assert.equal(err.kind, 'internal');
    assert.match(err.message, /nft failed to update table inet t2 \(exit 1\): Error: Could not process rule/);
    return true;
  });
  await assert.rejects(
    new Firewall({ nftBinary: join(tmpdir(), 'no-such-nft-binary') }).remove(),
    (err: unknown) => err instanceof BerthError && err.kind === 'unavailable',
  );
});
