/**
 * Networking through the real docker CLI against berthd: the default bridge, user-defined
 * networks with DNS and isolation, published ports, connect/disconnect, ls/inspect/rm/prune.
 * Traffic goes only to 127.0.0.1 and to the containers' own namespaces.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { startBerthd, docker, firewallTable, type Berthd } from '../helpers/berthd.js';
import { execProgram } from '../helpers/exec.js';
import { testSubnet } from '../helpers/test-subnets.js';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureFixture } from '../../fixtures/index.js';

interface Daemon {
  sandbox: Sandbox;
  berthd: Berthd;
  run: (args: string[]) => ReturnType<typeof docker>;
  ok: (args: string[]) => Promise<string>;
  cg: string[];
}

async function daemonWithBusybox(t: TestContext, config?: Record<string, unknown>): Promise<Daemon> {
  const sandbox = await createSandbox(t);
  const berthd = await startBerthd(t, sandbox, config ? { config } : {});
  const run = (args: string[]): ReturnType<typeof docker> => docker(sandbox, berthd.dockerHost, args);
  const ok = async (args: string[]): Promise<string> => {
    const result = await run(args);
    assert.equal(result.code, 0, `docker ${args.join(' ')}: ${result.stderr}`);
    return result.stdout.trim();
  };
  const busybox = await ensureFixture('busybox');
  await ok(['load', '-i', busybox.dockerArchive]);
  return { sandbox, berthd, run, ok, cg: ['--cgroup-parent', sandbox.cgroupParent] };
}

function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/** Retry a GET a few times: the server in the container needs a moment to listen. */
async function httpGetRetry(port: number, path: string): Promise<{ status: number; body: string }> {
  let last: unknown;
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      return await httpGet(port, path);
    } catch (err) {
      last = err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw last;
}

