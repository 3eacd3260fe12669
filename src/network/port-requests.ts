/**
 * What a container asks to publish: HostConfig.PortBindings (`"80/tcp": [{HostIp, HostPort}]`,
 * HostPort empty for an ephemeral port or a range `8000-8010` for any free one in it) plus, with
 * PublishAllPorts, every exposed port on an ephemeral host port.
 */
import { isIP } from 'node:net';
import { invalidArgument } from '../common/errors.js';

export interface PortRequest {
  proto: 'tcp' | 'udp';
  /** '' for all addresses. */
  hostIp: string;
  /** 0 and 0 for an ephemeral port. */
  hostPortFirst: number;
  hostPortLast: number;
  containerPort: number;
}

interface Binding {
  HostIp?: string;
  HostPort?: string;
}

function portNumber(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text)) throw invalidArgument(`invalid ${what} port: ${text}`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw invalidArgument(`invalid ${what} port: ${text}`);
  return port;
}

/** `80/tcp` or `80` -> port and protocol (only tcp and udp are supported). */
export function parsePortKey(key: string): { port: number; proto: 'tcp' | 'udp' } {
  const [portText = '', proto = 'tcp', ...rest] = key.split('/');
  if (rest.length > 0 || (proto !== 'tcp' && proto !== 'udp'))
    throw invalidArgument(proto === 'sctp' ? 'sctp ports are not supported' : `invalid port: ${key}`);
  return { port: portNumber(portText, 'container'), proto };
}

function hostRange(text: string | undefined): [number, number] {
  if (!text) return [0, 0];
  const [first = '', last, ...rest] = text.split('-');
  if (rest.length > 0) throw invalidArgument(`invalid host port range: ${text}`);
  const low = portNumber(first, 'host');
  const high = last === undefined ? low : portNumber(last, 'host');
  if (high < low) throw invalidArgument(`invalid host port range: ${text}`);
  return [low, high];
}

export function parsePortBindings(
  hostConfig: { PortBindings?: Record<string, Binding[] | null> | null; PublishAllPorts?: boolean | null },
  exposedPorts: string[],
): PortRequest[] {
  const requests: PortRequest[] = [];
  const bound = new Set<string>();
  for (const [key, bindings] of Object.entries(hostConfig.PortBindings ?? {})) {
    const { port, proto } = parsePortKey(key);
    bound.add(`${port}/${proto}`);
    for (const binding of bindings ?? [{}]) {
      const hostIp = binding.HostIp ?? '';
      if (hostIp !== '' && isIP(hostIp) === 0) throw invalidArgument(`invalid host IP address: ${hostIp}`);
      const [first, last] = hostRange(binding.HostPort);
      requests.push({
        proto,
        hostIp: hostIp === '0.0.0.0' || hostIp === '::' ? '' : hostIp,
        hostPortFirst: first,
        hostPortLast: last,
        containerPort: port,
      });
    }
  }
  if (hostConfig.PublishAllPorts) {
    for (const key of exposedPorts) {
      const { port, proto } = parsePortKey(key);
      if (bound.has(`${port}/${proto}`)) continue;
      requests.push({ proto, hostIp: '', hostPortFirst: 0, hostPortLast: 0, containerPort: port });
    }
  }
  return requests;
}
