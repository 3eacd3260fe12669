/**
 * berthd for integration tests: started from bin/berthd.js (or $BERTHD_SCRIPT) with the sandbox's
 * data root, an exec root and a unix socket inside the sandbox, an optional daemon.json, and the
 * docker CLI pointed at it. startBerthd waits until /_ping answers; stop() sends SIGTERM and waits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { freePort } from './registry.js';

export { freePort };
import { execProgram, type ExecResult } from './exec.js';
import type { Sandbox } from './sandbox.js';
import { testSubnet } from './test-subnets.js';

export const BERTHD_SCRIPT =
  process.env.BERTHD_SCRIPT ?? fileURLToPath(new URL('../../../bin/berthd.js', import.meta.url));

export interface BerthdOptions {
  /** Written to <sandbox>/daemon.json and passed with --config-file. */
  config?: Record<string, unknown>;
  /** More flags. */
  args?: string[];
  /** Listen on the sandbox socket (default); false when `args` bring their own -H. */
  socket?: boolean;
  /** Run berthd under this program (e.g. systemd-socket-activate and its arguments). */
  wrapper?: string[];
  /** Where to wait for /_ping: the sandbox socket by default. */
  ping?: http.RequestOptions;
}

export interface Berthd {
  socket: string;
  dockerHost: string;
  execRoot: string;
  child: ChildProcess;
  /** Everything berthd wrote so far (stdout and stderr). */
  output(): string;
  /** SIGTERM (or `signal`) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request to berthd, bounded in time. */
export function apiRequest(target: http.RequestOptions, path: string, method = 'GET'): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ ...target, path, method, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** The paths and flags of a sandboxed berthd. */
export async function berthdArgs(
  sandbox: Sandbox,
  options: BerthdOptions = {},
  t?: TestContext,
): Promise<{ args: string[]; socket: string; execRoot: string }> {
  const socket = join(sandbox.root, 'berth.sock');
  const execRoot = join(sandbox.runRoot, 'exec');
  const args = ['--data-root', sandbox.dataRoot, '--exec-root', execRoot];
  // Daemons of tests running side by side get their own bridge, address pool and firewall table.
  const config = options.config ?? {};
  if (!('bridge' in config)) args.push('--bridge', sandbox.name('br'));
  if (!('cni-config-dir' in config)) args.push('--cni-config-dir', join(sandbox.root, 'cni'));
  if (!('default-address-pools' in config) && !('bip' in config) && t)
    args.push('--default-address-pool', `base=${await testSubnet(t)},size=24`);
  if (options.socket !== false) args.push('-H', `unix://${socket}`);
  if (options.config !== undefined) {
    const file = join(sandbox.root, 'daemon.json');
    await writeFile(file, JSON.stringify(options.config, null, 2));
    args.push('--config-file', file);
  } else {
    // Never read the machine's /etc/berth/daemon.json.
    const file = join(sandbox.root, 'empty-daemon.json');
    await writeFile(file, '{}');
    args.push('--config-file', file);
  }
  args.push(...(options.args ?? []));
  return { args, socket, execRoot };
}

/** The nftables table of the sandbox's berthd (the sandbox removes tables named with its id). */
export const firewallTable = (sandbox: Sandbox): string => `berth_${sandbox.id}`;

/** Runs berthd expecting it to stop by itself (a configuration error), bounded in time. */
export async function runBerthd(sandbox: Sandbox, options: BerthdOptions = {}): Promise<ExecResult> {
  const { args } = await berthdArgs(sandbox, options);
  return execProgram(process.execPath, [BERTHD_SCRIPT, ...args], {
    timeoutMs: 30_000,
    env: { ...process.env, BERTH_FIREWALL_TABLE: firewallTable(sandbox) },
  });
}

export async function startBerthd(
  t: TestContext,
  sandbox: Sandbox,
  options: BerthdOptions = {},
): Promise<Berthd> {
  const { args, socket, execRoot } = await berthdArgs(sandbox, options, t);
  const command = [...(options.wrapper ?? []), process.execPath, BERTHD_SCRIPT, ...args];
  const child = spawn(command[0] ?? '', command.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, BERTH_FIREWALL_TABLE: firewallTable(sandbox) },
  });
  if (child.pid !== undefined) sandbox.trackProcess(child.pid);
  let output = '';
  child.stdout?.on('data', (chunk) => (output += chunk));
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const stop = async (
    signal: NodeJS.Signals = 'SIGTERM',
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    return { code: child.exitCode, signal: child.signalCode };
  };
  t.after(() => stop());
  const target = options.ping ?? { socketPath: socket };
  // Wait for /_ping: at most 200 tries 50 ms apart, or until berthd exits.
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`berthd exited (${child.exitCode ?? child.signalCode}) before answering:\n${output}`);
    }
    const answered = await apiRequest(target, '/_ping').then(
      (res) => res.status === 200 && res.body === 'OK',
      () => false,
    );
    if (answered) break;
    if (attempt >= 200) {
      await stop('SIGKILL');
      throw new Error(`berthd did not answer /_ping:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { socket, dockerHost: `unix://${socket}`, execRoot, child, output: () => output, stop };
}

/** The docker CLI with its own empty configuration directory, talking to `host`. */
export async function docker(
  sandbox: Sandbox,
  host: string | undefined,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<ExecResult> {
  const config = join(sandbox.root, 'docker-config');
  await mkdir(config, { recursive: true });
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([name]) => !name.startsWith('DOCKER_') && !name.startsWith('LISTEN_'),
    ),
  );
  return execProgram('docker', args, {
    timeoutMs: 30_000,
    env: {
      ...clean,
      DOCKER_CONFIG: config,
      DOCKER_CERT_PATH: config,
      ...(host === undefined ? {} : { DOCKER_HOST: host }),
      ...env,
    },
  });
}