test('the default bridge: an address from the pool, a default route, container to container by IP', async (t) => {
  const { ok, cg, sandbox } = await daemonWithBusybox(t);
  const inspect = JSON.parse(await ok(['network', 'inspect', 'bridge'])) as Array<{
    IPAM: { Config: Array<{ Subnet: string; Gateway: string }> };
    Options: Record<string, string>;
  }>;
  const pool = inspect[0]?.IPAM.Config[0];
  assert.ok(pool, 'the default bridge has a subnet');
  assert.equal(inspect[0]?.Options['com.docker.network.bridge.name'], sandbox.name('br'));
  const server = await ok(['run', '-d', ...cg, '--name', 'server', 'busybox', 'sleep', '300']);
  const ip = await ok(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', server]);
  const prefix = pool.Subnet.split('.').slice(0, 3).join('.');
  assert.ok(ip.startsWith(`${prefix}.`), `${ip} is in ${pool.Subnet}`);
  const routes = await ok(['run', '--rm', ...cg, 'busybox', 'ip', 'route']);
  assert.match(routes, new RegExp(`default via ${pool.Gateway.replace(/\./g, '\\.')} dev eth0`));
  const ping = await ok(['run', '--rm', ...cg, 'busybox', 'ping', '-c', '1', '-W', '2', ip]);
  assert.match(ping, /1 packets received/);
  const mac = await ok(['inspect', '-f', '{{.NetworkSettings.MacAddress}}', server]);
  assert.match(mac, /^02:42(:[0-9a-f]{2}){4}$/);
  const hosts = await ok(['exec', server, 'cat', '/etc/hosts']);
  assert.match(hosts, new RegExp(`${ip.replace(/\./g, '\\.')}\\t${server.slice(0, 12)}`));
  await ok(['rm', '-f', server]);
  // The container's host-side interface goes with its namespace (the kernel destroys it soon after).
  let links = '';
  for (let attempt = 0; attempt < 50; attempt++) {
    links = (await execProgram('ip', ['-o', 'link', 'show'])).stdout;
    if (!links.includes(`vb${server.slice(0, 10)}`)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.ok(!links.includes(`vb${server.slice(0, 10)}`), 'no veth left behind');
});

test('bridge "none" in daemon.json: no default network, containers without one get only loopback', async (t) => {
  const { ok, run, cg } = await daemonWithBusybox(t, { bridge: 'none' });
  assert.deepEqual((await ok(['network', 'ls', '--format', '{{.Name}}'])).split('\n').sort(), [
    'host',
    'none',
  ]);
  const inspect = await run(['network', 'inspect', 'bridge']);
  assert.notEqual(inspect.code, 0);
  assert.match(inspect.stderr, /network bridge not found/);
  const links = await ok(['run', '--rm', ...cg, 'busybox', 'ip', '-o', 'link']);
  assert.deepEqual(
    links.split('\n').map((line) => line.split(':')[1]?.trim()),
    ['lo'],
    links,
  );
  const id = await ok(['create', ...cg, 'busybox', 'true']);
  const config = JSON.parse(await ok(['inspect', id])) as Array<{
    Config: { NetworkDisabled?: boolean };
    HostConfig: { NetworkMode: string };
    NetworkSettings: { Networks: Record<string, unknown> };
  }>;
  assert.equal(config[0]?.Config.NetworkDisabled, true);
  assert.deepEqual(config[0]?.NetworkSettings.Networks, {});
  const explicit = await run(['run', '--rm', ...cg, '--network', 'bridge', 'busybox', 'true']);
  assert.notEqual(explicit.code, 0);
  assert.match(explicit.stderr, /network bridge not found/);
  // No device is made for the word "none"; user-defined networks still work.
  assert.equal((await execProgram('ip', ['link', 'show', 'none'])).code !== 0, true, 'no link named none');
  await ok(['network', 'create', 'own']);
  const own = await ok([
    'run',
    '--rm',
    ...cg,
    '--network',
    'own',
    'busybox',
    'ip',
    '-o',
    '-4',
    'addr',
    'show',
    'eth0',
  ]);
  assert.match(own, /inet \d+\.\d+\.\d+\.\d+\//);
});

test('user-defined networks: DNS by name, alias and short id; isolation between networks', async (t) => {
  const { ok, run, cg } = await daemonWithBusybox(t);
  await ok(['network', 'create', 'front']);
  await ok(['network', 'create', 'back']);
  const a = await ok([
    'run',
    '-d',
    ...cg,
    '--name',
    'alpha',
    '--network',
    'front',
    '--network-alias',
    'db',
    'busybox',
    'sleep',
    '300',
  ]);
  const byName = await ok([
    'run',
    '--rm',
    ...cg,
    '--network',
    'front',
    'busybox',
    'ping',
    '-c',
    '1',
    '-W',
    '2',
    'alpha',
  ]);
  assert.match(byName, /1 packets received/);
  const byAlias = await ok(['run', '--rm', ...cg, '--network', 'front', 'busybox', 'nslookup', 'db']);
  const ip = await ok(['inspect', '-f', '{{.NetworkSettings.Networks.front.IPAddress}}', a]);
  assert.ok(byAlias.includes(ip), `nslookup db answers ${ip}:\n${byAlias}`);
  const byId = await ok(['run', '--rm', ...cg, '--network', 'front', 'busybox', 'nslookup', a.slice(0, 12)]);
  assert.ok(byId.includes(ip));
  const resolv = await ok(['run', '--rm', ...cg, '--network', 'front', 'busybox', 'cat', '/etc/resolv.conf']);
  const gateway = await ok(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Gateway}}', 'front']);
  assert.match(resolv, new RegExp(`nameserver ${gateway.replace(/\./g, '\\.')}`));
  // From the other network: the name does not resolve and the address is not reachable.
  const otherName = await run(['run', '--rm', ...cg, '--network', 'back', 'busybox', 'nslookup', 'alpha']);
  assert.notEqual(otherName.code, 0, `alpha must not resolve from back:\n${otherName.stdout}`);
  const otherPing = await run([
    'run',
    '--rm',
    ...cg,
    '--network',
    'back',
    'busybox',
    'ping',
    '-c',
    '1',
    '-W',
    '1',
    ip,
  ]);
  assert.notEqual(otherPing.code, 0, 'networks are isolated from each other');
  // rm of a network in use is refused; after the container goes it works.
  const busy = await run(['network', 'rm', 'front']);
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, /has active endpoints/);
  await ok(['rm', '-f', a]);
  await ok(['network', 'rm', 'front']);
  const listed = await ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']);
  assert.deepEqual(listed.split('\n').sort(), ['back bridge', 'bridge bridge', 'host host', 'none null']);
  const predefined = await run(['network', 'rm', 'bridge']);
  assert.match(predefined.stderr, /pre-defined network and cannot be removed/);
  const pruned = await ok(['network', 'prune', '-f']);
  assert.match(pruned, /back/);
});

test('network create options: --subnet, --gateway, --ip, --internal, duplicates and bad input', async (t) => {
  const { ok, run, cg } = await daemonWithBusybox(t);
  const bridgeSubnet = await ok(['network', 'inspect', '-f', '{{(index .IPAM.Config 0).Subnet}}', 'bridge']);
  const [o1, o2] = bridgeSubnet.split('.');
  const subnet = `${o1}.${o2}.200.0/24`;
  await ok([
    'network',
    'create',
    '--subnet',
    subnet,
    '--gateway',
    `${o1}.${o2}.200.254`,
    '--internal',
    'inner',
  ]);
  const pools = (name: string): Promise<string> =>
    ok(['network', 'inspect', '-f', '{{json .IPAM.Config}}', name]);
  assert.equal(await pools('inner'), JSON.stringify([{ Subnet: subnet, Gateway: `${o1}.${o2}.200.254` }]));
  // dockerd shows the pools as they were asked for: a subnet given alone has no Gateway there.
  await ok(['network', 'create', '--subnet', `${o1}.${o2}.201.0/24`, 'plain']);
  assert.equal(await pools('plain'), JSON.stringify([{ Subnet: `${o1}.${o2}.201.0/24` }]));
  await ok(['network', 'rm', 'plain']);
  const fixed = `${o1}.${o2}.200.77`;
  const shown = await ok([
    'run',
    '--rm',
    ...cg,
    '--network',
    'inner',
    '--ip',
    fixed,
    'busybox',
    'ip',
    '-4',
    'addr',
    'show',
    'eth0',
  ]);
  assert.match(shown, new RegExp(`inet ${fixed.replace(/\./g, '\\.')}/24`));
  const routes = await ok(['run', '--rm', ...cg, '--network', 'inner', 'busybox', 'ip', 'route']);
  assert.doesNotMatch(routes, /default/, 'an internal network has no way out');
  const duplicate = await run(['network', 'create', 'inner']);
  assert.notEqual(duplicate.code, 0);
  assert.match(duplicate.stderr, /already exists/);
  const overlap = await run(['network', 'create', '--subnet', subnet, 'twin']);
  assert.notEqual(overlap.code, 0);
  const bad = await run(['network', 'create', '--subnet', '300.1.0.0/16', 'bad']);
  assert.notEqual(bad.code, 0);
  const ipOnDefault = await run(['run', '--rm', ...cg, '--ip', fixed, 'busybox', 'true']);
  assert.notEqual(ipOnDefault.code, 0);
  assert.match(ipOnDefault.stderr, /user configured subnets/);
  // A 404 at create makes the docker CLI try a pull, as with dockerd: --pull never shows the error.
  const unknown = await run([
    'run',
    '--rm',
    '--pull',
    'never',
    ...cg,
    '--network',
    'nowhere',
    'busybox',
    'true',
  ]);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /network nowhere not found/);
  // As with dockerd, the create succeeds and the start fails (a 404 from create would make the
  // docker CLI pull the image), so nothing is pulled even without --pull never.
  const created = await ok(['create', ...cg, '--network', 'nowhere', 'busybox', 'true']);
  const start = await run(['start', created]);
  assert.notEqual(start.code, 0);
  assert.match(start.stderr, /network nowhere not found/);
  assert.doesNotMatch(start.stderr + unknown.stderr, /Pulling/);
  await ok(['network', 'create', 'nowhere']);
  await ok(['start', '-a', created]);
});

test('published ports: -p to 127.0.0.1, -P, docker port, conflicts, rules removed at exit', async (t) => {
  const { ok, run, cg, sandbox } = await daemonWithBusybox(t);
  const web = await ok([
    'run',
    '-d',
    ...cg,
    '--name',
    'web',
    '-p',
    '127.0.0.1::8080',
    '--expose',
    '9090',
    '-P',
    'busybox',
    'httpd',
    '-f',
    '-p',
    '8080',
    '-h',
    '/etc',
  ]);
  const mapping = await ok(['port', web, '8080/tcp']);
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(mapping)?.[1]);
  assert.ok(port > 0, mapping);
  const hostname = await httpGetRetry(port, '/hostname');
  assert.equal(hostname.status, 200);
  assert.equal(hostname.body.trim(), web.slice(0, 12));
  const all = await ok(['port', web]);
  assert.match(all, /9090\/tcp -> 0\.0\.0\.0:\d+/);
  const ports = JSON.parse(await ok(['inspect', '-f', '{{json .NetworkSettings.Ports}}', web])) as Record<
    string,
    Array<{ HostIp: string; HostPort: string }> | null
  >;
  assert.equal(ports['8080/tcp']?.[0]?.HostPort, String(port));
  const ps = await ok(['ps', '--format', '{{.Ports}}', '--filter', `id=${web}`]);
  assert.match(ps, new RegExp(`127\\.0\\.0\\.1:${port}->8080/tcp`));
  // The same host port again: the start fails with a clear message and the container is not running.
  const clash = await run(['run', '-d', ...cg, '-p', `127.0.0.1:${port}:80`, 'busybox', 'sleep', '300']);
  assert.notEqual(clash.code, 0);
  // dockerd's words: the endpoint by the container's name and the endpoint's id.
  assert.match(
    clash.stderr,
    new RegExp(
      `driver failed programming external connectivity on endpoint \\S+ \\([0-9a-f]{64}\\): Bind for 127\\.0\\.0\\.1:${port} failed: port is already allocated`,
    ),
  );
  const table = await execProgram('nft', ['list', 'table', 'inet', firewallTable(sandbox)]);
  assert.match(table.stdout, new RegExp(`dport ${port}`));
  // Published on all addresses: the host reaches it on 127.0.0.1, and the container reaches its
  // own port through the host's address on the bridge (hairpin).
  const hp = await ok([
    'run',
    '-d',
    ...cg,
    '-p',
    '8080',
    'busybox',
    'httpd',
    '-f',
    '-p',
    '8080',
    '-h',
    '/etc',
  ]);
  const hpPort = Number(/:(\d+)$/m.exec(await ok(['port', hp, '8080']))?.[1]);
  assert.equal((await httpGetRetry(hpPort, '/hostname')).body.trim(), hp.slice(0, 12));
  const gateway = await ok(['inspect', '-f', '{{.NetworkSettings.Gateway}}', hp]);
  const hairpin = await ok(['exec', hp, 'wget', '-qO-', `http://${gateway}:${hpPort}/hostname`]);
  assert.equal(hairpin, hp.slice(0, 12));
  await ok(['rm', '-f', hp]);
  await ok(['rm', '-f', web]);
  const after = await execProgram('nft', ['list', 'table', 'inet', firewallTable(sandbox)]);
  assert.doesNotMatch(after.stdout, new RegExp(`dport ${port}\\b`), 'the forward went with the container');
  await assert.rejects(httpGet(port, '/hostname'));
});

