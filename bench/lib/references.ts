/**
 * The engines under test, set up by the suite itself and torn down afterwards: berthd on its own
 * roots, socket, bridge, address pool and nftables table; containerd + dockerd on their own roots
 * and sockets; podman with its own storage and a containers.conf in the work directory. Each gets
 * the same busybox fixture image. The host's firewall is put back as it was (dockerd leaves its
 * iptables chains and docker0 behind even on a clean shutdown).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { ensureFixture } from '../../fixtures/index.js';
import { execOk, execProgram, type ExecResult } from '../../test/helpers/exec.js';
import { onCleanup } from './cleanup.js';
import { execClient } from './exec.js';
import { BERTHD_BIN, BERTH_BIN } from './paths.js';
import { deleteLink, linkExists, restoreFirewall, snapshotFirewall, unmountUnder } from './host.js';

export type EngineKind = 'berth' | 'docker' | 'podman';

export interface CliOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** One client + daemon pair: the same work is expressed as the same CLI arguments. */
export interface Engine {
  /** e.g. "berthd (docker CLI)". */
  name: string;
  kind: EngineKind;
  /** The busybox fixture as this engine names it. */
  image: string;
  cli(args: string[], options?: CliOptions): Promise<ExecResult>;
  /** Like cli, but a non-zero exit is an error. */
  ok(args: string[], options?: CliOptions): Promise<string>;
  /** The daemon's process id (none for podman). */
  daemonPid?: number;
  /** The command name of the per-container monitor process (berth-shim, containerd-shim-runc-v2, conmon). */
  monitor: string;
}

export interface Engines {
  /** The docker CLI against berthd. */
  berthdDocker: Engine;
  /** berth's own CLI against berthd. */
  berth: Engine;
  dockerd?: Engine;
  podman?: Engine;
  versions: Record<string, string>;
  /** 10.X.0.0/16 blocks in use by the engines' bridges (for the firewall filter). */
  subnets: string[];
}

const REFERENCE_PACKAGES = ['runc', 'crun', 'docker.io', 'podman', 'iperf3', 'docker-registry', 'skopeo'];

async function installMissing(packages: string[]): Promise<void> {
  const missing: string[] = [];
  for (const name of packages) {
    const status = await execProgram('dpkg-query', ['-W', '-f=${Status}', name]);
    if (!status.stdout.includes('install ok installed')) missing.push(name);
  }
  if (missing.length === 0) return;
  process.stderr.write(`bench: installing ${missing.join(' ')}\n`);
  await execOk('apt-get', ['update', '-q'], { timeoutMs: 300_000 });
  await execOk('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], {
    timeoutMs: 900_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** Where the integration tests mark the 10.X.0.0/16 blocks their daemons use (test-subnets.ts). */
const TEST_SUBNET_MARKERS = '/tmp/berth-test-subnets';

/**
 * 10.X.0.0/16 blocks (X in 200..249) that the host routes nothing into and no test daemon holds;
 * marked with this process id like the tests' own, so tests starting meanwhile avoid them.
 */
async function freeSubnets(count: number): Promise<string[]> {
  const routes = await readFile('/proc/net/route', 'utf8').catch(() => '');
  const used = new Set<number>();
  for (const line of routes.split('\n').slice(1)) {
    const hex = line.split('\t')[1];
    if (!hex || hex.length !== 8) continue;
    // /proc/net/route prints the destination little-endian.
    if (parseInt(hex.slice(6, 8), 16) === 10) used.add(parseInt(hex.slice(4, 6), 16));
  }
  const start = 200 + (process.pid % 50);
  const free: number[] = [];
  for (let i = 0; i < 50 && free.length < count; i++) {
    const octet = 200 + ((start - 200 + i) % 50);
    if (used.has(octet)) continue;
    try {
      await mkdir(TEST_SUBNET_MARKERS, { recursive: true });
      await writeFile(join(TEST_SUBNET_MARKERS, String(octet)), String(process.pid), { flag: 'wx' });
    } catch {
      continue;
    }
    onCleanup(`subnet marker ${octet}`, () => rm(join(TEST_SUBNET_MARKERS, String(octet)), { force: true }));
    free.push(octet);
  }
  if (free.length < count) throw new Error('no free 10.X.0.0/16 block for the bench bridges');
  return free.map((octet) => `10.${octet}.0.0/16`);
}

function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith('DOCKER_') && !name.startsWith('CONTAINERS_'),
    ),
  );
  return { ...env, ...extra };
}

