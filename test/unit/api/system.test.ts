import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { API_VERSION, BERTH_VERSION, MIN_API_VERSION } from '../../../src/common/version.js';
import { EventBus } from '../../../src/engine/events.js';
import type { HostFacts } from '../../../src/api/host-info.js';
import { Router } from '../../../src/api/router.js';
import { ApiServer } from '../../../src/api/server.js';
import {
  buildInfo,
  buildVersion,
  maskProxyCredentials,
  registerSystemRoutes,
  registryConfig,
  type InfoSettings,
  type SystemOptions,
} from '../../../src/api/system.js';

const settings: InfoSettings = {
  dataRoot: '/srv/berth',
  debug: true,
  logDriver: 'local',
  liveRestore: true,
  defaultRuntime: 'berth',
  runtimes: { berth: { path: '/usr/libexec/berth-shim' }, runc: { path: 'runc', runtimeArgs: ['--debug'] } },
  insecureRegistries: ['registry.lan:5000', '10.0.0.0/8'],
  registryMirrors: ['https://mirror.example/'],
  defaultAddressPools: [{ base: '10.10.0.0/16', size: 24 }],
  usernsRemap: 'default',
};

const facts: HostFacts = {
  kernelVersion: '6.1.0-test',
  operatingSystem: 'Debian GNU/Linux 12 (bookworm)',
  osVersion: '12',
  architecture: 'x86_64',
  ncpu: 4,
  memTotal: 8_000_000_000,
  hostname: 'node1',
  cgroupVersion: '2',
  cgroupFeatures: {
    MemoryLimit: true,
    SwapLimit: true,
    KernelMemoryTCP: false,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: true,
    PidsLimit: false,
    OomKillDisable: false,
  },
  backingFilesystem: 'xfs',
  ipv4Forwarding: false,
  seccomp: true,
};

const options = (extra: Partial<SystemOptions> = {}): SystemOptions => ({
  id: 'engine-id',
  events: new EventBus(),
  settings: () => settings,
  ...extra,
});

test('/info reports the daemon view with zero counts when no engine is attached', () => {
  const info = buildInfo(
    options({ warnings: () => ['WARNING: API is accessible on http://0.0.0.0:2375 without encryption.'] }),
    facts,
    {},
    12,
  );
  assert.equal(info.ID, 'engine-id');
  assert.deepEqual(
    [info.Containers, info.ContainersRunning, info.ContainersPaused, info.ContainersStopped, info.Images],
    [0, 0, 0, 0, 0],
  );
  assert.equal(info.Name, 'node1');
  assert.equal(info.DockerRootDir, '/srv/berth');
  assert.equal(info.Driver, 'overlayfs');
  assert.deepEqual(info.DriverStatus, [['Backing Filesystem', 'xfs']]);
  assert.equal(info.CgroupDriver, 'cgroupfs');
  assert.equal(info.CgroupVersion, '2');
  assert.equal(info.OSType, 'linux');
  assert.equal(info.Architecture, 'x86_64');
  assert.equal(info.NCPU, 4);
  assert.equal(info.MemTotal, 8_000_000_000);
  assert.equal(info.ServerVersion, BERTH_VERSION);
  assert.equal(info.Debug, true);
  assert.equal(info.LoggingDriver, 'local');
  assert.equal(info.LiveRestoreEnabled, true);
  assert.equal(info.NFd, 12);
  assert.equal(info.DefaultRuntime, 'berth');
  assert.deepEqual(info.Runtimes.runc, { path: 'runc', runtimeArgs: ['--debug'] });
  assert.deepEqual(info.SecurityOptions, ['name=seccomp,profile=builtin', 'name=cgroupns', 'name=userns']);
  assert.deepEqual(info.DefaultAddressPools, [{ Base: '10.10.0.0/16', Size: 24 }]);
  assert.equal(info.Swarm.LocalNodeState, 'inactive');
  assert.equal(info.IPv4Forwarding, false);
  assert.deepEqual(info.Warnings, [
    'WARNING: No pids limit support',
    'WARNING: API is accessible on http://0.0.0.0:2375 without encryption.',
  ]);
});

test('the engine fills in counts and details; its warnings are added to the daemon ones', () => {
  const info = buildInfo(
    options(),
    facts,
    {
      Containers: 3,
      ContainersRunning: 1,
      ContainersPaused: 1,
      ContainersStopped: 1,
      Images: 7,
      Plugins: {
        Volume: ['local'],
        Network: ['bridge', 'host', 'none'],
        Authorization: null,
        Log: ['json-file', 'local'],
      },
      Warnings: ['WARNING: IPv4 forwarding is disabled'],
    },
    3,
  );
  assert.deepEqual([info.Containers, info.ContainersRunning, info.Images], [3, 1, 7]);
  assert.deepEqual(info.Plugins.Network, ['bridge', 'host', 'none']);
  assert.deepEqual(info.Warnings, ['WARNING: No pids limit support', 'WARNING: IPv4 forwarding is disabled']);
});