test('network connect and disconnect of a running container', async (t) => {
  const { ok, run, cg } = await daemonWithBusybox(t);
  await ok(['network', 'create', 'one']);
  await ok(['network', 'create', 'two']);
  await ok(['run', '-d', ...cg, '--name', 'peer', '--network', 'two', 'busybox', 'sleep', '300']);
  const roamer = await ok([
    'run',
    '-d',
    ...cg,
    '--name',
    'roamer',
    '--network',
    'one',
    'busybox',
    'sleep',
    '300',
  ]);
  const before = await run(['exec', roamer, 'ping', '-c', '1', '-W', '1', 'peer']);
  assert.notEqual(before.code, 0, 'peer is on another network');
  await ok(['network', 'connect', '--alias', 'wanderer', 'two', roamer]);
  const addrs = await ok(['exec', roamer, 'ip', '-o', 'link']);
  assert.match(addrs, /eth1/);
  const after = await ok(['exec', roamer, 'ping', '-c', '1', '-W', '2', 'peer']);
  assert.match(after, /1 packets received/);
  const back = await ok(['exec', 'peer', 'nslookup', 'wanderer']);
  const ip = await ok(['inspect', '-f', '{{.NetworkSettings.Networks.two.IPAddress}}', roamer]);
  assert.ok(back.includes(ip), back);
  const inspect = await ok(['network', 'inspect', '-f', '{{len .Containers}}', 'two']);
  assert.equal(inspect, '2');
  await ok(['network', 'disconnect', 'two', roamer]);
  const gone = await ok(['exec', roamer, 'ip', '-o', 'link']);
  assert.doesNotMatch(gone, /eth1/);
  const notConnected = await run(['network', 'disconnect', 'two', roamer]);
  assert.notEqual(notConnected.code, 0);
});

