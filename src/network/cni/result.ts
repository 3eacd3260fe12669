/**
 * Plugin results: strict parsing of what a plugin prints (0.3.0 to 1.0.0 shapes) into the 1.0.0
 * shape, and encoding back into the version a network speaks for prevResult and the cache.
 * 0.3.x and 0.4.0 carry a "version" ("4" or "6") on each IP that 1.0.0 dropped.
 */
import { isIP } from 'node:net';
import type { CniDns, CniInterface, CniIpConfig, CniResult, CniRoute, CniVersionInfo } from './types.js';
import { compareVersions, isSupportedVersion } from './version.js';

/** A result that does not follow the spec; the caller names the plugin in its message. */
export class MalformedResult extends Error {}

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function bad(message: string): never {
  throw new MalformedResult(message);
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') bad(`${field} must be a string`);
  return value;
}

function stringList(value: unknown, field: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string'))
    bad(`${field} must be a list of strings`);
  return value as string[];
}

function list(value: unknown, field: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) bad(`${field} must be a list`);
  return value;
}

/** The address family (4 or 6) of "address/prefix", or 0 when it is not one. */
function cidrFamily(value: string): number {
  const slash = value.lastIndexOf('/');
  if (slash < 0) return 0;
  const family = isIP(value.slice(0, slash));
  const prefix = value.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) return 0;
  return family;
}

function parseInterface(value: unknown, field: string): CniInterface {
  if (!isObject(value)) bad(`${field} must be an object`);
  const name = optionalString(value.name, `${field}.name`);
  if (name === undefined) bad(`${field}.name is missing`);
  const mac = optionalString(value.mac, `${field}.mac`);
  const sandbox = optionalString(value.sandbox, `${field}.sandbox`);
  return { name, ...(mac === undefined ? {} : { mac }), ...(sandbox === undefined ? {} : { sandbox }) };
}

function parseIp(value: unknown, field: string, withVersion: boolean, interfaceCount: number): CniIpConfig {
  if (!isObject(value)) bad(`${field} must be an object`);
  const address = optionalString(value.address, `${field}.address`);
  if (address === undefined) bad(`${field}.address is missing`);
  const family = cidrFamily(address);
  if (family === 0) bad(`${field}.address ${JSON.stringify(address)} is not an address with a prefix length`);
  if (withVersion && value.version !== String(family))
    bad(`${field}.version ${JSON.stringify(value.version)} does not match address ${address}`);
  const gateway = optionalString(value.gateway, `${field}.gateway`);
  if (gateway !== undefined && isIP(gateway) !== family)
    bad(`${field}.gateway ${JSON.stringify(gateway)} is not an IPv${family} address`);
  const index = value.interface;
  if (index !== undefined && index !== null) {
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= interfaceCount)
      bad(`${field}.interface ${JSON.stringify(index)} is not an index into interfaces`);
  }
  return {
    address,
    ...(gateway === undefined ? {} : { gateway }),
    ...(typeof index === 'number' ? { interface: index } : {}),
  };
}

function parseRoute(value: unknown, field: string): CniRoute {
  if (!isObject(value)) bad(`${field} must be an object`);
  const dst = optionalString(value.dst, `${field}.dst`);
  if (dst === undefined) bad(`${field}.dst is missing`);
  const family = cidrFamily(dst);
  if (family === 0) bad(`${field}.dst ${JSON.stringify(dst)} is not an address with a prefix length`);
  const gw = optionalString(value.gw, `${field}.gw`);
  if (gw !== undefined && isIP(gw) !== family)
    bad(`${field}.gw ${JSON.stringify(gw)} is not an IPv${family} address`);
  return { dst, ...(gw === undefined ? {} : { gw }) };
}

function parseDns(value: unknown): CniDns {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) bad('dns must be an object');
  const dns: CniDns = {};
  const nameservers = stringList(value.nameservers, 'dns.nameservers');
  const domain = optionalString(value.domain, 'dns.domain');
  const search = stringList(value.search, 'dns.search');
  const options = stringList(value.options, 'dns.options');
  if (nameservers !== undefined) dns.nameservers = nameservers;
  if (domain !== undefined) dns.domain = domain;
  if (search !== undefined) dns.search = search;
  if (options !== undefined) dns.options = options;
  return dns;
}

/** Parse a result object; throws MalformedResult naming the offending field. */
export function parseResult(value: unknown): CniResult {
  if (!isObject(value)) bad('the result must be a JSON object');
  const cniVersion = value.cniVersion;
  if (typeof cniVersion !== 'string') bad('cniVersion is missing');
  if (!isSupportedVersion(cniVersion))
    bad(`cniVersion ${JSON.stringify(cniVersion)} is not one this client reads`);
  const withVersion = compareVersions(cniVersion, '1.0.0') < 0;
  const interfaces = list(value.interfaces, 'interfaces').map((item, i) =>
    parseInterface(item, `interfaces[${i}]`),
  );
  const ips = list(value.ips, 'ips').map((item, i) =>
    parseIp(item, `ips[${i}]`, withVersion, interfaces.length),
  );
  const routes = list(value.routes, 'routes').map((item, i) => parseRoute(item, `routes[${i}]`));
  return { cniVersion, interfaces, ips, routes, dns: parseDns(value.dns) };
}

/** The result as a plugin speaking `cniVersion` expects it (prevResult, cache). */
export function encodeResult(result: CniResult, cniVersion: string): JsonObject {
  const withVersion = compareVersions(cniVersion, '1.0.0') < 0;
  const encoded: JsonObject = { cniVersion };
  if (result.interfaces.length > 0) encoded.interfaces = result.interfaces;
  if (result.ips.length > 0)
    encoded.ips = result.ips.map((ip) =>
      withVersion ? { version: String(cidrFamily(ip.address)), ...ip } : { ...ip },
    );
  if (result.routes.length > 0) encoded.routes = result.routes;
  if (Object.keys(result.dns).length > 0) encoded.dns = result.dns;
  return encoded;
}

/** Parse a VERSION answer. */
export function parseVersionInfo(value: unknown): CniVersionInfo {
  if (!isObject(value)) bad('the VERSION answer must be a JSON object');
  if (typeof value.cniVersion !== 'string') bad('cniVersion is missing');
  const supportedVersions = stringList(value.supportedVersions, 'supportedVersions');
  if (supportedVersions === undefined) bad('supportedVersions is missing');
  return { cniVersion: value.cniVersion, supportedVersions };
}
