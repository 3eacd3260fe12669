/**
 * Forwarding of queries the network cannot answer to the host's resolvers. The client's bytes go
 * out unchanged (so its query ID and EDNS options are kept) over the client's transport, from a
 * fresh socket per attempt; the first usable answer is relayed as received. Nothing is cached.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { HEADER_SIZE, RCODE, type Transport } from './dns-message.js';
import { FrameReader, frame } from './dns-tcp.js';
import { formatUpstream, type Upstream } from './dns-upstream.js';

/** Like glibc's MAXNS and Docker: only the first three resolvers are ever tried. */
export const MAX_UPSTREAM_ATTEMPTS = 3;

export interface ForwardOptions {
  upstreams: readonly Upstream[];
  transport: Transport;
  /** Per attempt, connection included. */
  timeoutMs: number;
  /** The largest answer the client takes over UDP (the TCP retry of a truncated answer must fit). */
  maxUdpSize: number;
  /** Aborted when the server closes: pending attempts end at once. */
  signal: AbortSignal;
  debug?: (message: string) => void;
}

/**
 * The answer to relay, or undefined when no resolver gave one (the caller answers SERVFAIL).
 * Resolvers are tried in order; SERVFAIL and REFUSED move on to the next one (Docker does the same)
 * and are relayed only when nobody does better.
 */
export async function forwardQuery(query: Buffer, options: ForwardOptions): Promise<Buffer | undefined> {
  let fallback: Buffer | undefined;
  for (const upstream of options.upstreams.slice(0, MAX_UPSTREAM_ATTEMPTS)) {
    if (options.signal.aborted) return undefined;
    const exchange = options.transport === 'tcp' ? exchangeTcp : exchangeUdp;
    let answer = await exchange(query, upstream, options.timeoutMs, options.signal);
    if (answer === undefined) {
      options.debug?.(`DNS upstream ${formatUpstream(upstream)} gave no answer over ${options.transport}`);
      continue;
    }
    if (options.transport === 'udp' && isTruncated(answer)) {
      // Fetch the whole answer over TCP when the client can take it; otherwise relay the
      // truncated one so the client retries over TCP itself.
      const whole = await exchangeTcp(query, upstream, options.timeoutMs, options.signal);
      if (whole !== undefined && whole.length <= options.maxUdpSize) answer = whole;
    }
    const rcode = answer.readUInt8(3) & 0xf;
    if (rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) {
      fallback = answer;
      continue;
    }
    return answer;
  }
  return fallback;
}

function isTruncated(message: Buffer): boolean {
  return (message.readUInt8(2) & 0x02) !== 0;
}

/**
 * Whether a message is the response to the query: same ID and question count, QR set. The sockets
 * are connected, so the kernel already dropped datagrams from any other address.
 */
export function isResponseTo(query: Buffer, message: Buffer): boolean {
  return (
    message.length >= HEADER_SIZE &&
    message.readUInt16BE(0) === query.readUInt16BE(0) &&
    (message.readUInt8(2) & 0x80) !== 0 &&
    message.readUInt16BE(4) === query.readUInt16BE(4)
  );
}

type Exchange = (
  query: Buffer,
  upstream: Upstream,
  timeoutMs: number,
  signal: AbortSignal,
) => Promise<Buffer | undefined>;

/** Runs one attempt that settles exactly once: on an answer, an error, the timeout or the abort. */
function attempt(
  timeoutMs: number,
  signal: AbortSignal,
  start: (finish: (answer?: Buffer) => void) => () => void,
): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve(undefined);
      return;
    }
    let settled = false;
    let release: () => void = () => undefined;
    const finish = (answer?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      release();
      resolve(answer);
    };
    const onAbort = (): void => finish();
    const timer = setTimeout(finish, timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    release = start(finish);
    if (settled) release();
  });
}

export const exchangeUdp: Exchange = (query, upstream, timeoutMs, signal) =>
  attempt(timeoutMs, signal, (finish) => {
    const socket = createSocket(upstream.family === 6 ? 'udp6' : 'udp4');
    socket.on('error', () => finish());
    socket.on('message', (message) => {
      if (isResponseTo(query, message)) finish(message);
    });
    socket.connect(upstream.port, upstream.host, () => {
      socket.send(query, (err) => {
        if (err) finish();
      });
    });
    return () => {
      try {
        socket.close();
      } catch {
        // Already closed after an error.
      }
    };
  });

export const exchangeTcp: Exchange = (query, upstream, timeoutMs, signal) =>
  attempt(timeoutMs, signal, (finish) => {
    const reader = new FrameReader();
    const socket = connect({ host: upstream.host, port: upstream.port });
    socket.on('error', () => finish());
    socket.on('close', () => finish());
    socket.on('connect', () => socket.write(frame(query)));
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (let message = reader.next(); message !== undefined; message = reader.next()) {
        if (isResponseTo(query, message)) {
          finish(Buffer.from(message));
          return;
        }
      }
    });
    return () => socket.destroy();
  });
