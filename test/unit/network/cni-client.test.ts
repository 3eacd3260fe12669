// The CNI client against fake plugins: one small sh script, copied under several names, that logs
// how it was called (CNI_* variables and the configuration on stdin, which the client sends as one
// line of JSON) and answers with canned files the test writes next to it. No root, no namespaces.
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import { CniClient, CniPluginError } from '../../../src/network/cni/index.js';
import type { CniClientOptions, CniNetworkList, CniRuntimeConf } from '../../../src/network/cni/index.js';

// <plugin>.<COMMAND> is printed to stdout, <plugin>.<COMMAND>.stderr to stderr,
// <plugin>.<COMMAND>.exit is the exit status, <plugin>.<COMMAND>.hang makes it hang.
const FAKE_PLUGIN = `#!/bin/sh
conf=$(cat)
printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "\${0##*/}" "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" \\
  "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH" "$conf" >> "\${0%/*}/../calls.log"
answer="$0.$CNI_COMMAND"
if [ "$CNI_COMMAND" = VERSION ]; then
  printf '%s\\n' "$conf" >> "$0.version-calls"
  [ -f "$answer" ] || answer="\${0%/*}/../default.VERSION"
fi
[ -f "$answer.hang" ] && exec sleep 60
[ -f "$answer.stderr" ] && cat "$answer.stderr" >&2
[ -f "$answer" ] && cat "$answer"
[ -f "$answer.exit" ] && exit "$(cat "$answer.exit")"
exit 0
`;

interface Call {
  type: string;
  command: string;
  env: Record<string, string>;
  conf: Record<string, unknown> & { prevResult?: Record<string, unknown>; runtimeConfig?: unknown };
}

interface Answer {
  stdout?: string;
  stderr?: string;
  exit?: number;
  hang?: boolean;
}

interface Fixture {
  dir: string;
  pluginDir: string;
  cacheDir: string;
  client: CniClient;
  answer(type: string, command: string, answer: Answer): Promise<void>;
  calls(): Promise<Call[]>;
  clearCalls(): Promise<void>;
}

const PLUGINS = ['alpha', 'beta', 'gamma'];

/** The canned ADD result of a plugin: the interfaces so far plus its own, alpha's address. */
function addResult(type: string, cniVersion: string): Record<string, unknown> {
  const position = PLUGINS.indexOf(type);
  const interfaces = PLUGINS.slice(0, position + 1).map((name) => ({
    name: `${name}0`,
    sandbox: '/run/netns/x',
  }));
  const ip =
    cniVersion === '1.0.0'
      ? { address: '10.99.0.5/24', interface: 0 }
      : { version: '4', address: '10.99.0.5/24', interface: 0 };
  return { cniVersion, interfaces, ips: [ip] };
}