function makeEngine(
  base: Omit<Engine, 'cli' | 'ok'>,
  file: string,
  prefix: string[],
  env: NodeJS.ProcessEnv,
): Engine {
  const cli = (args: string[], options: CliOptions = {}): Promise<ExecResult> =>
    execClient(file, [...prefix, ...args], {
      timeoutMs: options.timeoutMs ?? 120_000,
      env: { ...env, ...options.env },
      cwd: options.cwd,
    });
  const ok = async (args: string[], options: CliOptions = {}): Promise<string> => {
    const result = await cli(args, options);
    if (result.code !== 0) {
      throw new Error(
        `${base.name}: ${args.join(' ')} exited ${result.code}: ${result.stderr.trim().slice(-2000)}`,
      );
    }
    return result.stdout;
  };
  return { ...base, cli, ok };
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, path: '/_ping', agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Spawn a daemon in its own process group (a ^C to the suite must not kill it before teardown). */
function startDaemon(file: string, args: string[], log: string, env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.once('exit', () => void writeFile(log, output).catch(() => undefined));
  (child as ChildProcess & { output: () => string }).output = () => output;
  return child;
}

async function waitForPing(child: ChildProcess, socket: string, what: string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const output = (child as ChildProcess & { output?: () => string }).output?.() ?? '';
      throw new Error(`${what} exited before answering: ${output.slice(-2000)}`);
    }
    if (await ping(socket)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what} did not answer /_ping within 30 s`);
}

async function stopDaemon(child: ChildProcess, graceMs = 20_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Remove every container an engine still has (bounded). */
async function removeAll(engine: Engine): Promise<void> {
  const ids = (await engine.cli(['ps', '-aq'], { timeoutMs: 30_000 })).stdout.split('\n').filter(Boolean);
  for (let i = 0; i < ids.length; i += 50) {
    await engine.cli(['rm', '-f', ...ids.slice(i, i + 50)], { timeoutMs: 120_000 });
  }
}

async function setupBerthd(workDir: string, subnet: string, busyboxTar: string): Promise<Engine[]> {
  const root = join(workDir, 'berthd');
  await mkdir(root, { recursive: true });
  const socket = join(root, 'berth.sock');
  const config = join(root, 'daemon.json');
  await writeFile(config, '{}');
  const table = `berth_bench_${process.pid}`;
  const bridge = `bbench${process.pid % 1_000_000}`;
  const child = startDaemon(
    process.execPath,
    [
      BERTHD_BIN,
      '--data-root',
      join(root, 'data'),
      '--exec-root',
      join(root, 'exec'),
      '-H',
      `unix://${socket}`,
      '--config-file',
      config,
      '--bridge',
      bridge,
      '--default-address-pool',
      `base=${subnet},size=24`,
    ],
    join(workDir, 'berthd.log'),
    { ...process.env, BERTH_FIREWALL_TABLE: table },
  );
  const env = cleanEnv({ DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(root, 'docker-config') });
  const monitor = 'berth-shim';
  const berthdDocker = makeEngine(
    { name: 'berthd (docker CLI)', kind: 'berth', image: 'busybox:latest', daemonPid: child.pid, monitor },
    'docker',
    [],
    env,
  );
  const berth = makeEngine(
    { name: 'berth CLI', kind: 'berth', image: 'busybox:latest', daemonPid: child.pid, monitor },
    process.execPath,
    [BERTH_BIN],
    env,
  );
  onCleanup('berthd', async () => {
    if (child.exitCode === null) await removeAll(berthdDocker).catch(() => undefined);
    await stopDaemon(child);
    await unmountUnder(root);
    await execProgram('nft', ['delete', 'table', 'inet', table]);
    await execProgram('nft', ['delete', 'table', 'ip', table]);
    if (await linkExists(bridge)) await deleteLink(bridge);
  });
  await waitForPing(child, socket, 'berthd');
  await berthdDocker.ok(['load', '-i', busyboxTar]);
  return [berthdDocker, berth];
}

