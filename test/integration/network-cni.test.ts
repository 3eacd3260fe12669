/**
 * The CNI client with Debian's containernetworking-plugins on the real kernel. Every namespace is
 * the test's own; traffic only flows between them.
 *
 * The first test runs the plugins in the host's network namespace, as berthd will: bridge without
 * isGateway and ipMasq, because isGateway switches on net.ipv4.ip_forward for the whole host and
 * ipMasq writes host iptables rules. The second test runs the plugins inside a namespace that
 * stands in for the host (the client's `netns` option), so isGateway, ipMasq, portmap and firewall
 * can run with their forwarding switch and iptables rules kept away from the real host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BerthError } from '../../src/common/errors.js';
import { CniClient, CniPluginError, parseConfList } from '../../src/network/cni/index.js';
import type { CniNetworkList, CniResult, CniRuntimeConf } from '../../src/network/cni/index.js';
import { execOk, execProgram } from '../helpers/exec.js';
import { createSandbox, isRoot } from '../helpers/sandbox.js';
import type { Sandbox } from '../helpers/sandbox.js';
import { testSubnet } from '../helpers/test-subnets.js';

const PLUGIN_DIR = '/usr/lib/cni';
const skip = !isRoot()
  ? 'needs root'
  : !existsSync(join(PLUGIN_DIR, 'bridge'))
    ? 'containernetworking-plugins is not installed'
    : false;

async function addNetns(sandbox: Sandbox, suffix: string): Promise<string> {
  const name = sandbox.name(suffix);
  sandbox.trackNetns(name);
  await execOk('ip', ['netns', 'add', name]);
  return name;
}

const inNetns = (netns: string, program: string, args: string[]): ReturnType<typeof execProgram> =>
  execProgram('ip', ['netns', 'exec', netns, program, ...args], { timeoutMs: 30_000 });

/** The container's address (without prefix length) from an ADD result. */
function containerAddress(result: CniResult, netns: string): string {
  const ip = result.ips[0];
  assert.ok(ip !== undefined, 'the result has an address');
  const iface = result.interfaces[ip.interface ?? -1];
  assert.equal(iface?.name, 'eth0');
  assert.equal(iface?.sandbox, `/run/netns/${netns}`);
  return ip.address.split('/')[0] ?? '';
}

/** host-local keeps one file per allocated address, named after it, holding the container ID. */
async function allocated(dataDir: string, network: string): Promise<Map<string, string>> {
  const dir = join(dataDir, network);
  const files = (await readdir(dir).catch(() => [] as string[])).filter((name) => /^[0-9.]+$/.test(name));
  const owners = new Map<string, string>();
  for (const file of files) owners.set(file, (await readFile(join(dir, file), 'utf8')).split(/\s/)[0] ?? '');
  return owners;
}