async function fixture(
  t: TestContext,
  options: Partial<CniClientOptions> & { cniVersion?: string } = {},
): Promise<Fixture> {
  const { cniVersion = '1.0.0', ...clientOptions } = options;
  const dir = await mkdtemp(join(tmpdir(), 'berth-unit-cni-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pluginDir = join(dir, 'bin');
  await mkdir(pluginDir);
  await writeFile(join(dir, 'fake-plugin'), FAKE_PLUGIN);
  await writeFile(
    join(dir, 'default.VERSION'),
    JSON.stringify({ cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'] }),
  );
  const answer = async (type: string, command: string, reply: Answer): Promise<void> => {
    const base = join(pluginDir, `${type}.${command}`);
    for (const suffix of ['', '.stderr', '.exit', '.hang']) await rm(base + suffix, { force: true });
    if (reply.stdout !== undefined) await writeFile(base, reply.stdout);
    if (reply.stderr !== undefined) await writeFile(`${base}.stderr`, reply.stderr);
    if (reply.exit !== undefined) await writeFile(`${base}.exit`, String(reply.exit));
    if (reply.hang === true) await writeFile(`${base}.hang`, '');
  };
  for (const type of PLUGINS) {
    await copyFile(join(dir, 'fake-plugin'), join(pluginDir, type));
    await chmod(join(pluginDir, type), 0o755);
    await answer(type, 'ADD', { stdout: JSON.stringify(addResult(type, cniVersion)) });
  }
  const log = join(dir, 'calls.log');
  const cacheDir = join(dir, 'cache');
  const client = new CniClient({ pluginDirs: [join(dir, 'empty'), pluginDir], cacheDir, ...clientOptions });
  const calls = async (): Promise<Call[]> => {
    const text = await readFile(log, 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const [type = '', command = '', id = '', netns = '', ifName = '', args = '', path = '', conf = ''] =
          line.split('\t');
        const env = {
          CNI_CONTAINERID: id,
          CNI_NETNS: netns,
          CNI_IFNAME: ifName,
          CNI_ARGS: args,
          CNI_PATH: path,
        };
        return { type, command, env, conf: command === 'VERSION' ? {} : (JSON.parse(conf) as Call['conf']) };
      })
      .filter((call) => call.command !== 'VERSION');
  };
  return { dir, pluginDir, cacheDir, client, answer, calls, clearCalls: () => rm(log, { force: true }) };
}

/** A three-plugin chain; gamma wants portMappings. */
function chain(cniVersion = '1.0.0'): CniNetworkList {
  return {
    cniVersion,
    name: 'testnet',
    plugins: [
      { type: 'alpha', ipam: { subnet: '10.99.0.0/24' } },
      { type: 'beta' },
      { type: 'gamma', capabilities: { portMappings: true } },
    ],
  };
}

const rt: CniRuntimeConf = {
  containerId: 'c0ffee',
  netns: '/proc/self/ns/net',
  ifName: 'eth0',
  args: [
    ['IgnoreUnknown', '1'],
    ['K8S_POD_NAME', 'web-0'],
  ],
  capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
};

const order = (calls: Call[]): string[] => calls.map((call) => `${call.command} ${call.type}`);

/** A plugin's error object, as plugins print it. */
const cniError = (code: number, msg: string, details?: string): Answer => ({
  stdout: JSON.stringify({ cniVersion: '1.0.0', code, msg, ...(details === undefined ? {} : { details }) }),
  exit: 1,
});

function berthError(kind: string, message: RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.match(err.message, message);
    assert.equal(err.kind, kind);
    return true;
  };
}

test('ADD runs the chain in order with the spec environment, prevResult and runtimeConfig', async (t) => {
  const f = await fixture(t);
  const result = await f.client.add(chain(), rt);
  assert.deepEqual(result, {
    cniVersion: '1.0.0',
    interfaces: [
      { name: 'alpha0', sandbox: '/run/netns/x' },
      { name: 'beta0', sandbox: '/run/netns/x' },
      { name: 'gamma0', sandbox: '/run/netns/x' },
    ],
    ips: [{ address: '10.99.0.5/24', interface: 0 }],
    routes: [],
    dns: {},
  });
  const calls = await f.calls();
  assert.deepEqual(order(calls), ['ADD alpha', 'ADD beta', 'ADD gamma']);
  for (const call of calls) {
    assert.deepEqual(call.env, {
      CNI_CONTAINERID: 'c0ffee',
      CNI_NETNS: '/proc/self/ns/net',
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web-0',
      CNI_PATH: `${join(f.dir, 'empty')}:${f.pluginDir}`,
    });
    assert.equal(call.conf.name, 'testnet');
    assert.equal(call.conf.cniVersion, '1.0.0');
  }
  const [alpha, beta, gamma] = calls;
  assert.equal(alpha?.conf.prevResult, undefined);
  assert.deepEqual(alpha?.conf.ipam, { subnet: '10.99.0.0/24' });
  assert.deepEqual(beta?.conf.prevResult, addResult('alpha', '1.0.0'));
  assert.equal(beta?.conf.runtimeConfig, undefined);
  assert.deepEqual(gamma?.conf.prevResult, addResult('beta', '1.0.0'));
  assert.deepEqual(gamma?.conf.runtimeConfig, { portMappings: rt.capabilityArgs?.portMappings });
});

test('the result is cached like libcni and CHECK and DEL get it as prevResult; DEL runs in reverse', async (t) => {
  const f = await fixture(t);
  const net = chain();
  const result = await f.client.add(net, rt);
  const cacheFile = join(f.cacheDir, 'results', 'testnet-c0ffee-eth0');
  const record = JSON.parse(await readFile(cacheFile, 'utf8')) as Record<string, unknown>;
  assert.equal(record.kind, 'cniCacheV1');
  assert.equal(record.containerId, 'c0ffee');
  assert.equal(record.ifName, 'eth0');
  assert.equal(record.networkName, 'testnet');
  assert.deepEqual(record.cniArgs, rt.args);
  assert.deepEqual(record.result, addResult('gamma', '1.0.0'));
  assert.deepEqual(JSON.parse(Buffer.from(String(record.config), 'base64').toString()), net);
  assert.deepEqual(await f.client.cachedResult(net, rt), result);

  await f.clearCalls();
  await f.client.check(net, rt);
  await f.client.del(net, rt);
  const calls = await f.calls();
  assert.deepEqual(order(calls), [
    'CHECK alpha',
    'CHECK beta',
    'CHECK gamma',
    'DEL gamma',
    'DEL beta',
    'DEL alpha',
  ]);
  for (const call of calls) assert.deepEqual(call.conf.prevResult, addResult('gamma', '1.0.0'));
  await assert.rejects(readFile(cacheFile), { code: 'ENOENT' });
  assert.equal(await f.client.cachedResult(net, rt), undefined);
});

test('DEL is idempotent: without a cached result or a network namespace the plugins still run', async (t) => {
  const f = await fixture(t);
  const net = chain();
  const gone = { ...rt, netns: join(f.dir, 'no-such-netns') };
  await f.client.add(net, gone);
  await f.clearCalls();
  await f.client.del(net, gone);
  await f.client.del(net, gone);
  const calls = await f.calls();
  assert.deepEqual(order(calls), [
    'DEL gamma',
    'DEL beta',
    'DEL alpha',
    'DEL gamma',
    'DEL beta',
    'DEL alpha',
  ]);
  for (const call of calls) assert.equal(call.env.CNI_NETNS, '', 'a vanished netns is passed as empty');
  for (const call of calls.slice(3)) assert.equal(call.conf.prevResult, undefined, 'no cache, no prevResult');
});

test('an unreadable cache does not block DEL, but CHECK reports it', async (t) => {
  const f = await fixture(t);
  const net = chain();
  await f.client.add(net, rt);
  await writeFile(join(f.cacheDir, 'results', 'testnet-c0ffee-eth0'), '{"kind": "cniCacheV1", "result": ');
  await assert.rejects(
    f.client.check(net, rt),
    berthError('internal', /^cached CNI result for network "testnet": .* is not valid JSON$/),
  );
  await f.clearCalls();
  await f.client.del(net, rt);
  assert.deepEqual(order(await f.calls()), ['DEL gamma', 'DEL beta', 'DEL alpha']);
});

test('a second ADD of the same attachment is refused; another interface name is a new attachment', async (t) => {
  const f = await fixture(t);
  await f.client.add(chain(), rt);
  await assert.rejects(
    f.client.add(chain(), rt),
    berthError(
      'conflict',
      /^container c0ffee is already attached to CNI network "testnet" as eth0; delete that attachment first$/,
    ),
  );
  await f.client.add(chain(), { ...rt, ifName: 'eth1' });
  assert.deepEqual(order(await f.calls()), [
    'ADD alpha',
    'ADD beta',
    'ADD gamma',
    'ADD alpha',
    'ADD beta',
    'ADD gamma',
  ]);
});

test('CHECK needs a cached result and cniVersion 0.4.0, and is skipped with disableCheck', async (t) => {
  const f = await fixture(t);
  await assert.rejects(
    f.client.check(chain(), rt),
    berthError(
      'not-found',
      /^container c0ffee has no cached result for CNI network "testnet" as eth0; was it added\?$/,
    ),
  );
  await assert.rejects(
    f.client.check(chain('0.3.1'), rt),
    berthError(
      'invalid-argument',
      /^CNI network "testnet" has cniVersion 0\.3\.1; CHECK needs cniVersion 0\.4\.0 or later$/,
    ),
  );
  const net = { ...chain(), disableCheck: true };
  await f.client.add(net, rt);
  await f.clearCalls();
  await f.client.check(net, rt);
  assert.deepEqual(await f.calls(), []);
});

test('a 0.4.0 network gets prevResult with IP versions; a 0.3.1 network gets none on DEL', async (t) => {
  const f = await fixture(t, { cniVersion: '0.4.0' });
  const result = await f.client.add(chain('0.4.0'), rt);
  assert.equal(result.cniVersion, '0.4.0');
  assert.deepEqual(result.ips, [{ address: '10.99.0.5/24', interface: 0 }]);
  await f.client.del(chain('0.4.0'), rt);
  const calls = await f.calls();
  assert.deepEqual(calls[1]?.conf.prevResult, addResult('alpha', '0.4.0'));
  assert.deepEqual(calls[3]?.conf.prevResult, addResult('gamma', '0.4.0'));

  await f.clearCalls();
  await f.client.add(chain('0.3.1'), rt);
  await f.client.del(chain('0.3.1'), rt);
  const old = await f.calls();
  assert.deepEqual(order(old.slice(3)), ['DEL gamma', 'DEL beta', 'DEL alpha']);
  for (const call of old.slice(3)) assert.equal(call.conf.prevResult, undefined);
});

test('a result in another version than the network is converted before it is passed on', async (t) => {
  const f = await fixture(t);
  await f.answer('alpha', 'ADD', { stdout: JSON.stringify(addResult('alpha', '0.4.0')) });
  await f.client.add(chain(), rt);
  const [, beta] = await f.calls();
  assert.deepEqual(beta?.conf.prevResult, addResult('alpha', '1.0.0'));
});

test("a plugin's error object becomes a CniPluginError and the plugins run so far are undone in reverse", async (t) => {
  const f = await fixture(t);
  await f.answer('beta', 'ADD', cniError(7, 'invalid network config', 'bridge name too long'));
  await assert.rejects(f.client.add(chain(), rt), (err: unknown) => {
    assert.ok(err instanceof CniPluginError);
    assert.equal(err.kind, 'invalid-argument');
    assert.equal(err.cniCode, 7);
    assert.equal(err.msg, 'invalid network config');
    assert.equal(err.details, 'bridge name too long');
    assert.equal(
      err.message,
      'CNI plugin "beta" (network "testnet") ADD failed: invalid network config (bridge name too long)',
    );
    return true;
  });
  const calls = await f.calls();
  assert.deepEqual(order(calls), ['ADD alpha', 'ADD beta', 'DEL beta', 'DEL alpha']);
  assert.deepEqual(calls[2]?.conf.prevResult, addResult('alpha', '1.0.0'));
  assert.deepEqual(calls[3]?.conf.prevResult, addResult('alpha', '1.0.0'));
  assert.equal(await f.client.cachedResult(chain(), rt), undefined);
  // Nothing was cached, so the attachment can be added once the cause is fixed.
  await f.answer('beta', 'ADD', { stdout: JSON.stringify(addResult('beta', '1.0.0')) });
  await f.client.add(chain(), rt);
});

test('an undo that fails differently is reported with the ADD error; the same failure is said once', async (t) => {
  const f = await fixture(t);
  await f.answer('gamma', 'ADD', cniError(11, 'port 8080 is busy'));
  await f.answer('alpha', 'DEL', cniError(5, 'cannot release 10.99.0.5'));
  await assert.rejects(f.client.add(chain(), rt), (err: unknown) => {
    assert.ok(err instanceof CniPluginError);
    assert.equal(err.kind, 'unavailable');
    assert.equal(
      err.message,
      'CNI plugin "gamma" (network "testnet") ADD failed: port 8080 is busy; undoing the partial ADD failed too: ' +
        'CNI plugin "alpha" (network "testnet") DEL failed: cannot release 10.99.0.5',
    );
    return true;
  });
  await f.answer('alpha', 'ADD', cniError(7, 'invalid CIDR address: 10.0.0.0/33'));
  await f.answer('alpha', 'DEL', cniError(7, 'invalid CIDR address: 10.0.0.0/33'));
  await assert.rejects(
    f.client.add(chain(), rt),
    berthError(
      'invalid-argument',
      /^CNI plugin "alpha" \(network "testnet"\) ADD failed: invalid CIDR address: 10\.0\.0\.0\/33$/,
    ),
  );
});

test('plugin error codes map to error kinds', async (t) => {
  const f = await fixture(t);
  const cases: [number, string][] = [
    [1, 'invalid-argument'],
    [3, 'not-found'],
    [11, 'unavailable'],
    [999, 'internal'],
  ];
  await f.client.add(chain(), rt);
  for (const [code, kind] of cases) {
    await f.answer('beta', 'CHECK', cniError(code, `failure ${code}`));
    await assert.rejects(
      f.client.check(chain(), rt),
      berthError(kind, new RegExp(`CHECK failed: failure ${code}$`)),
    );
  }
});

test('output that is not a CNI answer fails with the plugin named', async (t) => {
  const f = await fixture(t);
  const cases: [Answer, RegExp][] = [
    [
      { stdout: 'hello' },
      /^CNI plugin "beta" \(network "testnet"\) ADD printed something that is not JSON: "hello"$/,
    ],
    [{}, /^CNI plugin "beta" \(network "testnet"\) ADD printed no result$/],
    [
      { stdout: JSON.stringify({ cniVersion: '1.0.0', ips: [{ address: 'x' }] }) },
      /^CNI plugin "beta" \(network "testnet"\) ADD printed a malformed result: ips\[0\]\.address "x"/,
    ],
    [
      { stdout: 'panic: runtime error', stderr: 'goroutine 1 [running]:\nmain.main()\n', exit: 2 },
      /^CNI plugin "beta" \(network "testnet"\) ADD failed with exit status 2: goroutine 1 \[running\]:\nmain\.main\(\)$/,
    ],
    [
      { stdout: 'oops', exit: 3 },
      /^CNI plugin "beta" \(network "testnet"\) ADD failed with exit status 3: oops$/,
    ],
  ];
  for (const [answer, message] of cases) {
    await f.answer('beta', 'ADD', answer);
    await assert.rejects(f.client.add(chain(), rt), berthError('internal', message));
    assert.equal(await f.client.cachedResult(chain(), rt), undefined);
  }
});

test('a plugin that hangs is killed after the timeout and the chain undone', async (t) => {
  const f = await fixture(t, { timeoutMs: 300 });
  await f.answer('beta', 'ADD', { hang: true });
  await assert.rejects(
    f.client.add(chain(), rt),
    berthError('unavailable', /^CNI plugin "beta" \(network "testnet"\) ADD did not finish within 300 ms$/),
  );
  assert.deepEqual(order(await f.calls()), ['ADD alpha', 'ADD beta', 'DEL beta', 'DEL alpha']);
});

test('an unknown plugin is named with the directories searched, before anything runs', async (t) => {
  const f = await fixture(t);
  const net = chain();
  net.plugins.push({ type: 'portmap' });
  await assert.rejects(
    f.client.add(net, rt),
    berthError(
      'not-found',
      new RegExp(`^CNI plugin "portmap" not found in ${join(f.dir, 'empty')}, ${f.pluginDir}$`),
    ),
  );
  assert.deepEqual(await f.calls(), []);
  await assert.rejects(
    f.client.version('../alpha'),
    berthError('invalid-argument', /is not a plugin file name/),
  );
});

test('VERSION is asked once per plugin file, and a list version the plugin lacks is refused', async (t) => {
  const f = await fixture(t);
  const alpha = join(f.pluginDir, 'alpha');
  assert.deepEqual(await f.client.version('alpha'), {
    cniVersion: '1.0.0',
    supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0'],
  });
  await f.client.version('alpha');
  await f.client.add(chain(), rt);
  const probes = (await readFile(`${alpha}.version-calls`, 'utf8')).trim().split('\n');
  assert.deepEqual(probes, ['{"cniVersion":"1.0.0"}']);

  // A changed (upgraded) plugin file is asked again.
  await f.answer('alpha', 'VERSION', {
    stdout: JSON.stringify({ cniVersion: '0.4.0', supportedVersions: ['0.3.1', '0.4.0'] }),
  });
  const later = new Date(Date.now() + 5000);
  await utimes(alpha, later, later);
  await f.clearCalls();
  await assert.rejects(
    f.client.add(chain(), { ...rt, ifName: 'eth1' }),
    berthError(
      'invalid-argument',
      /^CNI plugin "alpha" \(network "testnet"\) supports CNI versions 0\.3\.1, 0\.4\.0, not 1\.0\.0$/,
    ),
  );
  assert.deepEqual(await f.calls(), []);
  await f.client.validate(chain('0.4.0'));

  await f.answer('beta', 'VERSION', { stdout: '{"cniVersion": "1.0.0"}' });
  await utimes(join(f.pluginDir, 'beta'), later, later);
  await assert.rejects(
    f.client.version('beta'),
    berthError(
      'internal',
      /^CNI plugin "beta" VERSION printed a malformed result: supportedVersions is missing$/,
    ),
  );
});

test("the caller's own CNI_ variables do not leak into a plugin's environment", async (t) => {
  const f = await fixture(t);
  process.env.CNI_IFNAME = 'bogus0';
  process.env.CNI_ARGS = 'EVIL=1';
  t.after(() => {
    delete process.env.CNI_IFNAME;
    delete process.env.CNI_ARGS;
  });
  await f.client.add(chain(), { containerId: 'c1', netns: '/proc/self/ns/net', ifName: 'eth0' });
  const [first] = await f.calls();
  assert.equal(first?.env.CNI_IFNAME, 'eth0');
  assert.equal(first?.env.CNI_ARGS, '');
});

test('operations on one container run one at a time, in the order they were asked for', async (t) => {
  const f = await fixture(t);
  const net = chain();
  await Promise.all([f.client.add(net, rt), f.client.check(net, rt), f.client.del(net, rt)]);
  assert.deepEqual(order(await f.calls()), [
    'ADD alpha',
    'ADD beta',
    'ADD gamma',
    'CHECK alpha',
    'CHECK beta',
    'CHECK gamma',
    'DEL gamma',
    'DEL beta',
    'DEL alpha',
  ]);
});

test('invalid parameters are refused before any plugin runs', async (t) => {
  const f = await fixture(t);
  await assert.rejects(
    f.client.add(chain(), { ...rt, ifName: 'eth/0' }),
    berthError('invalid-argument', /interface name/),
  );
  await assert.rejects(
    f.client.del(chain(), { ...rt, containerId: '../x' }),
    berthError('invalid-argument', /container ID/),
  );
  await assert.rejects(
    f.client.del({ ...chain(), name: '../../etc' }, rt),
    berthError(
      'invalid-argument',
      /^CNI network list: "name" "..\/..\/etc" must start with a letter or digit/,
    ),
  );
  await assert.rejects(
    f.client.add({ ...chain(), plugins: [] }, rt),
    berthError(
      'invalid-argument',
      /^CNI network list \(network "testnet"\): "plugins" must be a non-empty list$/,
    ),
  );
  assert.deepEqual(await f.calls(), []);
  assert.throws(
    () => new CniClient({ pluginDirs: [], cacheDir: f.cacheDir }),
    /pluginDirs must name at least one/,
  );
});
