/**
 * The DNS server berthd runs for one user-defined network (Docker's embedded DNS, served from the
 * daemon): UDP and TCP on one address and port, normally the network's gateway and 53, which the
 * network's containers get as their nameserver. Names the network knows are answered from its
 * records; everything else is forwarded to the host's resolvers.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import { BerthError, describeError, errnoCode, invalidArgument } from '../common/errors.js';
import { answerLocally, type DnsRecordSource } from './dns-local.js';
import { RCODE, encodeResponse, maxResponseSize, parseQuery, type Transport } from './dns-message.js';
import { forwardQuery } from './dns-forward.js';
import { FrameReader, frame } from './dns-tcp.js';
import { parseUpstream, type Upstream } from './dns-upstream.js';

export type { DnsRecordSource } from './dns-local.js';
export { upstreamsFromResolvConf } from './dns-upstream.js';

/** The daemon's Logger fits this. */
export interface DnsLog {
  debug(message: string): void;
  warn(message: string): void;
}

export interface NetworkDnsServerOptions {
  /** The address to serve on, normally the network's gateway. */
  address: string;
  /** 53 by default; 0 picks a free port (the same for UDP and TCP). */
  port?: number;
  records: DnsRecordSource;
  /** Host resolvers as `ip`, `ip:port` or `[ipv6]:port`; only the first three are tried. */
  upstreams: string[];
  /** The network's name: `<name>.<network>` then resolves like `<name>`, and PTR answers are `<name>.<network>.`. */
  networkName?: string;
  log?: DnsLog;
  /** Per upstream attempt; 2000 ms by default. */
  upstreamTimeoutMs?: number;
  /** Forwarded queries in flight at once; beyond this the server answers SERVFAIL. 256 by default. */
  maxConcurrentForwards?: number;
  /** A TCP connection with no traffic for this long is closed; 10000 ms by default. */
  tcpIdleTimeoutMs?: number;
  /** TCP connections at once; more are refused. 64 by default. */
  maxTcpConnections?: number;
}

const DEFAULT_PORT = 53;
const DEFAULT_UPSTREAM_TIMEOUT_MS = 2000;
const DEFAULT_MAX_CONCURRENT_FORWARDS = 256;
const DEFAULT_TCP_IDLE_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_TCP_CONNECTIONS = 64;
/** Queries of one TCP connection answered at once; reading pauses beyond this (RFC 7766 pipelining). */
const MAX_PIPELINED_PER_CONNECTION = 16;
/** Port 0: another program may take the UDP port's TCP twin; try a few free ports, not forever. */
const FREE_PORT_ATTEMPTS = 8;
const OVERLOAD_WARNING_INTERVAL_MS = 10_000;

export class NetworkDnsServer {
  private upstreams: Upstream[] = [];
  private readonly connections = new Set<Socket>();
  private readonly aborter = new AbortController();
  private forwardsInFlight = 0;
  private lastOverloadWarning = 0;
  private closing: Promise<void> | undefined;

  private constructor(
    readonly address: string,
    readonly port: number,
    private readonly udp: UdpSocket,
    private readonly tcp: Server,
    private readonly options: NetworkDnsServerOptions,
  ) {
    this.setUpstreams(options.upstreams);
    udp.on('message', (message, peer) => this.onDatagram(message, peer.address, peer.port));
    udp.on('error', (err) =>
      options.log?.warn(`DNS server on ${this.endpoint()}: UDP error: ${describeError(err)}`),
    );
    tcp.on('connection', (socket) => this.onConnection(socket));
    tcp.on('error', (err) =>
      options.log?.warn(`DNS server on ${this.endpoint()}: TCP error: ${describeError(err)}`),
    );
  }

  /** Binds UDP and TCP on the address and port; fails with an `unavailable` error naming both. */
  static async listen(options: NetworkDnsServerOptions): Promise<NetworkDnsServer> {
    const family = isIP(options.address);
    if (family === 0) throw invalidArgument(`DNS server address "${options.address}" is not an IP address`);
    const port = options.port ?? DEFAULT_PORT;
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw invalidArgument(`DNS server port ${port} is not a port number (0-65535)`);
    }
    options.upstreams.forEach(parseUpstream); // reject bad upstreams before binding anything

