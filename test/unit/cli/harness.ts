/**
 * Running berth (in-process, with captured streams) and the real docker CLI (as a child process)
 * against the same fake Engine API, and reducing what they sent to comparable records.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { main } from '../../../src/cli/main.js';
import { FakeDockerApi, type RecordedRequest } from '../../helpers/fake-docker-api.js';

export const DOCKER = '/usr/local/bin/docker';

/** Where berth remembers daemon API versions (version-cache.ts): this test process's own. */
const RUNTIME_DIR = mkdtempSync(join(tmpdir(), 'berth-cli-runtime-'));
process.on('exit', () => rmSync(RUNTIME_DIR, { recursive: true, force: true }));
export const haveDocker = existsSync(DOCKER);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

class Capture extends Writable {
  text = '';
  isTTY = false;
  columns?: number;
  rows?: number;
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString('utf8');
    callback();
  }
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  stdin?: string | Buffer;
  /** A stream to use as stdin instead (a pretend terminal, for instance). */
  stdinStream?: Readable;
  /** Pretend stdout is a terminal of this width. */
  terminalWidth?: number;
  configDir?: string;
}

/** berth's main() with captured streams; stdin is the given bytes (or empty). */
export async function runBerth(host: string, args: string[], options: RunOptions = {}): Promise<CliResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  if (options.terminalWidth !== undefined) {
    stdout.isTTY = true;
    stdout.columns = options.terminalWidth;
    stdout.rows = 40;
  }
  const stdin =
    options.stdinStream ??
    (options.stdin === undefined ? Readable.from([]) : Readable.from([Buffer.from(options.stdin)]));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: tmpdir(),
    // No config.json unless a test provides one.
    DOCKER_CONFIG: join(tmpdir(), 'berth-cli-test-no-config'),
    XDG_RUNTIME_DIR: RUNTIME_DIR,
    BERTH_HOST: host,
    ...options.env,
  };
  if (options.configDir !== undefined) env.DOCKER_CONFIG = options.configDir;
  const code = await main(args, { stdin, stdout, stderr }, env);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** The docker CLI pointed at the fake. */
export function runDocker(host: string, args: string[], options: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: tmpdir(),
      DOCKER_HOST: host,
      ...options.env,
    };
    if (options.configDir !== undefined) env.DOCKER_CONFIG = options.configDir;
    const child = execFile(
      DOCKER,
      args,
      { env, timeout: 30_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(error);
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.end(options.stdin ?? '');
  });
}

export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  body: unknown;
}

/** What matters of a request: method, path, query (sorted), body (parsed JSON, or its size). */
export function records(requests: RecordedRequest[], ignoreQuery: string[] = []): RequestRecord[] {
  return requests
    .filter((r) => r.path !== '/_ping')
    .map((r) => {
      const query = new URLSearchParams(r.query);
      for (const key of ignoreQuery) query.delete(key);
      return {
        method: r.method,
        path: r.path,
        query: query.toString(),
        body: r.json !== undefined ? r.json : r.body.length > 0 ? `<${r.body.length} bytes>` : undefined,
      };
    });
}

/** docker's own name in messages, as berth words them. */
export function asBerth(text: string): string {
  return text
    .replace(/'docker /g, "'berth ")
    .replace(/^docker: /gm, 'berth: ')
    .replace(/Usage: {2}docker/g, 'Usage:  berth')
    .replace(/unknown command: docker /g, 'unknown command: berth ');
}

/** A temporary directory removed after the test. */
export async function tempDir(
  t: { after: (fn: () => Promise<void>) => void },
  prefix = 'berth-cli-',
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface Comparison {
  docker: CliResult;
  berth: CliResult;
  dockerRequests: RequestRecord[];
  berthRequests: RequestRecord[];
}

/**
 * Runs the same arguments through docker and berth, each against its own fake set up the same
 * way (so stateful answers start over); returns both sides.
 */
export async function compareWithDocker(
  setup: (fake: FakeDockerApi) => void,
  args: string[],
  options: RunOptions & { ignoreQuery?: string[] } = {},
): Promise<Comparison> {
  const run = async (
    runner: (host: string, args: string[], options: RunOptions) => Promise<CliResult>,
  ): Promise<[CliResult, RequestRecord[]]> => {
    const fake = await FakeDockerApi.start();
    try {
      setup(fake);
      const result = await runner(fake.host, args, options);
      return [result, records(fake.requests, options.ignoreQuery)];
    } finally {
      await fake.close();
    }
  };
  const [docker, dockerRequests] = await run(runDocker);
  const [berth, berthRequests] = await run(runBerth);
  return {
    docker: { ...docker, stdout: asBerth(docker.stdout), stderr: asBerth(docker.stderr) },
    berth,
    dockerRequests,
    berthRequests,
  };
}
