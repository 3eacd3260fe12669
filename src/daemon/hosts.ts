/** The -H/--host addresses berthd listens on: unix://path, tcp://host:port and fd://[name]. */
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { invalidArgument } from '../common/errors.js';

export const DEFAULT_SOCKET = '/run/berth/berth.sock';
export const DEFAULT_HOST = `unix://${DEFAULT_SOCKET}`;

export type ListenAddress =
  { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number } | { kind: 'fd'; name: string };

/** Parses one host. A value without a scheme is TCP; the default port is 2376 with TLS, else 2375. */
export function parseHost(value: string, tls: boolean): ListenAddress {
  const text = value.trim();
  if (text === '') return { kind: 'unix', path: DEFAULT_SOCKET };
  const schemeEnd = text.indexOf('://');
  const scheme = schemeEnd < 0 ? 'tcp' : text.slice(0, schemeEnd).toLowerCase();
  const rest = schemeEnd < 0 ? text : text.slice(schemeEnd + 3);
  switch (scheme) {
    case 'unix': {
      const path = rest === '' ? DEFAULT_SOCKET : rest;
      if (!isAbsolute(path)) throw invalidArgument(`invalid host ${value}: the socket path must be absolute`);
      return { kind: 'unix', path };
    }
    case 'fd':
      if (!/^[A-Za-z0-9_.:-]*$/.test(rest))
        throw invalidArgument(`invalid host ${value}: bad descriptor name`);
      return { kind: 'fd', name: rest };
    case 'tcp':
      return parseTcp(value, rest, tls ? 2376 : 2375);
    default:
      throw invalidArgument(
        `invalid host ${value}: unsupported protocol ${scheme} (use unix://, tcp:// or fd://)`,
      );
  }
}

function parseTcp(value: string, rest: string, defaultPort: number): ListenAddress {
  const bad = (why: string): never => {
    throw invalidArgument(`invalid host ${value}: ${why}`);
  };
  if (rest.includes('/')) bad('a TCP address takes no path');
  let host: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) bad('unclosed [ in an IPv6 address');
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) bad('expected :port after the IPv6 address');
    portText = after === '' ? undefined : after.slice(1);
    if (isIP(host) !== 6) bad(`${host} is not an IPv6 address`);
  } else {
    const colon = rest.lastIndexOf(':');
    host = colon < 0 ? rest : rest.slice(0, colon);
    portText = colon < 0 ? undefined : rest.slice(colon + 1);
    if (host.includes(':')) bad('put an IPv6 address in brackets: tcp://[::1]:2376');
  }
  if (host === '') host = '127.0.0.1';
  if (isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host))
    bad(`bad host name ${host}`);
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d+$/.test(portText)) bad(`bad port ${JSON.stringify(portText)}`);
    port = Number(portText);
    if (port < 1 || port > 65535) bad(`port ${port} is out of range`);
  }
  return { kind: 'tcp', host, port };
}

export function formatAddress(address: ListenAddress): string {
  switch (address.kind) {
    case 'unix':
      return `unix://${address.path}`;
    case 'fd':
      return `fd://${address.name}`;
    case 'tcp':
      return `tcp://${isIP(address.host) === 6 ? `[${address.host}]` : address.host}:${address.port}`;
  }
}
