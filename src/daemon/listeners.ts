/**
 * The API's listeners. A unix socket is root's (mode 0660 with the `berth` group when it exists or
 * the one --group names, else 0600) and replaces a stale socket file only when nothing answers on
 * it. TCP is served only over TLS with client certificates (--tlsverify) unless --insecure-tcp-force
 * says otherwise. fd:// takes sockets from systemd socket activation.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { dirname } from 'node:path';
import { conflict, describeError, errnoCode, invalidArgument, unavailable } from '../common/errors.js';
import { formatAddress, type ListenAddress } from './hosts.js';

export const DEFAULT_GROUP = 'berth';

/** Options of every API server: long uploads must not time out, registry auth headers can be big. */
const HTTP_OPTIONS: http.ServerOptions = { requestTimeout: 0, maxHeaderSize: 1024 * 1024 };

export interface TlsFiles {
  ca?: string;
  cert: string;
  key: string;
  /** Require a client certificate signed by `ca`. */
  verify: boolean;
}

export interface ListenOptions {
  /** Group name or gid for unix sockets; explicit means a missing group is an error. */
  group: { name: string; explicit: boolean };
  tls?: TlsFiles;
  insecureTcpForce: boolean;
  /** Called with each server before it listens, to install the request handlers. */
  attach: (server: http.Server) => void;
  log: { info(message: string): void; warn(message: string): void };
  /** The environment that carries LISTEN_FDS (the process's, by default). */
  env?: NodeJS.ProcessEnv;
}

export interface Listener {
  address: string;
  server: http.Server;
  /** A warning for /info when the listener is reachable without client certificates. */
  warning?: string;
  close(): Promise<void>;
}

/** A group's gid from /etc/group text; a number is taken as a gid. */
export function resolveGroup(name: string, groupFile: string): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  for (const line of groupFile.split('\n')) {
    const [group, , gid] = line.split(':');
    if (group === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  return undefined;
}

/** Sockets passed by systemd (sd_listen_fds): descriptors 3.. when LISTEN_PID is this process. */
export function activatedSockets(env: NodeJS.ProcessEnv, pid: number): Array<{ fd: number; name: string }> {
  if (env.LISTEN_PID !== String(pid)) return [];
  const count = Number(env.LISTEN_FDS ?? '0');
  if (!Number.isSafeInteger(count) || count <= 0) return [];
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  return Array.from({ length: count }, (_, i) => ({ fd: 3 + i, name: names[i] || 'unknown' }));
}

/** The activated descriptors an fd:// address selects: all, one by number, or those with a name. */
export function selectActivated(name: string, sockets: Array<{ fd: number; name: string }>): number[] {
  if (sockets.length === 0) {
    throw invalidArgument(
      `fd://${name}: no sockets were passed by systemd (LISTEN_FDS is not set for berthd)`,
    );
  }
  if (name === '') return sockets.map((s) => s.fd);
  const chosen = /^\d+$/.test(name)
    ? sockets.filter((s) => s.fd === Number(name))
    : sockets.filter((s) => s.name === name);
  if (chosen.length === 0) {
    throw invalidArgument(
      `fd://${name}: no such activated socket (have ${sockets.map((s) => `${s.fd}=${s.name}`).join(', ')})`,
    );
  }
  return chosen.map((s) => s.fd);
}

/** Removes a socket file nothing listens on; refuses when a server answers or the path is not a socket. */
export async function removeStaleSocket(path: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  if (!stats.isSocket())
    throw unavailable(`${path} exists and is not a socket: remove it or listen elsewhere`);
  const answer = await new Promise<string>((resolve) => {
    const probe = net.connect(path);
    probe.setTimeout(2000, () => {
      probe.destroy();
      resolve('timeout');
    });
    probe.once('connect', () => {
      probe.destroy();
      resolve('alive');
    });
    probe.once('error', (err) => resolve(errnoCode(err) ?? 'error'));
  });
  if (answer === 'ENOENT') return;
  if (answer !== 'ECONNREFUSED') {
    throw conflict(`another daemon is already listening on ${path} (stop it first)`);
  }
  await rm(path, { force: true });
}

function listen(server: net.Server, target: net.ListenOptions, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      const code = errnoCode(err);
      reject(
        unavailable(
          `cannot listen on ${what}: ${code === 'EADDRINUSE' ? 'address already in use' : describeError(err)}`,
        ),
      );
    };
    server.once('error', onError);
    server.listen(target, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closer(server: http.Server, after?: () => Promise<void>): () => Promise<void> {
  return async () => {
    const closed = once(server, 'close');
    server.close();
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), 5000);
    await closed;
    clearTimeout(timer);
    await after?.();
  };
}