test('registry configuration lists insecure hosts, CIDRs and mirrors like dockerd', () => {
  assert.deepEqual(registryConfig(settings), {
    InsecureRegistryCIDRs: ['127.0.0.0/8', '10.0.0.0/8'],
    IndexConfigs: {
      'docker.io': { Name: 'docker.io', Mirrors: ['https://mirror.example/'], Secure: true, Official: true },
      'registry.lan:5000': { Name: 'registry.lan:5000', Mirrors: [], Secure: false, Official: false },
    },
    Mirrors: ['https://mirror.example/'],
  });
});

test('proxy credentials are masked', () => {
  assert.equal(maskProxyCredentials('http://user:secret@proxy:3128'), 'http://xxxxx:xxxxx@proxy:3128');
  assert.equal(maskProxyCredentials('http://proxy:3128'), 'http://proxy:3128');
  assert.equal(maskProxyCredentials(''), '');
});

test('/version has Docker shape, Details keys sorted', () => {
  const version = buildVersion('6.1.0-test', '2025-01-02T03:04:05.000Z', 'abc123');
  assert.equal(version.Platform.Name, 'Berth Engine');
  assert.equal(version.Version, BERTH_VERSION);
  assert.equal(version.ApiVersion, API_VERSION);
  assert.equal(version.MinAPIVersion, MIN_API_VERSION);
  assert.equal(version.GoVersion, `node ${process.version}`);
  assert.equal(version.Os, 'linux');
  assert.equal(version.KernelVersion, '6.1.0-test');
  const engine = version.Components[0];
  assert.equal(engine?.Name, 'Engine');
  assert.deepEqual(Object.keys(engine?.Details ?? {}), [
    'ApiVersion',
    'Arch',
    'BuildTime',
    'Experimental',
    'GitCommit',
    'GoVersion',
    'KernelVersion',
    'MinAPIVersion',
    'Os',
  ]);
  assert.equal(engine?.Details.GitCommit, 'abc123');
  assert.equal(buildVersion('k').BuildTime, undefined);
});

test('/_ping answers GET and HEAD with Docker headers; /info and /version are served', async (t) => {
  const router = new Router();
  registerSystemRoutes(router, options({ engineInfo: async () => ({ Images: 5 }) }));
  const api = new ApiServer({ router });
  const dir = await mkdtemp(join(tmpdir(), 'berth-system-'));
  const socket = join(dir, 'api.sock');
  const server = http.createServer();
  api.attach(server);
  server.listen(socket);
  await once(server, 'listening');
  t.after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });
  const call = (
    method: string,
    path: string,
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> =>
    new Promise((resolve, reject) => {
      http
        .request({ socketPath: socket, method, path, agent: false }, (res) => {
          let body = '';
          res.on('data', (chunk) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        })
        .on('error', reject)
        .end();
    });
  for (const method of ['GET', 'HEAD']) {
    const ping = await call(method, '/_ping');
    assert.equal(ping.status, 200);
    assert.equal(ping.body, method === 'GET' ? 'OK' : '');
    assert.equal(ping.headers['api-version'], API_VERSION);
    assert.equal(ping.headers['builder-version'], '1');
    assert.equal(ping.headers['docker-experimental'], 'false');
    assert.equal(ping.headers['cache-control'], 'no-cache, no-store, must-revalidate');
    assert.equal(ping.headers['pragma'], 'no-cache');
    assert.equal(ping.headers['ostype'], 'linux');
    assert.equal(ping.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(ping.headers['content-length'], method === 'GET' ? '2' : '0');
  }
  const info = JSON.parse((await call('GET', '/v1.50/info')).body);
  assert.equal(info.Images, 5);
  assert.equal(info.Containers, 0);
  assert.equal(info.DockerRootDir, '/srv/berth');
  const version = JSON.parse((await call('GET', '/version')).body);
  assert.equal(version.ApiVersion, API_VERSION);
  assert.match(version.KernelVersion, /^\d+\.\d+/);
  // What a dockerd in no swarm and with no plugins answers.
  const plugins = await call('GET', '/v1.41/plugins');
  assert.deepEqual([plugins.status, JSON.parse(plugins.body)], [200, []]);
  for (const path of ['/swarm', '/v1.41/services', '/nodes/abc', '/v1.41/secrets', '/configs', '/tasks']) {
    const answer = await call('GET', path);
    assert.equal(answer.status, 503, path);
    assert.match(
      JSON.parse(answer.body).message,
      /^This node is not a swarm manager\. Use "docker swarm init"/,
    );
  }
  const leave = await call('POST', '/swarm/leave');
  assert.deepEqual([leave.status, JSON.parse(leave.body).message], [503, 'This node is not part of a swarm']);
  assert.equal((await call('POST', '/swarm/init')).status, 503);
});

test('/info Warnings is null when there is none, as dockerd answers', () => {
  const quiet: HostFacts = { ...facts, cgroupFeatures: { ...facts.cgroupFeatures, PidsLimit: true } };
  assert.equal(buildInfo(options(), quiet, {}, 1).Warnings, null);
  assert.deepEqual(buildInfo(options(), quiet, { Warnings: ['WARNING: x'] }, 1).Warnings, ['WARNING: x']);
});