async function setupDockerd(workDir: string, subnet: string, busyboxTar: string): Promise<Engine> {
  const root = join(workDir, 'docker');
  await mkdir(root, { recursive: true });
  if (await linkExists('docker0')) throw new Error('docker0 exists: another dockerd is using this host');
  const ctdSocket = join(root, 'containerd.sock');
  const ctdConfig = join(root, 'containerd.toml');
  await writeFile(
    ctdConfig,
    [
      'version = 2',
      `root = ${JSON.stringify(join(root, 'containerd-root'))}`,
      `state = ${JSON.stringify(join(root, 'containerd-state'))}`,
      '[grpc]',
      `  address = ${JSON.stringify(ctdSocket)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(`${ctdSocket}.ttrpc`)}`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  );
  const containerd = startDaemon(
    'containerd',
    ['--config', ctdConfig],
    join(workDir, 'containerd.log'),
    process.env,
  );
  onCleanup('containerd', async () => {
    await stopDaemon(containerd);
    // Shims of this containerd outlive it; they are found by its socket path in their command line.
    const shims = await execProgram('pgrep', ['-f', `containerd-shim.*${root}`]);
    for (const pid of shims.stdout.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await unmountUnder(root);
  });
  for (let attempt = 0; attempt < 100; attempt++) {
    if (containerd.exitCode !== null) throw new Error('containerd exited at start');
    const exists = await execProgram('test', ['-S', ctdSocket]);
    if (exists.code === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const socket = join(root, 'docker.sock');
  const config = join(root, 'daemon.json');
  await writeFile(config, '{}');
  const [a, b] = subnet.split('.');
  const dockerd = startDaemon(
    'dockerd',
    [
      '--config-file',
      config,
      '--containerd',
      ctdSocket,
      '--data-root',
      join(root, 'data'),
      '--exec-root',
      join(root, 'exec'),
      '--pidfile',
      join(root, 'dockerd.pid'),
      '-H',
      `unix://${socket}`,
      '--bip',
      `${a}.${b}.0.1/24`,
      '--default-address-pool',
      `base=${a}.${b}.128.0/17,size=24`,
    ],
    join(workDir, 'dockerd.log'),
    process.env,
  );
  const engine = makeEngine(
    {
      name: 'dockerd (docker CLI)',
      kind: 'docker',
      image: 'busybox:latest',
      daemonPid: dockerd.pid,
      monitor: 'containerd-shim',
    },
    'docker',
    [],
    cleanEnv({ DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: join(root, 'docker-config') }),
  );
  onCleanup('dockerd', async () => {
    if (dockerd.exitCode === null) await removeAll(engine).catch(() => undefined);
    await stopDaemon(dockerd);
    await unmountUnder(root);
    if (await linkExists('docker0')) await deleteLink('docker0');
  });
  await waitForPing(dockerd, socket, 'dockerd');
  await engine.ok(['load', '-i', busyboxTar]);
  return engine;
}

async function setupPodman(workDir: string, subnet: string, busyboxTar: string): Promise<Engine> {
  const root = join(workDir, 'podman');
  await mkdir(join(root, 'net'), { recursive: true });
  const [a, b] = subnet.split('.');
  const conf = join(root, 'containers.conf');
  await writeFile(
    conf,
    [
      '[containers]',
      // This machine's hard limits are below podman's defaults (ENVIRONMENT.md).
      'default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]',
      '[engine]',
      'runtime = "runc"',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      `events_logfile_path = ${JSON.stringify(join(root, 'events.log'))}`,
      '[network]',
      `network_config_dir = ${JSON.stringify(join(root, 'net'))}`,
      `default_subnet = "${a}.${b}.0.0/24"`,
      '',
    ].join('\n'),
  );
  const registries = join(root, 'registries.conf');
  await writeFile(registries, 'unqualified-search-registries = []\n');
  const engine = makeEngine(
    { name: 'podman', kind: 'podman', image: 'docker.io/library/busybox:latest', monitor: 'conmon' },
    'podman',
    [
      '--root',
      join(root, 'storage'),
      '--runroot',
      join(root, 'run'),
      '--tmpdir',
      join(root, 'tmp'),
      '--storage-driver',
      'overlay',
      '--runtime',
      'runc',
    ],
    cleanEnv({ CONTAINERS_CONF: conf, CONTAINERS_REGISTRIES_CONF: registries }),
  );
  const hadBridge = await linkExists('podman0');
  onCleanup('podman', async () => {
    await engine.cli(['rm', '-af', '-t', '0'], { timeoutMs: 300_000 });
    await engine.cli(['system', 'reset', '-f'], { timeoutMs: 120_000 });
    await unmountUnder(root);
    if (!hadBridge && (await linkExists('podman0'))) await deleteLink('podman0');
  });
  await engine.ok(['load', '-i', busyboxTar]);
  return engine;
}

async function version(file: string, args: string[]): Promise<string> {
  const result = await execProgram(file, args, { timeoutMs: 30_000 }).catch(() => undefined);
  return result?.code === 0 ? (result.stdout.trim().split('\n')[0] ?? '') : 'unavailable';
}

/** Set every engine up (berthd only with `quick`), registering teardown for each step. */
export async function setupEngines(workDir: string, quick: boolean): Promise<Engines> {
  if (!quick) await installMissing(REFERENCE_PACKAGES);
  const busybox = await ensureFixture('busybox');
  const subnets = await freeSubnets(quick ? 1 : 3);
  const firewall = quick ? undefined : await snapshotFirewall();
  if (firewall) onCleanup('host firewall', () => restoreFirewall(firewall, subnets));
  const [berthdDocker, berth] = await setupBerthd(workDir, subnets[0] ?? '', busybox.dockerArchive);
  if (!berthdDocker || !berth) throw new Error('berthd setup returned no engines');
  const versions: Record<string, string> = {
    berthd: (await berthdDocker.ok(['version', '--format', '{{.Server.Version}}'])).trim(),
    'docker CLI': (await berthdDocker.ok(['version', '--format', '{{.Client.Version}}'])).trim(),
  };
  if (quick) return { berthdDocker, berth, versions, subnets };
  const dockerd = await setupDockerd(workDir, subnets[1] ?? '', busybox.dockerArchive);
  const podman = await setupPodman(workDir, subnets[2] ?? '', busybox.dockerArchive);
  versions.dockerd = (await dockerd.ok(['version', '--format', '{{.Server.Version}}'])).trim();
  versions.containerd = await version('containerd', ['--version']);
  versions.podman = await version('podman', ['--version']);
  versions.runc = await version('runc', ['--version']);
  versions.crun = await version('crun', ['--version']);
  versions.conmon = await version('conmon', ['--version']);
  return { berthdDocker, berth, dockerd, podman, versions, subnets };
}
