/**
 * Host ports for published container ports. A reservation holds a real socket on the host
 * address and port (TCP: listening, UDP: bound), so no other program can take the port while
 * the container publishes it and a port that is already taken fails the start with Docker's
 * message. The traffic itself never reaches these sockets: the firewall DNATs it first (a TCP
 * connection that gets here anyway is closed at once).
 *
 * Port choice follows Docker's port allocator: port 0 takes the next free port of the ephemeral
 * range (/proc/sys/net/ipv4/ip_local_port_range, else 49153-65535), a range `8000-8010` the next
 * free port of that range, each continuing after the last port it handed out and wrapping.
 */
import { createSocket } from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { conflict, errnoCode, internal, invalidArgument } from '../common/errors.js';
import { formatIp, parseIp } from './subnets.js';

export type PortProto = 'tcp' | 'udp';

export interface HostPortRequest {
  proto: PortProto;
  /** '' (or absent) = all addresses: 0.0.0.0 and, when the host has IPv6, ::. */
  hostIp?: string;
  /** The host port, or the first of a range; 0 (with `last` 0 or absent) = an ephemeral port. */
  first: number;
  /** The last port of a range (default: `first`). */
  last?: number;
  /** The endpoint's name for the error message (Docker: container name, or name and id). */
  endpoint: string;
}

export interface PortReservation {
  readonly proto: PortProto;
  /** The canonical host address, '' for all addresses. */
  readonly hostIp: string;
  readonly port: number;
}

export interface PortRange {
  first: number;
  last: number;
}

/** Docker's port allocator range when the kernel's ephemeral range cannot be read. */
export const FALLBACK_EPHEMERAL_RANGE: PortRange = { first: 49153, last: 65535 };

export async function readEphemeralPortRange(
  path = '/proc/sys/net/ipv4/ip_local_port_range',
): Promise<PortRange> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const [first, last] = text.trim().split(/\s+/).map(Number);
  if (first === undefined || last === undefined || !(first >= 1 && first <= last && last <= 65535))
    return FALLBACK_EPHEMERAL_RANGE;
  return { first, last };
}

export interface HostPortsOptions {
  /** The ephemeral range; by default read from /proc on first use. */
  ephemeralRange?: () => Promise<PortRange>;
}

/** Closes one held socket. */
type Held = () => Promise<void>;

/** One address to bind: where, which socket family, and whether a failure may be skipped. */
interface BindTarget {
  address: string;
  v6: boolean;
  /** The IPv6 half of "all addresses": skipped when the host has no IPv6. */
  optional: boolean;
}

const NO_IPV6 = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL', 'EPROTONOSUPPORT']);

function listenTcp(target: BindTarget, port: number): Promise<Held> {
  return new Promise((resolve, reject) => {
    // Never serve: close whatever gets past the firewall (Node cannot listen without accepting).
    const server = createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
    server.once('error', reject);
    server.listen({ host: target.address, port, backlog: 1, exclusive: true, ipv6Only: target.v6 }, () => {
      server.removeListener('error', reject);
      server.on('error', () => undefined);
      server.unref();
      resolve(() => new Promise((done) => server.close(() => done())));
    });
  });
}

function bindUdp(target: BindTarget, port: number): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: target.v6 ? 'udp6' : 'udp4', reuseAddr: false, ipv6Only: target.v6 });
    const fail = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', fail);
    socket.bind({ address: target.address, port, exclusive: true }, () => {
      socket.removeListener('error', fail);
      socket.on('error', () => undefined);
      socket.unref();
      resolve(() => new Promise((done) => socket.close(() => done())));
    });
  });
}

const hostPortText = (address: string, v6: boolean, port: string | number): string =>
  v6 ? `[${address}]:${port}` : `${address}:${port}`;

export class HostPorts {
  /** Docker's allocator: per protocol, address and range, the port handed out last. */
  private readonly lastPort = new Map<string, number>();
  private readonly held = new WeakMap<PortReservation, Held[]>();
  private range?: Promise<PortRange>;

