/**
 * What a command runs with: the process's streams (or test doubles), the environment, the global
 * flags, and a lazily created API client for the daemon chosen by -H, BERTH_HOST or DOCKER_HOST.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Os from 'node:os';
import { join } from 'node:path';
import { ApiClient, DEFAULT_HOST, type TlsFiles } from './client.js';
import { CommandError } from './errors.js';
import { versionCacheDir } from './version-cache.js';

export interface InputStream extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

export interface OutputStream extends NodeJS.WritableStream {
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

export interface Streams {
  stdin: InputStream;
  stdout: OutputStream;
  stderr: OutputStream;
}

export interface GlobalOptions {
  hosts: string[];
  configDir?: string;
  tls: boolean;
  tlsVerify: boolean;
  tlsCaCert?: string;
  tlsCert?: string;
  tlsKey?: string;
  debug: boolean;
}

export class CliContext {
  private apiClient?: ApiClient;
  /** Signal handlers and terminal modes to undo when the command ends. */
  private readonly cleanups: Array<() => void> = [];

  constructor(
    readonly streams: Streams,
    readonly env: NodeJS.ProcessEnv,
    readonly options: GlobalOptions,
  ) {}

  get stdout(): OutputStream {
    return this.streams.stdout;
  }

  get stderr(): OutputStream {
    return this.streams.stderr;
  }

  out(text: string): void {
    this.streams.stdout.write(text);
  }

  err(text: string): void {
    this.streams.stderr.write(text);
  }

  /** The daemon address: -H, then BERTH_HOST, then DOCKER_HOST, then berthd's socket. */
  get host(): string {
    if (this.options.hosts.length > 1) throw new CommandError('specify only one -H');
    return (
      this.options.hosts[0] ?? nonEmpty(this.env.BERTH_HOST) ?? nonEmpty(this.env.DOCKER_HOST) ?? DEFAULT_HOST
    );
  }

  /** The docker CLI's configuration directory: --config, DOCKER_CONFIG, ~/.docker. */
  get configDir(): string {
    return (
      this.options.configDir ??
      nonEmpty(this.env.DOCKER_CONFIG) ??
      join(this.env.HOME ?? homeDirectory(), '.docker')
    );
  }

  client(): ApiClient {
    this.apiClient ??= new ApiClient({
      host: this.host,
      tls: this.tlsFiles(),
      apiVersion: nonEmpty(this.env.BERTH_API_VERSION) ?? nonEmpty(this.env.DOCKER_API_VERSION),
      versionCacheDir: versionCacheDir(this.env),
    });
    return this.apiClient;
  }

  onCleanup(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  close(): void {
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      try {
        cleanup();
      } catch {
        // Best effort: the process is ending.
      }
    }
    this.apiClient?.close();
  }

  /** TLS like the docker CLI: --tlsverify (or DOCKER_TLS_VERIFY) verifies with the CA; --tls does not. */
  private tlsFiles(): TlsFiles | undefined {
    const verify = this.options.tlsVerify || nonEmpty(this.env.DOCKER_TLS_VERIFY) !== undefined;
    if (!verify && !this.options.tls) return undefined;
    const certDir = nonEmpty(this.env.DOCKER_CERT_PATH) ?? this.configDir;
    const read = (explicit: string | undefined, file: string): Buffer | undefined => {
      const path = explicit ?? join(certDir, file);
      try {
        return readFileSync(path);
      } catch (err) {
        if (explicit === undefined && (err as { code?: string }).code === 'ENOENT') return undefined;
        throw new CommandError(`could not read TLS file ${path}: ${(err as Error).message}`);
      }
    };
    const files: TlsFiles = { verify };
    if (verify) files.ca = read(this.options.tlsCaCert, 'ca.pem');
    files.cert = read(this.options.tlsCert, 'cert.pem');
    files.key = read(this.options.tlsKey, 'key.pem');
    return files;
  }
}

/** The home directory when HOME is unset: node:os is loaded only then, not at every start. */
function homeDirectory(): string {
  return (createRequire(import.meta.url)('node:os') as typeof Os).homedir();
}

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value === '' ? undefined : value;