test(
  'bridge, host-local and loopback attach two namespaces that then reach each other',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const bridge = sandbox.name('br');
    sandbox.trackLink(bridge);
    const nsA = await addNetns(sandbox, 'a');
    const nsB = await addNetns(sandbox, 'b');
    const subnet = await testSubnet(t);
    const dataDir = join(sandbox.root, 'ipam');
    const bridgePlugin = (ipamSubnet: string): Record<string, unknown> => ({
      type: 'bridge',
      bridge,
      isGateway: false,
      ipMasq: false,
      ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: ipamSubnet }]] },
    });
    const net = parseConfList(
      JSON.stringify({
        cniVersion: '1.0.0',
        name: `berth-${sandbox.id}`,
        plugins: [bridgePlugin(subnet), { type: 'loopback' }],
      }),
    );
    const client = new CniClient({ cacheDir: join(sandbox.root, 'cni-cache') });
    const rt = (netns: string, id: string): CniRuntimeConf => ({
      containerId: `${sandbox.id}-${id}`,
      netns: `/run/netns/${netns}`,
      ifName: 'eth0',
    });
    const rtA = rt(nsA, 'a');
    const rtB = rt(nsB, 'b');

    const info = await client.version('bridge');
    assert.ok(
      info.supportedVersions.includes('1.0.0'),
      `bridge speaks 1.0.0: ${info.supportedVersions.join(', ')}`,
    );
    assert.ok(info.supportedVersions.includes('0.4.0'), 'and 0.4.0');

    const resultA = await client.add(net, rtA);
    const ipA = containerAddress(resultA, nsA);
    // A Linux bridge whose address was never set takes the lowest MAC of its ports, so B's port may
    // change it, and bridge 1.1.1's CHECK then fails for A (whose result names the old MAC). Setting
    // the address, even to its current value, fixes it.
    const bridgeMac = resultA.interfaces.find((iface) => iface.name === bridge)?.mac;
    assert.ok(bridgeMac !== undefined, 'the result names the bridge and its MAC');
    await execOk('ip', ['link', 'set', bridge, 'address', bridgeMac]);
    const ipB = containerAddress(await client.add(net, rtB), nsB);
    assert.notEqual(ipA, ipB);
    assert.match(
      await execOk('ip', ['-n', nsA, '-o', '-4', 'addr', 'show', 'dev', 'eth0']),
      new RegExp(` ${ipA}/16 `),
    );
    assert.deepEqual(
      await allocated(dataDir, net.name),
      new Map([
        [ipA, rtA.containerId],
        [ipB, rtB.containerId],
      ]),
    );
    assert.equal((await client.cachedResult(net, rtA))?.ips[0]?.address, `${ipA}/16`);

    for (const [from, to] of [
      [nsA, ipB],
      [nsB, ipA],
    ] as const) {
      const ping = await inNetns(from, 'busybox', ['ping', '-c', '1', '-W', '5', to]);
      assert.equal(ping.code, 0, `${from} pings ${to}: ${ping.stdout}${ping.stderr}`);
    }

    await client.check(net, rtA);
    await client.check(net, rtB);
    // CHECK really asks the plugins: without its address, B is no longer as ADD left it.
    await execOk('ip', ['-n', nsB, 'addr', 'flush', 'dev', 'eth0']);
    await assert.rejects(client.check(net, rtB), (err: unknown) => {
      assert.ok(err instanceof CniPluginError, String(err));
      assert.match(
        err.message,
        new RegExp(`^CNI plugin "bridge" \\(network "${net.name}"\\) CHECK failed: .*${ipB}`),
      );
      return true;
    });

    await client.del(net, rtA);
    assert.notEqual((await execProgram('ip', ['-n', nsA, 'link', 'show', 'eth0'])).code, 0, 'eth0 is gone');
    assert.deepEqual([...(await allocated(dataDir, net.name)).keys()], [ipB], "A's address is free again");
    assert.equal(await client.cachedResult(net, rtA), undefined);
    await client.del(net, rtA);

    // DEL after the namespace is gone still releases the address.
    await execOk('ip', ['netns', 'delete', nsB]);
    await client.del(net, rtB);
    assert.deepEqual([...(await allocated(dataDir, net.name)).keys()], []);

    // A plugin's own error surfaces with its message.
    const nsC = await addNetns(sandbox, 'c');
    const rtC = rt(nsC, 'c');
    const broken = parseConfList(
      JSON.stringify({
        cniVersion: '1.0.0',
        name: `${net.name}-bad`,
        plugins: [bridgePlugin('10.0.0.0/33')],
      }),
    );
    await assert.rejects(client.add(broken, rtC), (err: unknown) => {
      assert.ok(err instanceof CniPluginError, String(err));
      assert.match(err.msg, /10\.0\.0\.0\/33/);
      assert.equal(err.message, `CNI plugin "bridge" (network "${broken.name}") ADD failed: ${err.msg}`);
      return true;
    });

    // A chain failing after bridge succeeded is undone: no interface, no address left behind.
    const failsLate = parseConfList(
      JSON.stringify({
        cniVersion: '1.0.0',
        name: `${net.name}-late`,
        plugins: [
          bridgePlugin(subnet),
          { type: 'tuning', sysctl: { 'net.ipv4.conf.eth0.no_such_setting': '1' } },
        ],
      }),
    );
    await assert.rejects(client.add(failsLate, rtC), (err: unknown) => {
      assert.ok(err instanceof CniPluginError, String(err));
      assert.match(err.message, /^CNI plugin "tuning" .* ADD failed: .*no_such_setting/);
      return true;
    });
    assert.notEqual(
      (await execProgram('ip', ['-n', nsC, 'link', 'show', 'eth0'])).code,
      0,
      'eth0 was removed',
    );
    assert.deepEqual([...(await allocated(dataDir, failsLate.name)).keys()], [], 'the address was released');

    const unknown = parseConfList(
      JSON.stringify({ cniVersion: '1.0.0', name: 'unknown', plugins: [{ type: 'no-such-plugin' }] }),
    );
    await assert.rejects(client.add(unknown, rtC), (err: unknown) => {
      assert.ok(err instanceof BerthError);
      assert.equal(err.kind, 'not-found');
      assert.equal(err.message, 'CNI plugin "no-such-plugin" not found in /usr/lib/cni, /opt/cni/bin');
      return true;
    });
  },
);