test('container:<id> and host network modes', async (t) => {
  const { ok, cg } = await daemonWithBusybox(t);
  const first = await ok(['run', '-d', ...cg, '--name', 'first', 'busybox', 'sleep', '300']);
  const ip = await ok(['inspect', '-f', '{{.NetworkSettings.IPAddress}}', first]);
  const shared = await ok([
    'run',
    '--rm',
    ...cg,
    '--network',
    `container:${first}`,
    'busybox',
    'ip',
    '-4',
    '-o',
    'addr',
  ]);
  assert.ok(shared.includes(ip), "the second container sees the first one's address");
  const none = await ok(['run', '--rm', ...cg, '--network', 'none', 'busybox', 'ip', '-o', 'link']);
  assert.doesNotMatch(none, /eth0/);
});

test('a CNI network: declared by a configuration list, run by the standard plugins', async (t) => {
  const sandbox = await createSandbox(t);
  const [a = '10', b = '0'] = (await testSubnet(t)).split('.');
  const prefix = `${a}.${b}.250`;
  const cniDir = join(sandbox.root, 'cni');
  const ipamData = join(sandbox.root, 'cni-ipam');
  await mkdir(cniDir, { recursive: true });
  await writeFile(
    join(cniDir, '10-cninet.conflist'),
    JSON.stringify({
      cniVersion: '1.0.0',
      name: 'cninet',
      plugins: [
        {
          type: 'bridge',
          bridge: sandbox.name('cn'),
          isGateway: true,
          ipMasq: false,
          ipam: { type: 'host-local', ranges: [[{ subnet: `${prefix}.0/24` }]], dataDir: ipamData },
        },
      ],
    }),
  );
  const berthd = await startBerthd(t, sandbox);
  const run = (args: string[]): ReturnType<typeof docker> => docker(sandbox, berthd.dockerHost, args);
  const ok = async (args: string[]): Promise<string> => {
    const result = await run(args);
    assert.equal(result.code, 0, `docker ${args.join(' ')}: ${result.stderr}`);
    return result.stdout.trim();
  };
  await ok(['load', '-i', (await ensureFixture('busybox')).dockerArchive]);
  const cg = ['--cgroup-parent', sandbox.cgroupParent];
  assert.match(await ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}}']), /^cninet cni$/m);
  const first = await ok(['run', '-d', ...cg, '--network', 'cninet', 'busybox', 'sleep', '300']);
  const ip = await ok(['inspect', '-f', '{{.NetworkSettings.Networks.cninet.IPAddress}}', first]);
  assert.ok(ip.startsWith(`${prefix}.`), `${ip} comes from the plugin's range`);
  const ping = await ok([
    'run',
    '--rm',
    ...cg,
    '--network',
    'cninet',
    'busybox',
    'ping',
    '-c',
    '1',
    '-W',
    '2',
    ip,
  ]);
  assert.match(ping, /1 packets received/);
  const removal = await run(['network', 'rm', 'cninet']);
  assert.notEqual(removal.code, 0);
  assert.match(removal.stderr, /CNI network/);
  const held = await readdir(join(ipamData, 'cninet'));
  assert.ok(held.includes(ip), 'host-local holds the address while the container runs');
  await ok(['rm', '-f', first]);
  assert.ok(!(await readdir(join(ipamData, 'cninet'))).includes(ip), 'DEL released the address');
});