  constructor(private readonly options: HostPortsOptions = {}) {}

  async reserve(request: HostPortRequest): Promise<PortReservation> {
    const prefix = `driver failed programming external connectivity on endpoint ${request.endpoint}`;
    if (request.proto !== 'tcp' && request.proto !== 'udp')
      throw invalidArgument(`invalid protocol ${String(request.proto)}: only tcp and udp can be published`);
    const hostIpText = request.hostIp ?? '';
    const parsed = hostIpText === '' ? undefined : parseIp(hostIpText);
    if (hostIpText !== '' && parsed === undefined)
      throw invalidArgument(`invalid host IP address: ${hostIpText}`);
    const hostIp = parsed === undefined ? '' : formatIp(parsed);
    const targets: BindTarget[] =
      parsed === undefined
        ? [
            { address: '0.0.0.0', v6: false, optional: false },
            { address: '::', v6: true, optional: true },
          ]
        : [{ address: hostIp, v6: parsed.family === 6, optional: false }];
    const shown = targets[0] ?? { address: '0.0.0.0', v6: false, optional: false };

    const last = request.last ?? request.first;
    const valid = (port: number): boolean => Number.isInteger(port) && port >= 0 && port <= 65535;
    if (!valid(request.first) || !valid(last) || last < request.first || (request.first === 0 && last !== 0))
      throw invalidArgument(`invalid host port range: ${request.first}-${last}`);

    const ephemeral = request.first === 0;
    const { first, last: end } = ephemeral ? await this.ephemeralRange() : { first: request.first, last };
    const key = `${request.proto}|${hostIp}|${ephemeral ? 'ephemeral' : `${first}-${end}`}`;
    const previous = this.lastPort.get(key) ?? end;
    const count = end - first + 1;
    for (let i = 1; i <= count; i++) {
      const port = first + ((previous - first + i) % count);
      const sockets = await this.bindAll(request.proto, targets, port, prefix);
      if (sockets === undefined) continue;
      this.lastPort.set(key, port);
      const reservation: PortReservation = Object.freeze({ proto: request.proto, hostIp, port });
      this.held.set(reservation, sockets);
      return reservation;
    }
    if (ephemeral) throw conflict(`${prefix}: all ports are allocated`);
    const ports = first === end ? String(first) : `${first}-${end}`;
    throw conflict(
      `${prefix}: Bind for ${hostPortText(shown.address, shown.v6, ports)} failed: port is already allocated`,
    );
  }

  /** Closes the reservation's sockets; releasing twice is harmless. */
  async release(reservation: PortReservation): Promise<void> {
    const sockets = this.held.get(reservation) ?? [];
    this.held.delete(reservation);
    await Promise.all(sockets.map((closeSocket) => closeSocket()));
  }

  private ephemeralRange(): Promise<PortRange> {
    this.range ??= (this.options.ephemeralRange ?? (() => readEphemeralPortRange()))();
    return this.range;
  }

  /** Binds every target on `port`; undefined when the port is in use on one of them. */
  private async bindAll(
    proto: PortProto,
    targets: BindTarget[],
    port: number,
    prefix: string,
  ): Promise<Held[] | undefined> {
    const sockets: Held[] = [];
    for (const target of targets) {
      try {
        sockets.push(proto === 'tcp' ? await listenTcp(target, port) : await bindUdp(target, port));
      } catch (err) {
        const code = errnoCode(err);
        if (target.optional && code !== undefined && NO_IPV6.has(code)) continue;
        await Promise.all(sockets.map((closeSocket) => closeSocket()));
        if (code === 'EADDRINUSE') return undefined;
        const where = `${hostPortText(target.address, target.v6, port)}/${proto}`;
        const reason = err instanceof Error ? err.message : String(err);
        if (code === 'EADDRNOTAVAIL')
          throw invalidArgument(
            `${prefix}: failed to bind host port ${where}: cannot assign requested address`,
          );
        throw internal(`${prefix}: failed to bind host port ${where}: ${reason}`, err);
      }
    }
    return sockets;
  }
}
