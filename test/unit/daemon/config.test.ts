import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import {
  applyReload,
  buildConfig,
  defaultConfig,
  parseConfigFile,
  type DaemonConfig,
  type FlagValues,
} from '../../../src/daemon/config.js';
import { parseCommandLine } from '../../../src/daemon/flags.js';

const FILE = '/etc/berth/daemon.json';
const fromFile = (values: Record<string, unknown>, flags: FlagValues = new Map()): DaemonConfig =>
  buildConfig(flags, { path: FILE, values });
const fromFlags = (...args: string[]): DaemonConfig => buildConfig(parseCommandLine(args).flags);

/** Asserts an invalid-argument error with exactly this message (one message naming the key). */
function rejects(build: () => unknown, message: string): void {
  assert.throws(build, (err: unknown) => {
    assert.ok(err instanceof BerthError, `not a BerthError: ${String(err)}`);
    assert.equal(err.kind, 'invalid-argument');
    assert.equal(err.message, message);
    return true;
  });
}
const fileError = (message: string): string => `unable to configure berthd with file ${FILE}: ${message}`;

test('defaults: data-root, exec-root and the unix socket', () => {
  const config = buildConfig(new Map());
  assert.equal(config.dataRoot, '/var/lib/berth');
  assert.equal(config.execRoot, '/run/berth');
  assert.deepEqual(config.hosts, ['unix:///run/berth/berth.sock']);
  assert.equal(config.logLevel, 'info');
  assert.equal(config.logDriver, 'json-file');
  assert.equal(config.defaultRuntime, 'berth');
  assert.equal(config.tls, false);
  assert.deepEqual(config, { ...defaultConfig(), hosts: ['unix:///run/berth/berth.sock'] });
});

test('every supported daemon.json key is read', () => {
  const config = fromFile({
    'data-root': '/srv/berth/',
    'exec-root': '/run/b',
    hosts: ['unix:///run/b/api.sock', 'tcp://0.0.0.0:2376'],
    debug: false,
    'log-level': 'warn',
    'log-driver': 'local',
    'log-opts': { 'max-size': '10m' },
    'default-ulimits': { nofile: { Name: 'nofile', Soft: 1024, Hard: 2048 }, core: { Soft: -1, Hard: -1 } },
    'insecure-registries': ['registry.lan:5000', '10.0.0.0/8', '[fd00::1]:5000'],
    'registry-mirrors': ['https://mirror.example'],
    'live-restore': true,
    'default-runtime': 'runc',
    runtimes: { runc: { path: '/usr/bin/runc', runtimeArgs: ['--debug'] } },
    'metrics-addr': '127.0.0.1:9323',
    tls: true,
    tlsverify: true,
    tlscacert: '/etc/berth/ca.pem',
    tlscert: '/etc/berth/cert.pem',
    tlskey: '/etc/berth/key.pem',
    group: 'docker',
    bip: '192.168.5.1/24',
    bridge: 'br-lan',
    mtu: 9000,
    'cni-config-dir': '/etc/cni/net.d',
    'default-address-pools': [{ base: '10.10.0.0/16', size: 24 }],
    'userns-remap': 'default',
  });
  assert.deepEqual(config, {
    dataRoot: '/srv/berth',
    execRoot: '/run/b',
    hosts: ['unix:///run/b/api.sock', 'tcp://0.0.0.0:2376'],
    debug: false,
    logLevel: 'warn',
    logDriver: 'local',
    logOpts: { 'max-size': '10m' },
    defaultUlimits: {
      nofile: { Name: 'nofile', Soft: 1024, Hard: 2048 },
      core: { Name: 'core', Soft: -1, Hard: -1 },
    },
    insecureRegistries: ['registry.lan:5000', '10.0.0.0/8', '[fd00::1]:5000'],
    registryMirrors: ['https://mirror.example/'],
    liveRestore: true,
    defaultRuntime: 'runc',
    runtimes: { runc: { path: '/usr/bin/runc', runtimeArgs: ['--debug'] } },
    metricsAddr: '127.0.0.1:9323',
    tls: true,
    tlsVerify: true,
    tlsCaCert: '/etc/berth/ca.pem',
    tlsCert: '/etc/berth/cert.pem',
    tlsKey: '/etc/berth/key.pem',
    group: 'docker',
    bip: '192.168.5.1/24',
    bridge: 'br-lan',
    mtu: 9000,
    cniConfigDir: '/etc/cni/net.d',
    defaultAddressPools: [{ base: '10.10.0.0/16', size: 24 }],
    usernsRemap: 'default',
  });
});