test('IPv6 dual stack, --mac-address, --dns options and --add-host', async (t) => {
  const { ok, cg } = await daemonWithBusybox(t);
  await ok(['network', 'create', '--ipv6', '--subnet', 'fd00:b0e7:1::/64', 'dual']);
  const shown = await ok([
    'run',
    '--rm',
    ...cg,
    '--network',
    'dual',
    '--mac-address',
    '02:42:de:ad:be:ef',
    'busybox',
    'ip',
    '-o',
    'addr',
    'show',
    'eth0',
  ]);
  assert.match(shown, /inet 10\.\d+\.\d+\.\d+\/24/);
  assert.match(shown, /inet6 fd00:b0e7:1::[0-9a-f]+\/64/);
  const link = await ok([
    'run',
    '--rm',
    ...cg,
    '--network',
    'dual',
    '--mac-address',
    '02:42:de:ad:be:ef',
    'busybox',
    'ip',
    'link',
    'show',
    'eth0',
  ]);
  assert.match(link, /link\/ether 02:42:de:ad:be:ef/);
  const server = await ok([
    'run',
    '-d',
    ...cg,
    '--network',
    'dual',
    '--name',
    'six',
    'busybox',
    'sleep',
    '300',
  ]);
  const v6 = await ok(['inspect', '-f', '{{.NetworkSettings.Networks.dual.GlobalIPv6Address}}', server]);
  assert.match(v6, /^fd00:b0e7:1::/);
  const ping6 = await ok([
    'run',
    '--rm',
    ...cg,
    '--network',
    'dual',
    'busybox',
    'ping',
    '-6',
    '-c',
    '1',
    '-W',
    '2',
    v6,
  ]);
  assert.match(ping6, /1 packets received/);
  const files = await ok([
    'run',
    '--rm',
    ...cg,
    '--dns',
    '192.0.2.53',
    '--dns-search',
    'example.test',
    '--dns-option',
    'ndots:2',
    '--add-host',
    'db.local:192.0.2.7',
    '--hostname',
    'box',
    'busybox',
    'sh',
    '-c',
    'cat /etc/resolv.conf /etc/hosts; hostname',
  ]);
  assert.match(files, /nameserver 192\.0\.2\.53/);
  assert.match(files, /search example\.test/);
  assert.match(files, /options ndots:2/);
  assert.match(files, /192\.0\.2\.7\tdb\.local/);
  assert.match(files, /\tbox\n/);
  assert.match(files, /\nbox$/);
});