    const attempts = port === 0 ? FREE_PORT_ATTEMPTS : 1;
    let lastError: unknown;
    for (let i = 0; i < attempts; i++) {
      const udp = await bindUdp(options.address, family === 6 ? 'udp6' : 'udp4', port).catch(
        (err: unknown) => {
          throw unavailableAt(options.address, port, 'UDP', err);
        },
      );
      const boundPort = udp.address().port;
      try {
        const tcp = await listenTcp(options.address, boundPort, options.maxTcpConnections);
        return new NetworkDnsServer(options.address, boundPort, udp, tcp, options);
      } catch (err) {
        udp.close();
        lastError = err;
        if (port !== 0 || errnoCode(err) !== 'EADDRINUSE') break;
      }
    }
    throw unavailableAt(options.address, port, 'TCP', lastError);
  }

  /** Replaces the resolvers forwarded to, e.g. after the host's resolv.conf changed. */
  setUpstreams(upstreams: string[]): void {
    // Never forward to ourselves: a query would loop until every slot is taken.
    this.upstreams = upstreams
      .map(parseUpstream)
      .filter((upstream) => !(upstream.host === this.address && upstream.port === this.port));
  }

  /** Stops serving: pending forwards end, TCP connections are closed and both ports are free when this resolves. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.aborter.abort();
      for (const socket of this.connections) socket.destroy();
      await Promise.all([
        new Promise<void>((resolve) => this.udp.close(() => resolve())),
        new Promise<void>((resolve) => this.tcp.close(() => resolve())),
      ]);
    })();
    return this.closing;
  }

  private get closed(): boolean {
    return this.aborter.signal.aborted;
  }

  private endpoint(): string {
    return isIP(this.address) === 6 ? `[${this.address}]:${this.port}` : `${this.address}:${this.port}`;
  }

  private onDatagram(message: Buffer, peerAddress: string, peerPort: number): void {
    void this.respond(message, 'udp', peerAddress).then((response) => {
      if (response === undefined || this.closed) return;
      this.udp.send(response, peerPort, peerAddress, (err) => {
        if (err)
          this.options.log?.debug(`DNS reply to ${peerAddress}:${peerPort} failed: ${describeError(err)}`);
      });
    });
  }

  private onConnection(socket: Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.connections.add(socket);
    const reader = new FrameReader();
    let pending = 0;
    let ended = false;

    const pump = (): void => {
      while (pending < MAX_PIPELINED_PER_CONNECTION && !socket.destroyed) {
        const message = reader.next();
        if (message === undefined) break;
        pending++;
        void this.respond(message, 'tcp', socket.remoteAddress ?? '').then((response) => {
          pending--;
          if (response !== undefined && !socket.destroyed && socket.writable) socket.write(frame(response));
          pump();
        });
      }
      if (pending >= MAX_PIPELINED_PER_CONNECTION) socket.pause();
      else socket.resume();
      // The loop stops with nothing pending only when no whole message is left.
      if (ended && pending === 0) socket.end();
    };

    socket.setTimeout(this.options.tcpIdleTimeoutMs ?? DEFAULT_TCP_IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.connections.delete(socket));
    socket.on('end', () => {
      ended = true;
      pump();
    });
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      pump();
    });
  }

  /** The response to one message, or undefined to send nothing. Never throws. */
  private async respond(message: Buffer, transport: Transport, client: string): Promise<Buffer | undefined> {
    const query = parseQuery(message);
    if (query === undefined) {
      this.options.log?.debug(`DNS server on ${this.endpoint()}: dropped a malformed ${transport} message`);
      return undefined;
    }
    try {
      if (query.opcode !== 0) return encodeResponse(query, RCODE.NOTIMP, [], transport);
      if (query.plainQuestion !== undefined) {
        const local = answerLocally(
          query.plainQuestion,
          this.options.records,
          this.options.networkName,
          client,
        );
        if (local !== undefined) return encodeResponse(query, local.rcode, local.answers, transport);
      }
      const answer = await this.forward(query.raw, transport, maxResponseSize(query, 'udp'));
      if (this.closed) return undefined;
      return answer ?? encodeResponse(query, RCODE.SERVFAIL, [], transport);
    } catch (err) {
      // A failing record source must cost one SERVFAIL, never the daemon (callers do not catch).
      this.options.log?.warn(`DNS server on ${this.endpoint()}: ${describeError(err)}`);
      try {
        return encodeResponse(query, RCODE.SERVFAIL, [], transport);
      } catch {
        return undefined;
      }
    }
  }

  private async forward(raw: Buffer, transport: Transport, maxUdpSize: number): Promise<Buffer | undefined> {
    if (this.upstreams.length === 0) return undefined;
    const limit = this.options.maxConcurrentForwards ?? DEFAULT_MAX_CONCURRENT_FORWARDS;
    if (this.forwardsInFlight >= limit) {
      this.warnOverload(limit);
      return undefined;
    }
    this.forwardsInFlight++;
    try {
      return await forwardQuery(raw, {
        upstreams: this.upstreams,
        transport,
        timeoutMs: this.options.upstreamTimeoutMs ?? DEFAULT_UPSTREAM_TIMEOUT_MS,
        maxUdpSize,
        signal: this.aborter.signal,
        debug: this.options.log === undefined ? undefined : (text) => this.options.log?.debug(text),
      });
    } finally {
      this.forwardsInFlight--;
    }
  }

  private warnOverload(limit: number): void {
    const now = Date.now();
    if (now - this.lastOverloadWarning < OVERLOAD_WARNING_INTERVAL_MS) return;
    this.lastOverloadWarning = now;
    this.options.log?.warn(
      `DNS server on ${this.endpoint()}: more than ${limit} queries forwarded at once, answering SERVFAIL`,
    );
  }
}

function unavailableAt(address: string, port: number, protocol: string, cause: unknown): BerthError {
  const where = isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
  return new BerthError(
    'unavailable',
    `cannot serve DNS on ${where} (${protocol}): ${describeError(cause)}`,
    { cause },
  );
}

function bindUdp(address: string, type: 'udp4' | 'udp6', port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type });
    const onError = (err: Error): void => {
      try {
        socket.close();
      } catch {
        // A socket whose bind failed may already count as closed.
      }
      reject(err);
    };
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

function listenTcp(address: string, port: number, maxConnections: number | undefined): Promise<Server> {
  return new Promise((resolve, reject) => {
    // Half-open: a client may shut down its side after its last query and still read the answers.
    const server = createServer({ allowHalfOpen: true });
    server.maxConnections = maxConnections ?? DEFAULT_MAX_TCP_CONNECTIONS;
    server.once('error', reject);
    server.listen({ host: address, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
