/** The resolvers a network's DNS server forwards to: parsed from `ip`, `ip:port` or `[ipv6]:port`, or from resolv.conf. */
import { isIP } from 'node:net';
import { invalidArgument } from '../common/errors.js';

export interface Upstream {
  host: string;
  port: number;
  family: 4 | 6;
}

const DNS_PORT = 53;

/** Parses `1.2.3.4`, `1.2.3.4:5353`, `fd00::1`, `[fd00::1]:5353` (IPv6 zones such as `fe80::1%eth0` allowed). */
export function parseUpstream(text: string): Upstream {
  const bracketed = /^\[([^\]]+)\](?::([0-9]+))?$/.exec(text);
  if (bracketed !== null) {
    return checked(text, bracketed[1]!, bracketed[2], 6);
  }
  const family = isIP(text);
  if (family !== 0) return checked(text, text, undefined, family === 4 ? 4 : 6);
  const withPort = /^([0-9.]+):([0-9]+)$/.exec(text);
  if (withPort !== null) return checked(text, withPort[1]!, withPort[2], 4);
  throw invalidArgument(`DNS upstream "${text}" is not an IP address, IP:port or [IPv6]:port`);
}

function checked(text: string, host: string, portText: string | undefined, family: 4 | 6): Upstream {
  if (isIP(host) !== family) {
    throw invalidArgument(`DNS upstream "${text}" is not an IP address, IP:port or [IPv6]:port`);
  }
  const port = portText === undefined ? DNS_PORT : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalidArgument(`DNS upstream "${text}" has an invalid port (1-65535)`);
  }
  return { host, port, family };
}

/** The address text of an upstream as `parseUpstream` accepts it back. */
export function formatUpstream(upstream: Upstream): string {
  return upstream.family === 6 ? `[${upstream.host}]:${upstream.port}` : `${upstream.host}:${upstream.port}`;
}

/**
 * The `nameserver` addresses of a resolv.conf, in order, without duplicates. Loopback resolvers
 * (systemd-resolved's 127.0.0.53, a local dnsmasq) are kept: berthd forwards from the host's
 * network namespace, where they are reachable, unlike Docker's copy of resolv.conf inside a
 * container, which has to drop them.
 */
export function upstreamsFromResolvConf(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] !== 'nameserver' || fields[1] === undefined) continue;
    const address = fields[1];
    if (isIP(address) !== 0 && !found.includes(address)) found.push(address);
  }
  return found;
}