test('published ports survive a berthd crash (live restore) and their rules go with the container', async (t) => {
  const { ok, cg, sandbox, berthd } = await daemonWithBusybox(t);
  const web = await ok([
    'run',
    '-d',
    ...cg,
    '-p',
    '127.0.0.1::8080',
    'busybox',
    'httpd',
    '-f',
    '-p',
    '8080',
    '-h',
    '/etc',
  ]);
  const port = Number(/:(\d+)$/m.exec(await ok(['port', web, '8080']))?.[1]);
  assert.equal((await httpGetRetry(port, '/hostname')).body.trim(), web.slice(0, 12));
  await berthd.stop('SIGKILL');
  // The container and its forward outlive the daemon.
  assert.equal((await httpGetRetry(port, '/hostname')).body.trim(), web.slice(0, 12));
  const again = await startBerthd(t, sandbox);
  const run = (args: string[]): ReturnType<typeof docker> => docker(sandbox, again.dockerHost, args);
  const status = await run([
    'inspect',
    '-f',
    '{{.State.Status}} {{(index (index .NetworkSettings.Ports "8080/tcp") 0).HostPort}}',
    web,
  ]);
  assert.equal(status.stdout.trim(), `running ${port}`);
  const table = await execProgram('nft', ['list', 'table', 'inet', firewallTable(sandbox)]);
  assert.match(table.stdout, new RegExp(`dport ${port}\\b`), 'the restarted daemon rebuilt the forward');
  // The port stays reserved: another container cannot take it.
  const clash = await run(['run', '-d', ...cg, '-p', `127.0.0.1:${port}:80`, 'busybox', 'true']);
  assert.notEqual(clash.code, 0);
  assert.equal((await run(['rm', '-f', web])).code, 0);
  const after = await execProgram('nft', ['list', 'table', 'inet', firewallTable(sandbox)]);
  assert.doesNotMatch(after.stdout, new RegExp(`dport ${port}\\b`));
});
