/**
 * The berthd a soak runs against, shared by bench/soak.ts and test/integration/soak.test.ts: a
 * sandboxed berthd (its own data root, exec root, socket, bridge, address pool and nftables table,
 * test/helpers/berthd.ts) with its Prometheus listener on a free 127.0.0.1 port (the only place
 * the V8 heap is visible from outside), the busybox fixture loaded, and the docker CLI pointed at
 * it. Everything it creates lives under the sandbox, whose cleanup removes it.
 *
 * berthd's code has no way to collect garbage on request, and without a collection the heap
 * and RSS figures mostly measure garbage. So the soak starts berthd with NODE_OPTIONS
 * `--expose-gc` and a one-line preload that runs a full collection on SIGUSR2 (written into
 * the sandbox): berthd itself is unchanged and no endpoint is opened.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ensureFixture } from '../fixtures/index.js';
import type { ExecResult } from '../test/helpers/exec.js';
import { firewallTable, freePort, startBerthd } from '../test/helpers/berthd.js';
import type { Sandbox } from '../test/helpers/sandbox.js';
import { execClient } from './lib/exec.js';

export interface DockerOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface SoakTarget {
  /** The directory holding the data root, exec root and socket: mounts are counted below it. */
  root: string;
  dataRoot: string;
  execRoot: string;
  socket: string;
  pid: number;
  /** The default network's bridge. */
  bridge: string;
  /** berthd's nftables table (family inet). */
  firewallTable: string;
  /** Every container and build step runs below this cgroup parent. */
  cgroupParent: string;
  metricsPort: number;
  /** Scratch space of the workload (build context, docker CLI configuration). */
  workDir: string;
  /** The docker CLI against this berthd; never throws on an exit code. */
  docker(args: string[], options?: DockerOptions): Promise<ExecResult>;
}

/** Start berthd in `sandbox` and load busybox; `t.after` stops it. */
export async function startSoakTarget(t: TestContext, sandbox: Sandbox): Promise<SoakTarget> {
  const workDir = join(sandbox.root, 'soak');
  const dockerConfig = join(workDir, 'docker-config');
  await mkdir(dockerConfig, { recursive: true });
  const gcHook = join(workDir, 'gc-on-sigusr2.cjs');
  await writeFile(gcHook, "process.on('SIGUSR2', () => globalThis.gc?.());\n");
  const metricsPort = await freePort();
  const berthd = await startBerthd(t, sandbox, {
    config: { 'metrics-addr': `127.0.0.1:${metricsPort}` },
    wrapper: ['env', `NODE_OPTIONS=--expose-gc --require=${gcHook}`],
  });
  const pid = berthd.child.pid;
  if (pid === undefined) throw new Error('berthd has no process id');
  // The docker CLI must not pick up the caller's daemon, context or credentials.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('DOCKER_')));
  const docker = (args: string[], options: DockerOptions = {}): Promise<ExecResult> =>
    execClient('docker', args, {
      timeoutMs: options.timeoutMs ?? 60_000,
      env: { ...env, DOCKER_HOST: berthd.dockerHost, DOCKER_CONFIG: dockerConfig, ...options.env },
    });
  const target: SoakTarget = {
    root: sandbox.root,
    dataRoot: sandbox.dataRoot,
    execRoot: berthd.execRoot,
    socket: berthd.socket,
    pid,
    bridge: sandbox.name('br'),
    firewallTable: firewallTable(sandbox),
    cgroupParent: sandbox.cgroupParent,
    metricsPort,
    workDir,
    docker,
  };
  const loaded = await docker(['load', '-i', (await ensureFixture('busybox')).dockerArchive], {
    timeoutMs: 120_000,
  });
  if (loaded.code !== 0) throw new Error(`docker load of busybox failed: ${loaded.stderr.trim()}`);
  await writeBuildContext(join(workDir, 'build'));
  return target;
}

/** A small build whose every step is cached after its first run. */
async function writeBuildContext(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'Dockerfile'),
    [
      'FROM busybox',
      'RUN echo built > /built.txt',
      'COPY stamp.txt /stamp.txt',
      'CMD ["cat", "/built.txt"]',
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'stamp.txt'), 'soak\n');
}
