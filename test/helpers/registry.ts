/**
 * A real distribution-v2 registry (Debian's docker-registry) on a free port of 127.0.0.1 with a
 * temporary storage directory. Stop it with stop(); the directory goes with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execOk } from './exec.js';

export const REGISTRY_BINARY = '/usr/bin/docker-registry';

export interface Registry {
  /** host:port, for image references. */
  host: string;
  /** http://host:port */
  url: string;
  stop(): Promise<void>;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function answersV2(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.status === 200 || response.status === 401;
  } catch {
    return false;
  }
}

function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

async function startOnce(dir: string, port: number, extraConfig: string[]): Promise<Registry | undefined> {
  const config = join(dir, `config-${port}.yml`);
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'storage')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...extraConfig,
      '',
    ].join('\n'),
  );
  const child = spawn(REGISTRY_BINARY, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      if (/address already in use/.test(stderr)) return undefined;
      throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr.trim()}`);
    }
    if (await answersV2(url)) {
      return { host: `127.0.0.1:${port}`, url, stop: () => stopProcess(child) };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stopProcess(child);
  throw new Error(`docker-registry did not answer /v2/ within 15 s: ${stderr.trim()}`);
}

/**
 * Start docker-registry with its storage and config in `dir` (which the caller removes), on a
 * free port; `extraConfig` lines are appended to the config (e.g. an `auth:` section).
 */
export async function startRegistryIn(dir: string, extraConfig: string[] = []): Promise<Registry> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const registry = await startOnce(dir, await freePort(), extraConfig);
    if (registry) return registry;
  }
  throw new Error('no free port for docker-registry after 5 attempts');
}

export async function startRegistry(): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-registry-'));
  try {
    const registry = await startRegistryIn(dir);
    return {
      ...registry,
      stop: async () => {
        await registry.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Copy an image with skopeo (for example from an OCI layout into the registry), over plain http. */
export async function skopeoCopy(source: string, destination: string): Promise<void> {
  await execOk(
    'skopeo',
    [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      source,
      destination,
    ],
    { timeoutMs: 120_000 },
  );
}