async function openUnix(path: string, options: ListenOptions): Promise<Listener> {
  const groupFile = await readFile('/etc/group', 'utf8').catch(() => '');
  const gid = resolveGroup(options.group.name, groupFile);
  if (gid === undefined && options.group.explicit) {
    throw invalidArgument(
      `group: no group named ${JSON.stringify(options.group.name)} (for the socket ${path})`,
    );
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await removeStaleSocket(path);
  const server = http.createServer(HTTP_OPTIONS);
  options.attach(server);
  // Bind with a tight umask so the socket is never reachable before its mode is set.
  const umask = process.umask(0o177);
  let bound: Promise<void>;
  try {
    bound = listen(server, { path }, `unix://${path}`);
  } finally {
    process.umask(umask);
  }
  await bound;
  const { ino } = await lstat(path);
  if (gid !== undefined) {
    await chown(path, process.getuid?.() ?? 0, gid);
    await chmod(path, 0o660);
  } else {
    options.log.info(`There is no group ${options.group.name}: only root can use ${path} (mode 0600)`);
  }
  // Remove the socket on close, unless another daemon has put its own in its place meanwhile.
  const removeSocket = async (): Promise<void> => {
    const now = await lstat(path).catch(() => undefined);
    if (now?.ino === ino) await rm(path, { force: true });
  };
  return { address: `unix://${path}`, server, close: closer(server, removeSocket) };
}

async function openTcp(address: { host: string; port: number }, options: ListenOptions): Promise<Listener> {
  const shown = formatAddress({ kind: 'tcp', ...address }).slice('tcp://'.length);
  const tls = options.tls;
  const verified = tls?.verify === true;
  let warning: string | undefined;
  if (!verified) {
    if (!options.insecureTcpForce) {
      throw invalidArgument(
        `refusing to listen on tcp://${shown} without TLS client verification: anyone who can reach it ` +
          'could control this host as root. Use --tlsverify with --tlscacert, --tlscert and --tlskey, ' +
          'or --insecure-tcp-force to accept that risk',
      );
    }
    warning =
      tls === undefined
        ? `WARNING: API is accessible on http://${shown} without encryption.`
        : `WARNING: API is accessible on https://${shown} without client certificate verification.`;
    warning +=
      '\n         Access to the API is equivalent to root access on the host: anyone who can reach' +
      '\n         this address controls the machine. Use --tlsverify with client certificates.';
    options.log.warn(warning);
  }
  let server: http.Server;
  if (tls !== undefined) {
    const read = (file: string, key: string): Buffer => {
      try {
        return readFileSync(file);
      } catch (err) {
        throw invalidArgument(`${key}: cannot read ${file}: ${describeError(err)}`);
      }
    };
    server = https.createServer({
      ...HTTP_OPTIONS,
      cert: read(tls.cert, 'tlscert'),
      key: read(tls.key, 'tlskey'),
      ...(tls.ca === undefined ? {} : { ca: read(tls.ca, 'tlscacert') }),
      requestCert: verified,
      rejectUnauthorized: verified,
      minVersion: 'TLSv1.2',
    });
  } else {
    server = http.createServer(HTTP_OPTIONS);
  }
  options.attach(server);
  await listen(server, { host: address.host, port: address.port }, `tcp://${shown}`);
  return { address: `tcp://${shown}`, server, warning, close: closer(server) };
}

async function openFd(fd: number, name: string, options: ListenOptions): Promise<Listener> {
  const server = http.createServer(HTTP_OPTIONS);
  options.attach(server);
  await listen(server, { fd } as net.ListenOptions, `fd://${name} (descriptor ${fd})`);
  return { address: `fd://${fd}`, server, close: closer(server) };
}

/** Opens every address; on a failure the ones already open are closed again. */
export async function openListeners(addresses: ListenAddress[], options: ListenOptions): Promise<Listener[]> {
  const env = options.env ?? process.env;
  const activated = activatedSockets(env, process.pid);
  // systemd's variables are for this process only, not for the programs it starts.
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  const open: Listener[] = [];
  try {
    for (const address of addresses) {
      if (address.kind === 'unix') open.push(await openUnix(address.path, options));
      else if (address.kind === 'tcp') open.push(await openTcp(address, options));
      else
        for (const fd of selectActivated(address.name, activated))
          open.push(await openFd(fd, address.name, options));
    }
  } catch (err) {
    await Promise.all(open.map((listener) => listener.close()));
    throw err;
  }
  return open;
}