test('flags set the same settings, converted like dockerd', () => {
  const config = fromFlags(
    '-H',
    'unix:///tmp/a.sock',
    '--data-root',
    '/d',
    '--exec-root',
    '/e',
    '--log-opt',
    'max-size=1m',
    '--default-ulimit',
    'nofile=100:200',
    '--default-ulimit',
    'nproc=50',
    '--add-runtime',
    'crun=/usr/bin/crun',
    '--default-runtime',
    'crun',
    '--default-address-pool',
    'base=10.20.0.0/16,size=24',
    '--registry-mirror',
    'http://m.lan:5000/',
    '--tlsverify',
    '--tlscacert',
    '/ca',
    '--tlscert',
    '/cert',
    '--tlskey',
    '/key',
    '-l',
    'error',
  );
  assert.deepEqual(config.hosts, ['unix:///tmp/a.sock']);
  assert.equal(config.dataRoot, '/d');
  assert.deepEqual(config.logOpts, { 'max-size': '1m' });
  assert.deepEqual(config.defaultUlimits, {
    nofile: { Name: 'nofile', Soft: 100, Hard: 200 },
    nproc: { Name: 'nproc', Soft: 50, Hard: 50 },
  });
  assert.deepEqual(config.runtimes, { crun: { path: '/usr/bin/crun' } });
  assert.equal(config.defaultRuntime, 'crun');
  assert.deepEqual(config.defaultAddressPools, [{ base: '10.20.0.0/16', size: 24 }]);
  assert.deepEqual(config.registryMirrors, ['http://m.lan:5000/']);
  assert.equal(config.tls, true, 'tlsverify implies tls');
  assert.equal(config.logLevel, 'error');
  assert.equal(fromFlags('-D').logLevel, 'debug', 'debug raises the log level');
});

test('unknown keys stop start-up, named and sorted', () => {
  rejects(
    () => fromFile({ debug: true, 'storage-driver': 'overlay2', features: {} }),
    fileError("the following directives don't match any configuration option: features, storage-driver"),
  );
});

test('a key given both in the file and as a flag is an error, as in dockerd', () => {
  const flags = parseCommandLine(['-H', 'unix:///a.sock', '-H', 'unix:///b.sock', '--debug']).flags;
  rejects(
    () => fromFile({ hosts: ['tcp://127.0.0.1:2376'], debug: false }, flags),
    fileError(
      'the following directives are specified both as a flag and in the configuration file: ' +
        'hosts: (from flag: [unix:///a.sock unix:///b.sock], from file: ["tcp://127.0.0.1:2376"]), ' +
        'debug: (from flag: true, from file: false)',
    ),
  );
  // Different keys from file and flags combine.
  const config = fromFile({ debug: true }, parseCommandLine(['--data-root', '/x']).flags);
  assert.equal(config.dataRoot, '/x');
  assert.equal(config.debug, true);
});

test('wrong types name the key and what was expected', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ debug: 'yes' }, 'debug: expected true or false, got the string "yes"'],
    [{ 'live-restore': 1 }, 'live-restore: expected true or false, got number 1'],
    [{ 'data-root': 5 }, 'data-root: expected a string, got number 5'],
    [{ hosts: 'unix:///x' }, 'hosts: expected a list, got the string "unix:///x"'],
    [{ hosts: [1] }, 'hosts[0]: expected a string, got number 1'],
    [{ 'log-opts': ['a'] }, 'log-opts: expected an object, got a list'],
    [{ 'log-opts': { 'max-file': 3 } }, 'log-opts.max-file: expected a string, got number 3'],
    [
      { 'default-ulimits': { nofile: { Soft: '1', Hard: 2 } } },
      'default-ulimits.nofile.Soft: expected an integer, got the string "1"',
    ],
    [
      { 'default-ulimits': { nofile: { Soft: 1.5, Hard: 2 } } },
      'default-ulimits.nofile.Soft: expected an integer, got number 1.5',
    ],
    [{ runtimes: { runc: 'runc' } }, 'runtimes.runc: expected an object, got the string "runc"'],
    [{ 'default-address-pools': {} }, 'default-address-pools: expected a list, got an object'],
    [{ group: null }, 'group: expected a string, got null'],
    [{ tlscert: '' }, 'tlscert: must not be empty'],
  ];
  for (const [values, message] of cases) rejects(() => fromFile(values), fileError(message));
});

