/**
 * Where a registry domain is reached: https by default; plain http for registries declared
 * insecure and for loopback hosts (as Docker does); mirrors first for Docker Hub when pulling.
 */
import { isIP } from 'node:net';
import { invalidArgument } from '../../common/errors.js';
import { DEFAULT_DOMAIN } from '../reference.js';

/** Docker Hub's API host behind the `docker.io` domain. */
export const DOCKER_HUB_REGISTRY = 'https://registry-1.docker.io';

export interface HostsConfig {
  /** `host`, `host:port` or an IPv4 CIDR (`10.0.0.0/8`), as in daemon.json `insecure-registries`. */
  insecureRegistries?: string[];
  /** Mirror base URLs for Docker Hub, tried in order before it, as in daemon.json `registry-mirrors`. */
  mirrors?: string[];
}

export interface Endpoint {
  /** Base URL without a trailing slash: `https://registry-1.docker.io`, `http://127.0.0.1:5000`. */
  url: string;
  /** The registry domain the endpoint serves: credentials are looked up under it. */
  registry: string;
  mirror: boolean;
}

function splitHostPort(domain: string): { host: string; port?: string } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(domain);
  if (bracketed) return { host: bracketed[1] as string, ...(bracketed[2] ? { port: bracketed[2] } : {}) };
  const colon = domain.lastIndexOf(':');
  if (colon !== -1 && /^\d+$/.test(domain.slice(colon + 1))) {
    return { host: domain.slice(0, colon), port: domain.slice(colon + 1) };
  }
  return { host: domain };
}

function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((value, part) => value * 256 + Number(part), 0);
}

function inCidr(host: string, cidr: string): boolean {
  const [network, bits] = cidr.split('/');
  if (network === undefined || bits === undefined || isIP(network) !== 4 || isIP(host) !== 4) return false;
  const prefix = Number(bits);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 32) {
    throw invalidArgument(`invalid insecure registry CIDR "${cidr}"`);
  }
  const size = 2 ** (32 - prefix);
  return Math.floor(ipv4ToNumber(host) / size) === Math.floor(ipv4ToNumber(network) / size);
}

/** Loopback registries are plain http, like Docker's default 127.0.0.0/8 insecure range. */
export function isLoopback(domain: string): boolean {
  const { host } = splitHostPort(domain);
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && inCidr(host, '127.0.0.0/8'));
}

export function isInsecure(domain: string, config: HostsConfig): boolean {
  if (isLoopback(domain)) return true;
  const { host } = splitHostPort(domain);
  return (config.insecureRegistries ?? []).some((entry) =>
    entry.includes('/') ? inCidr(host, entry) : entry === domain || entry === host,
  );
}

function mirrorUrl(mirror: string): string {
  let url: URL;
  try {
    url = new URL(mirror);
  } catch {
    throw invalidArgument(`registry mirror "${mirror}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalidArgument(`registry mirror "${mirror}" must be an http or https URL`);
  }
  return url.toString().replace(/\/+$/, '');
}

/** Endpoints to try for `domain`, in order. Pushes never go to mirrors. */
export function resolveEndpoints(domain: string, config: HostsConfig, purpose: 'pull' | 'push'): Endpoint[] {
  const endpoints: Endpoint[] = [];
  if (domain === DEFAULT_DOMAIN) {
    if (purpose === 'pull') {
      for (const mirror of config.mirrors ?? []) {
        endpoints.push({ url: mirrorUrl(mirror), registry: domain, mirror: true });
      }
    }
    endpoints.push({ url: DOCKER_HUB_REGISTRY, registry: domain, mirror: false });
    return endpoints;
  }
  const scheme = isInsecure(domain, config) ? 'http' : 'https';
  endpoints.push({ url: `${scheme}://${domain}`, registry: domain, mirror: false });
  return endpoints;
}
