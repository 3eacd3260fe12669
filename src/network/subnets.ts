/**
 * IPv4 and IPv6 address and CIDR arithmetic on bigint: parsing (strict, like Go's net/netip, so
 * that what Docker rejects is rejected here too), canonical formatting (RFC 5952 for IPv6) and
 * the containment and overlap tests IPAM and the firewall need.
 */

export type IpFamily = 4 | 6;

export interface IpAddress {
  family: IpFamily;
  value: bigint;
}

/** A prefix as written: `address` keeps host bits so callers can tell a non-canonical prefix. */
export interface Cidr {
  family: IpFamily;
  address: bigint;
  bits: number;
}

export const familyBits = (family: IpFamily): number => (family === 4 ? 32 : 128);

const V4_PART = /^(0|[1-9]\d{0,2})$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

function parseIpv4(text: string): bigint | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!V4_PART.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

/** Parses up to `max` 16-bit groups; a dotted IPv4 tail counts as two groups. */
function parseGroups(text: string, max: number, allowV4Tail: boolean): bigint[] | undefined {
  if (text === '') return [];
  const parts = text.split(':');
  const groups: bigint[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (allowV4Tail && i === parts.length - 1 && part.includes('.')) {
      const v4 = parseIpv4(part);
      if (v4 === undefined) return undefined;
      groups.push(v4 >> 16n, v4 & 0xffffn);
    } else if (HEX_GROUP.test(part)) {
      groups.push(BigInt(parseInt(part, 16)));
    } else {
      return undefined;
    }
  }
  return groups.length <= max ? groups : undefined;
}

function parseIpv6(text: string): bigint | undefined {
  if (text.includes('%')) return undefined; // zones have no meaning for a subnet
  const halves = text.split('::');
  let groups: bigint[];
  if (halves.length === 1) {
    const all = parseGroups(text, 8, true);
    if (all?.length !== 8) return undefined;
    groups = all;
  } else if (halves.length === 2) {
    const head = parseGroups(halves[0] ?? '', 7, false);
    const tail = parseGroups(halves[1] ?? '', 7, true);
    if (head === undefined || tail === undefined || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array<bigint>(8 - head.length - tail.length).fill(0n), ...tail];
  } else {
    return undefined;
  }
  return groups.reduce((acc, group) => (acc << 16n) | group, 0n);
}

/** Parses an IPv4 or IPv6 address; undefined when the text is not exactly one address. */
export function parseIp(text: string): IpAddress | undefined {
  if (text.includes(':')) {
    const value = parseIpv6(text);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseIpv4(text);
  return value === undefined ? undefined : { family: 4, value };
}

function formatIpv4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
}

function formatIpv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt((7 - i) * 16)) & 0xffffn));
  // IPv4-mapped addresses keep their dotted tail, as Go and most tools print them.
  if (value >> 32n === 0xffffn) return `::ffff:${formatIpv4(value & 0xffffffffn)}`;
  // RFC 5952: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

export function formatIp(address: IpAddress): string {
  return address.family === 4 ? formatIpv4(address.value) : formatIpv6(address.value);
}

/** Parses `address/bits`; undefined unless both parts are valid. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = parseIp(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (address === undefined || !/^(0|[1-9]\d{0,2})$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  if (bits > familyBits(address.family)) return undefined;
  return { family: address.family, address: address.value, bits };
}

const hostMask = (cidr: Cidr): bigint => (1n << BigInt(familyBits(cidr.family) - cidr.bits)) - 1n;

/** The first address of the prefix (host bits cleared). */
export const cidrFirst = (cidr: Cidr): bigint => cidr.address & ~hostMask(cidr);

/** The last address of the prefix (host bits set). */
export const cidrLast = (cidr: Cidr): bigint => cidrFirst(cidr) | hostMask(cidr);

/** How many addresses the prefix holds. */
export const cidrSize = (cidr: Cidr): bigint => hostMask(cidr) + 1n;

export const maskCidr = (cidr: Cidr): Cidr => ({ ...cidr, address: cidrFirst(cidr) });

export const isCanonical = (cidr: Cidr): boolean => cidr.address === cidrFirst(cidr);

export function formatCidr(cidr: Cidr): string {
  return `${formatIp({ family: cidr.family, value: cidr.address })}/${cidr.bits}`;
}

export function cidrContains(cidr: Cidr, address: IpAddress): boolean {
  return (
    cidr.family === address.family && address.value >= cidrFirst(cidr) && address.value <= cidrLast(cidr)
  );
}

export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return a.family === b.family && cidrFirst(a) <= cidrLast(b) && cidrFirst(b) <= cidrLast(a);
}

/** True when `inner` lies completely inside `outer`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    cidrFirst(inner) >= cidrFirst(outer) &&
    cidrLast(inner) <= cidrLast(outer)
  );
}

/** Canonical text of an address given as text; undefined when it does not parse. */
export function canonicalIp(text: string): string | undefined {
  const address = parseIp(text);
  return address === undefined ? undefined : formatIp(address);
}