test('values are validated', () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ 'data-root': 'var/lib/berth' }, 'data-root: must be an absolute path, got "var/lib/berth"'],
    [{ 'exec-root': './run' }, 'exec-root: must be an absolute path, got "./run"'],
    [
      { 'log-level': 'verbose' },
      'log-level: unknown log level "verbose" (expected debug, info, warn, error, fatal)',
    ],
    [{ 'log-driver': 'json file' }, 'log-driver: invalid log driver name "json file"'],
    [
      { hosts: ['udp://1.2.3.4:5'] },
      'hosts[0]: invalid host udp://1.2.3.4:5: unsupported protocol udp (use unix://, tcp:// or fd://)',
    ],
    [
      { 'default-ulimits': { files: { Soft: 1, Hard: 1 } } },
      'default-ulimits.files: unknown ulimit (expected one of as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)',
    ],
    [
      { 'default-ulimits': { nofile: { Soft: 10, Hard: 5 } } },
      'default-ulimits.nofile: the soft limit 10 is above the hard limit 5',
    ],
    [
      { 'default-ulimits': { nofile: { Soft: -1, Hard: 5 } } },
      'default-ulimits.nofile: the soft limit -1 is above the hard limit 5',
    ],
    [
      { 'default-ulimits': { nofile: { Soft: -2, Hard: 5 } } },
      'default-ulimits.nofile: limits are -1 (unlimited) or at least 0',
    ],
    [
      { 'default-ulimits': { nofile: { Name: 'nproc', Soft: 1, Hard: 1 } } },
      'default-ulimits.nofile.Name: must be "nofile"',
    ],
    [
      { 'default-ulimits': { nofile: { Soft: 1, Hard: 1, Max: 2 } } },
      'default-ulimits.nofile.Max: unknown key (expected Name, Soft, Hard)',
    ],
    [
      { 'insecure-registries': ['http://r:5000'] },
      "insecure-registries[0]: insecure registry http://r:5000 should not contain '://'",
    ],
    [
      { 'insecure-registries': ['10.0.0.0/33'] },
      'insecure-registries[0]: "10.0.0.0/33" has a prefix longer than the address',
    ],
    [
      { 'insecure-registries': ['10.0.0/8'] },
      'insecure-registries[0]: "10.0.0/8" is not a CIDR (address/prefix)',
    ],
    [
      { 'insecure-registries': ['bad host'] },
      'insecure-registries[0]: "bad host" is neither host[:port] nor a CIDR',
    ],
    [
      { 'registry-mirrors': ['mirror.example'] },
      'registry-mirrors[0]: invalid mirror "mirror.example": not a URL',
    ],
    [
      { 'registry-mirrors': ['ftp://m'] },
      'registry-mirrors[0]: invalid mirror "ftp://m": unsupported scheme ftp',
    ],
    [
      { 'registry-mirrors': ['https://u:p@m'] },
      'registry-mirrors[0]: invalid mirror "https://u:p@m": has credentials',
    ],
    [
      { 'registry-mirrors': ['https://m/v2/'] },
      'registry-mirrors[0]: invalid mirror "https://m/v2/": path, query, or fragment at end of the URI',
    ],
    [{ runtimes: { berth: { path: '/x' } } }, "runtimes.berth: runtime name 'berth' is reserved"],
    [{ runtimes: { 'a b': { path: '/x' } } }, 'runtimes.a b: invalid runtime name'],
    [{ runtimes: { runc: {} } }, 'runtimes.runc.path: expected a string, got nothing'],
    [
      { runtimes: { runc: { path: 'runc', options: {} } } },
      'runtimes.runc.options: unknown key (expected path, runtimeArgs)',
    ],
    [
      { runtimes: { runc: { path: 'runc', runtimeArgs: [1] } } },
      'runtimes.runc.runtimeArgs[0]: expected a string, got number 1',
    ],
    [{ 'metrics-addr': '127.0.0.1' }, 'metrics-addr: expected host:port, got "127.0.0.1"'],
    [
      { 'metrics-addr': '127.0.0.1:70000' },
      'metrics-addr: invalid host tcp://127.0.0.1:70000: port 70000 is out of range',
    ],
    [{ bip: 'fd00::1/64' }, 'bip: bip must be an IPv4 address with a prefix, such as 192.168.1.1/24'],
    [{ bip: '192.168.1.1' }, 'bip: "192.168.1.1" is not a CIDR (address/prefix)'],
    [{ bip: '192.168.1.1/31' }, 'bip: a /31 network leaves no room for a bridge and containers'],
    [
      { bridge: 'a-name-far-too-long' },
      "bridge: \"a-name-far-too-long\" is not a valid interface name (1 to 15 letters, digits, '_', '.' or '-')",
    ],
    [{ mtu: 20 }, 'mtu: MTU 20 is out of range (68 to 65535)'],
    [
      { 'default-address-pools': [{ base: '10.0.0.0/16', size: 8 }] },
      "default-address-pools[0].size: must be between the base's prefix (16) and 32",
    ],
    [
      { 'default-address-pools': [{ base: '10.0.0.0/16', size: 33 }] },
      "default-address-pools[0].size: must be between the base's prefix (16) and 32",
    ],
    [
      { 'default-address-pools': [{ base: 'ten', size: 24 }] },
      'default-address-pools[0].base: "ten" is not a CIDR (address/prefix)',
    ],
    [
      { 'default-address-pools': [{ base: '10.0.0.0/8', size: 24, gateway: 'x' }] },
      'default-address-pools[0].gateway: unknown key (expected base, size)',
    ],
    [{ 'userns-remap': 'a b' }, 'userns-remap: expected "default", a user or user:group, got "a b"'],
  ];
  for (const [values, message] of cases) rejects(() => fromFile(values), fileError(message));
});