test(
  'portmap, firewall and ipMasq keep their rules in a namespace standing in for the host',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const bridge = sandbox.name('br');
    sandbox.trackLink(bridge);
    const hostNs = await addNetns(sandbox, 'h');
    const ctr = await addNetns(sandbox, 'c');
    await execOk('ip', ['-n', hostNs, 'link', 'set', 'lo', 'up']);
    const subnet = await testSubnet(t);
    const forwardingBefore = await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8');
    const net: CniNetworkList = parseConfList(
      JSON.stringify({
        cniVersion: '1.0.0',
        name: `berth-${sandbox.id}`,
        // Debian's portmap 1.1.1 fails CHECK for IPv4-only containers (it looks for its IPv4 rules
        // in the IPv6 table: containernetworking/plugins#819), so this network opts out of CHECK.
        disableCheck: true,
        plugins: [
          {
            type: 'bridge',
            bridge,
            isGateway: true,
            ipMasq: true,
            ipam: {
              type: 'host-local',
              dataDir: join(sandbox.root, 'ipam'),
              ranges: [[{ subnet }]],
              routes: [{ dst: '0.0.0.0/0' }],
            },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
          { type: 'firewall' },
          { type: 'loopback' },
        ],
      }),
    );
    const client = new CniClient({
      cacheDir: join(sandbox.root, 'cni-cache'),
      netns: `/run/netns/${hostNs}`,
    });
    const rt: CniRuntimeConf = {
      containerId: `${sandbox.id}-c`,
      netns: `/run/netns/${ctr}`,
      ifName: 'eth0',
      capabilityArgs: { portMappings: [{ hostPort: 18080, containerPort: 8080, protocol: 'tcp' }] },
    };

    const result = await client.add(net, rt);
    const ip = containerAddress(result, ctr);
    const gateway = result.ips[0]?.gateway;
    assert.ok(gateway !== undefined, 'host-local names the gateway');

    // The host side lives in the stand-in namespace, not in the host.
    await execOk('ip', ['-n', hostNs, 'link', 'show', bridge]);
    assert.notEqual((await execProgram('ip', ['link', 'show', bridge])).code, 0, 'no bridge on the host');
    assert.equal(
      (await execOk('ip', ['netns', 'exec', hostNs, 'cat', '/proc/sys/net/ipv4/ip_forward'])).trim(),
      '1',
    );
    assert.equal(await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8'), forwardingBefore);
    const rules = await execOk('ip', ['netns', 'exec', hostNs, 'iptables-save']);
    assert.match(rules, new RegExp(`--to-destination ${ip}:8080`), 'portmap DNAT rule');
    assert.match(rules, /-j MASQUERADE/, 'bridge ipMasq rule');
    assert.match(rules, new RegExp(`-A CNI-FORWARD -s ${ip}/32 -j ACCEPT`), 'firewall rule');
    assert.doesNotMatch(
      await execOk('iptables-save', []),
      new RegExp(ip.replaceAll('.', '\\.')),
      'no host rule',
    );

    // The published port reaches a server in the container.
    const www = join(sandbox.root, 'www');
    await mkdir(www);
    const token = `hello from ${sandbox.id}`;
    await writeFile(join(www, 'index.html'), token);
    const server = spawn('ip', ['netns', 'exec', ctr, 'busybox', 'httpd', '-f', '-p', '8080', '-h', www], {
      cwd: sandbox.root,
      stdio: 'ignore',
    });
    if (server.pid !== undefined) sandbox.trackProcess(server.pid);
    t.after(() => server.kill('SIGKILL'));
    let answer = '';
    for (let attempt = 0; attempt < 50 && !answer.includes(token); attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      const reply = await execProgram(
        'ip',
        ['netns', 'exec', hostNs, 'busybox', 'nc', '-w', '2', gateway, '18080'],
        {
          input: 'GET /index.html HTTP/1.0\r\n\r\n',
          timeoutMs: 10_000,
        },
      );
      answer = reply.stdout;
    }
    assert.match(answer, new RegExp(token), 'the mapped port answered');

    await client.check(net, rt); // disableCheck: no plugin runs, so portmap's CHECK bug cannot fail it

    await client.del(net, rt);
    const after = await execOk('ip', ['netns', 'exec', hostNs, 'iptables-save']);
    assert.doesNotMatch(after, new RegExp(ip.replaceAll('.', '\\.')), 'no rule for the container is left');
    assert.doesNotMatch(after, /CNI-DN-/, "portmap's container chain is gone");
    assert.notEqual((await execProgram('ip', ['-n', ctr, 'link', 'show', 'eth0'])).code, 0, 'eth0 is gone');
    await client.del(net, rt);
  },
);