test('settings that depend on each other are checked after merging', () => {
  rejects(
    () => fromFile({ tlsverify: true, tlscert: '/c' }),
    'tlsverify needs tlscacert, tlscert and tlskey (missing: tlscacert, tlskey)',
  );
  rejects(() => fromFlags('--tls', '--tlscert', '/c'), 'tls needs tlscert and tlskey');
  rejects(
    () => fromFile({ 'default-runtime': 'runc' }),
    'default-runtime: no runtime named "runc" (known: berth)',
  );
});

test('flag values are checked with the flag named', () => {
  rejects(() => fromFlags('--data-root', 'rel'), '--data-root: must be an absolute path, got "rel"');
  rejects(() => fromFlags('--log-opt', 'novalue'), '--log-opt: expected name=value, got "novalue"');
  rejects(() => fromFlags('--default-ulimit', 'nofile=a:b'), '--default-ulimit: "a" is not an integer');
  rejects(() => fromFlags('--add-runtime', 'runc'), '--add-runtime: expected name=value, got "runc"');
  rejects(
    () => fromFlags('--default-address-pool', 'base=10.0.0.0/8'),
    '--default-address-pool[0].size: expected an integer, got nothing',
  );
  rejects(() => fromFlags('-H', 'tcp://x:y'), '--host[0]: invalid host tcp://x:y: bad port "y"');
});

test('the file must be a JSON object; syntax errors carry line and column', () => {
  assert.deepEqual(parseConfigFile('{"debug": true}'), { debug: true });
  assert.throws(() => parseConfigFile('[]'), { message: 'expected a JSON object, got a list' });
  assert.throws(() => parseConfigFile('{\n  "debug": true,\n}\n'), {
    message: 'invalid JSON at line 3, column 1: expected a property name in double quotes, found "}"',
  });
});

test('a reload changes only the reloadable settings and reports them', () => {
  const current = fromFile({ debug: false, 'data-root': '/a' });
  const next = fromFile({ debug: true, 'data-root': '/b', 'registry-mirrors': ['https://m'] });
  const attributes = applyReload(current, next);
  assert.equal(current.debug, true);
  assert.equal(current.logLevel, 'debug');
  assert.deepEqual(current.registryMirrors, ['https://m/']);
  assert.equal(current.dataRoot, '/a', 'data-root needs a restart');
  assert.deepEqual(attributes, {
    debug: 'true',
    'log-level': 'debug',
    'live-restore': 'false',
    'insecure-registries': '[]',
    'registry-mirrors': '["https://m/"]',
  });
});
