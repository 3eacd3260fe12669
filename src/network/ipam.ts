/**
 * IP address management for bridge networks, with Docker's (libnetwork's) rules and messages:
 * - planNetworkPools() validates a network's IPAM configuration (--subnet, --ip-range, --gateway,
 *   --aux-address) and picks a default subnet from the address pools (daemon.json
 *   `default-address-pools`) that overlaps neither another network nor a host route;
 * - Ipam holds one network's allocations: sequential, never the network, broadcast, gateway or
 *   auxiliary addresses, continuing after the last address handed out and wrapping (a released
 *   address is not reused at once), one IPv4 and one IPv6 address per endpoint on dual-stack
 *   networks. Every change is written to the network's ipam.json before it is returned, so a
 *   restart (or a crash) never hands an address out twice.
 * The network manager must serialise network creation itself (planNetworkPools reads the used
 * subnets it is given); Ipam serialises its own operations.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { writeJsonAtomic } from '../common/atomic-file.js';
import {
  conflict,
  errnoCode,
  forbidden,
  internal,
  invalidArgument,
  notFound,
  unavailable,
} from '../common/errors.js';
import {
  cidrContains,
  cidrCovers,
  cidrFirst,
  cidrLast,
  cidrOverlaps,
  cidrSize,
  familyBits,
  formatCidr,
  formatIp,
  isCanonical,
  maskCidr,
  parseCidr,
  parseIp,
} from './subnets.js';
import type { Cidr, IpFamily } from './subnets.js';

// ---------------------------------------------------------------------------------------------
// Default address pools

/** One entry of daemon.json `default-address-pools`: `base` split into prefixes of `size` bits. */
export interface AddressPool {
  base: string;
  size: number;
}

/** Docker's local default pools: 172.17-172.31 as /16s, then 192.168.0.0/16 as /20s. */
export const DEFAULT_ADDRESS_POOLS: readonly AddressPool[] = [
  ...Array.from({ length: 15 }, (_, i) => ({ base: `172.${17 + i}.0.0/16`, size: 16 })),
  { base: '192.168.0.0/16', size: 20 },
];

/**
 * A unique-local IPv6 pool like Docker 27's default: fdXX:XXXX:XXXX::/48 (40 bits derived from
 * `seed`, e.g. the host's machine id) split into /64s. Add it to the pools to let IPv6 networks
 * get a subnet without --subnet.
 */
export function ulaAddressPool(seed: string): AddressPool {
  const hash = createHash('sha256').update(seed).digest();
  const hex = [...hash.subarray(0, 5)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return { base: `fd${hex.slice(0, 2)}:${hex.slice(2, 6)}:${hex.slice(6, 10)}::/48`, size: 64 };
}

export interface ParsedPool {
  base: Cidr;
  size: number;
}

/** Validates pools with daemon.json's messages. */
export function parseAddressPools(pools: readonly AddressPool[]): ParsedPool[] {
  return pools.map((pool) => {
    const base = parseCidr(pool.base);
    if (base === undefined) throw invalidArgument(`invalid base pool "${pool.base}": invalid CIDR address`);
    if (
      !Number.isInteger(pool.size) ||
      pool.size <= 0 ||
      pool.size < base.bits ||
      pool.size > familyBits(base.family)
    )
      throw invalidArgument(`invalid pools size: ${pool.size}`);
    return { base: maskCidr(base), size: pool.size };
  });
}

// ---------------------------------------------------------------------------------------------
// Host routes

/** Returns the host's routes as CIDRs (default routes left out); injectable for tests. */
export type RouteSource = () => Promise<string[]>;

const prefixLength = (mask: number): number => {
  let bits = 0;
  for (let m = mask >>> 0; m !== 0; m = (m << 1) >>> 0) bits++;
  return bits;
};

/** Parses /proc/net/route: destination and mask are 32-bit hex numbers in host byte order. */
export function parseIpv4Routes(text: string, littleEndian = endianness() === 'LE'): string[] {
  const routes: string[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const toNetworkOrder = (hex: string): number => {
      const n = parseInt(hex, 16) >>> 0;
      return littleEndian
        ? (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | (n >>> 24)) >>> 0
        : n;
    };
    const destination = toNetworkOrder(fields[1] ?? '0');
    const mask = toNetworkOrder(fields[7] ?? '0');
    if (mask === 0) continue; // the default route overlaps everything
    routes.push(formatCidr({ family: 4, address: BigInt(destination), bits: prefixLength(mask) }));
  }
  return routes;
}

/** Parses /proc/net/ipv6_route: 32 hex digits of destination, then the prefix length in hex. */
export function parseIpv6Routes(text: string): string[] {
  const routes: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10 || !/^[0-9a-f]{32}$/i.test(fields[0] ?? '')) continue;
    const bits = parseInt(fields[1] ?? '0', 16);
    if (bits === 0) continue;
    routes.push(formatCidr({ family: 6, address: BigInt(`0x${fields[0]}`), bits }));
  }
  return routes;
}

/** Reads the routes of the caller's network namespace (IPv6: all tables, local ones too). */
export async function readHostRoutes(procNet = '/proc/net'): Promise<string[]> {
  const read = (name: string): Promise<string> => readFile(join(procNet, name), 'utf8').catch(() => '');
  const [v4, v6] = await Promise.all([read('route'), read('ipv6_route')]);
  return [...parseIpv4Routes(v4), ...parseIpv6Routes(v6)];
}

/**
 * The first `size`-bit prefix of the pools (in order) that overlaps none of `blocked`. Skips
 * whole blockers at a time, so a pool of 2^56 candidates costs one step per blocker.
 */
export function pickDefaultSubnet(
  family: IpFamily,
  pools: readonly ParsedPool[],
  blocked: readonly Cidr[],
): Cidr | undefined {
  for (const pool of pools) {
    if (pool.base.family !== family) continue;
    const step = 1n << BigInt(familyBits(family) - pool.size);
    const first = cidrFirst(pool.base);
    const last = cidrLast(pool.base);
    for (let start = first; start <= last;) {
      const candidate: Cidr = { family, address: start, bits: pool.size };
      const blocker = blocked.find((b) => cidrOverlaps(b, candidate));
      if (blocker === undefined) return candidate;
      const after = cidrLast(blocker) + 1n;
      const aligned = first + ((after - first + step - 1n) / step) * step;
      start = aligned > start ? aligned : start + step;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Pools of one network

/** One subnet of a network in the Engine API's shape (IPAM.Config entries of create and inspect). */
export interface IpamPoolConfig {
  Subnet: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

/** A pool of a network as planned and stored: the config, gateway filled in. */
export interface PlannedPool {
  config: IpamPoolConfig & { Gateway: string };
  /** The user gave the subnet (only then may endpoints ask for a static address, like Docker). */
  userSubnet: boolean;
}

/** A pool before its gateway is known. */
interface Draft {
  family: IpFamily;
  subnet: Cidr;
  /** Where dynamic addresses come from: the ip-range, or the whole subnet. */
  range: Cidr;
  aux: Map<bigint, string>;
  userSubnet: boolean;
  ipRangeText?: string;
}

interface Pool extends Draft {
  gateway: bigint;
  allocated: Map<bigint, string>;
  /** The last dynamically allocated address; the next search starts after it. */
  cursor?: bigint;
}

const familyName = (family: IpFamily): string => `IPv${family}`;

/**
 * Addresses no endpoint gets: libnetwork reserves the subnet's first address (except on IPv4 /31
 * and /32) and the IPv4 broadcast address; auxiliary addresses are reserved by the user.
 */
function isReserved(draft: Draft, address: bigint): boolean {
  const size = cidrSize(draft.subnet);
  if (address === cidrFirst(draft.subnet) && !(draft.family === 4 && size <= 2n)) return true;
  if (address === cidrLast(draft.subnet) && draft.family === 4 && size > 2n) return true;
  return draft.aux.has(address);
}

/** Taken for a dynamic or static allocation: reserved, the gateway, or allocated. */
const isTaken = (pool: Pool, address: bigint): boolean =>
  isReserved(pool, address) || address === pool.gateway || pool.allocated.has(address);

/**
 * The first address of `range` at or after `from` (wrapping once) that is not taken. The walk is
 * bounded by `takenCount`, an upper bound of the taken addresses: among k+1 consecutive
 * candidates with at most k taken, one is free.
 */
function firstFree(
  range: Cidr,
  from: bigint,
  taken: (address: bigint) => boolean,
  takenCount: number,
): bigint | undefined {
  const low = cidrFirst(range);
  const high = cidrLast(range);
  const rangeSize = high - low + 1n;
  const bound = BigInt(takenCount + 1);
  const steps = bound < rangeSize ? bound : rangeSize;
  let candidate = from >= low && from <= high ? from : low;
  for (let i = 0n; i < steps; i++) {
    if (!taken(candidate)) return candidate;
    candidate = candidate === high ? low : candidate + 1n;
  }
  return undefined;
}

function toPlanned(pool: Pool): PlannedPool {
  const config: PlannedPool['config'] = {
    Subnet: formatCidr(pool.subnet),
    Gateway: formatIp({ family: pool.family, value: pool.gateway }),
  };
  if (pool.ipRangeText !== undefined) config.IPRange = pool.ipRangeText;
  if (pool.aux.size > 0)
    config.AuxiliaryAddresses = Object.fromEntries(
      [...pool.aux].map(([address, name]) => [name, formatIp({ family: pool.family, value: address })]),
    );
  return { config, userSubnet: pool.userSubnet };
}

/** Builds a pool from a stored or planned record, checking every field. */
function fromPlanned(planned: PlannedPool): Pool {
  const { config } = planned;
  const subnet = parseCidr(config.Subnet);
  if (subnet === undefined || !isCanonical(subnet)) throw new Error(`bad subnet ${config.Subnet}`);
  const range = config.IPRange === undefined ? subnet : parseCidr(config.IPRange);
  if (range === undefined || !cidrCovers(subnet, range)) throw new Error(`bad ip-range ${config.IPRange}`);
  const gateway = parseIp(config.Gateway);
  if (gateway === undefined || !cidrContains(subnet, gateway))
    throw new Error(`bad gateway ${config.Gateway}`);
  const aux = new Map<bigint, string>();
  for (const [name, text] of Object.entries(config.AuxiliaryAddresses ?? {})) {
    const address = parseIp(text);
    if (address === undefined || !cidrContains(subnet, address))
      throw new Error(`bad auxiliary address ${text}`);
    aux.set(address.value, name);
  }
  const pool: Pool = {
    family: subnet.family,
    subnet,
    range: maskCidr(range),
    gateway: gateway.value,
    aux,
    userSubnet: planned.userSubnet === true,
    allocated: new Map(),
  };
  if (config.IPRange !== undefined) pool.ipRangeText = config.IPRange;
  return pool;
}

/**
 * The default bridge's pool from daemon.json: `bip` is the bridge's address with the prefix
 * (172.17.0.1/16), `fixed-cidr` the optional ip-range. Not a user subnet (no --ip there).
 */
export function bipPool(bip: string, fixedCidr?: string): PlannedPool {
  const cidr = parseCidr(bip);
  if (cidr === undefined) throw invalidArgument(`invalid bip ${bip}: invalid CIDR address`);
  const subnet = maskCidr(cidr);
  const pool: Pool = {
    family: cidr.family,
    subnet,
    range: subnet,
    gateway: cidr.address,
    aux: new Map(),
    userSubnet: false,
    allocated: new Map(),
  };
  if (isReserved(pool, cidr.address))
    throw invalidArgument(`invalid bip ${bip}: the bridge needs a host address of the subnet`);
  if (fixedCidr !== undefined && fixedCidr !== '') {
    const range = parseCidr(fixedCidr);
    if (range === undefined || !cidrCovers(subnet, range))
      throw invalidArgument(
        `invalid fixed-cidr ${fixedCidr}: it must lie within bip's subnet ${formatCidr(subnet)}`,
      );
    pool.range = maskCidr(range);
    pool.ipRangeText = formatCidr(pool.range);
  }
  return toPlanned(pool);
}

// ---------------------------------------------------------------------------------------------
// Planning a network's pools

export interface PlanRequest {
  /** The API's IPAM.Config (--subnet, --ip-range, --gateway, --aux-address). */
  configs?: readonly IpamPoolConfig[] | null;
  enableIPv4?: boolean;
  enableIPv6?: boolean;
}

export interface PlanContext {
  /** Subnets of the other networks (any family). */
  usedSubnets: readonly string[];
  /** daemon.json default-address-pools (default: DEFAULT_ADDRESS_POOLS). */
  defaultPools?: readonly AddressPool[];
  /** Host routes; defaults to readHostRoutes(). */
  routes?: RouteSource;
}

interface ValidConfig {
  subnet: Cidr;
  range?: Cidr;
  rangeText?: string;
  gateway?: bigint;
  aux: Map<bigint, string>;
}

/** Docker's ValidateIPAM: every problem of every config, in one message. */
function validateConfigs(
  configs: readonly IpamPoolConfig[],
  enabled: (family: IpFamily) => boolean,
): ValidConfig[] {
  const problems: string[] = [];
  const valid: ValidConfig[] = [];
  for (const config of configs) {
    if (!config.Subnet) {
      if (config.IPRange || config.Gateway || Object.keys(config.AuxiliaryAddresses ?? {}).length > 0)
        throw invalidArgument('every ip-range or gateway must have a corresponding subnet');
      continue;
    }
    const subnet = parseCidr(config.Subnet);
    if (subnet === undefined) {
      problems.push(`invalid subnet ${config.Subnet}: invalid CIDR block notation`);
      continue;
    }
    if (!enabled(subnet.family)) continue; // Docker ignores the subnets of a family that is off
    const family = familyName(subnet.family);
    if (!isCanonical(subnet))
      problems.push(`invalid subnet ${formatCidr(subnet)}: it should be ${formatCidr(maskCidr(subnet))}`);
    const entry: ValidConfig = { subnet: maskCidr(subnet), aux: new Map() };

    if (config.IPRange) {
      const text = config.IPRange;
      const range = parseCidr(text);
      if (range === undefined) {
        problems.push(`invalid ip-range ${text}: invalid CIDR block notation`);
      } else if (range.family !== subnet.family) {
        problems.push(`invalid ip-range ${text}: parent subnet is an ${family} block`);
      } else {
        const before = problems.length;
        if (range.bits < subnet.bits)
          problems.push(
            `invalid ip-range ${text}: CIDR block is bigger than its parent subnet ${formatCidr(subnet)}`,
          );
        if (!isCanonical(range))
          problems.push(`invalid ip-range ${formatCidr(range)}: it should be ${formatCidr(maskCidr(range))}`);
        if (!cidrOverlaps(subnet, range))
          problems.push(
            `invalid ip-range ${text}: parent subnet ${formatCidr(subnet)} doesn't contain ip-range`,
          );
        if (problems.length === before) {
          entry.range = range;
          entry.rangeText = formatCidr(range);
        }
      }
    }

    const checkAddress = (text: string): bigint | string => {
      const address = parseIp(text);
      if (address === undefined) return 'invalid address';
      if (address.family !== subnet.family) return `parent subnet is an ${family} block`;
      if (!cidrContains(subnet, address))
        return `parent subnet ${formatCidr(subnet)} doesn't contain this address`;
      return address.value;
    };
    if (config.Gateway) {
      const gateway = checkAddress(config.Gateway);
      if (typeof gateway === 'string') problems.push(`invalid gateway ${config.Gateway}: ${gateway}`);
      else entry.gateway = gateway;
    }
    for (const [name, text] of Object.entries(config.AuxiliaryAddresses ?? {})) {
      const aux = checkAddress(text);
      if (typeof aux === 'string') problems.push(`invalid auxiliary address ${name}: ${aux}`);
      else entry.aux.set(aux, name);
    }
    valid.push(entry);
  }
  if (problems.length > 0) throw invalidArgument(`invalid network config:\n${problems.join('\n')}`);
  return valid;
}

function parseCidrs(texts: readonly string[], what: string): Cidr[] {
  return texts.map((text) => {
    const cidr = parseCidr(text);
    if (cidr === undefined) throw internal(`${what} ${text} is not a CIDR`);
    return maskCidr(cidr);
  });
}

/**
 * Works out a new network's pools: the user's subnets (validated, no overlap with each other or
 * with other networks) and, for each enabled family without one, a default subnet from the
 * pools that overlaps neither another network nor a host route. Gateways default to the first
 * usable address of the ip-range (or subnet), as libnetwork allocates them.
 */
export async function planNetworkPools(request: PlanRequest, context: PlanContext): Promise<PlannedPool[]> {
  const enableIPv4 = request.enableIPv4 ?? true;
  const enableIPv6 = request.enableIPv6 ?? false;
  const enabled = (family: IpFamily): boolean => (family === 4 ? enableIPv4 : enableIPv6);
  const configs = validateConfigs(request.configs ?? [], enabled);
  const used = parseCidrs(context.usedSubnets, 'used subnet');

  const drafts: { draft: Draft; gateway?: bigint }[] = [];
  for (const config of configs) {
    const overlapping = [...used, ...drafts.map((d) => d.draft.subnet)].some((other) =>
      cidrOverlaps(other, config.subnet),
    );
    if (overlapping) throw forbidden('Pool overlaps with other one on this address space');
    const draft: Draft = {
      family: config.subnet.family,
      subnet: config.subnet,
      range: config.range === undefined ? config.subnet : maskCidr(config.range),
      aux: config.aux,
      userSubnet: true,
    };
    if (config.rangeText !== undefined) draft.ipRangeText = config.rangeText;
    drafts.push(config.gateway === undefined ? { draft } : { draft, gateway: config.gateway });
  }

  const missing = ([4, 6] as const).filter(
    (family) => enabled(family) && !drafts.some((d) => d.draft.family === family),
  );
  if (missing.length > 0) {
    const defaults = parseAddressPools(context.defaultPools ?? DEFAULT_ADDRESS_POOLS);
    const routes = parseCidrs(await (context.routes ?? readHostRoutes)(), 'host route');
    for (const family of missing) {
      const subnet = pickDefaultSubnet(family, defaults, [...used, ...routes]);
      if (subnet === undefined)
        throw unavailable(
          `could not find an available, non-overlapping ${familyName(family)} address pool among the defaults to assign to the network`,
        );
      drafts.push({ draft: { family, subnet, range: subnet, aux: new Map(), userSubnet: false } });
    }
  }

  const pools = drafts.map(({ draft, gateway }): Pool => {
    if (gateway !== undefined && isReserved(draft, gateway))
      throw forbidden(
        `failed to allocate gateway (${formatIp({ family: draft.family, value: gateway })}): Address already in use`,
      );
    const chosen =
      gateway ??
      firstFree(
        draft.range,
        cidrFirst(draft.range),
        (address) => isReserved(draft, address),
        draft.aux.size + 2,
      );
    if (chosen === undefined)
      throw unavailable('failed to allocate gateway: no available addresses on this pool');
    return { ...draft, gateway: chosen, allocated: new Map() };
  });
  return pools.map(toPlanned);
}

// ---------------------------------------------------------------------------------------------
// One network's allocations

/** An address handed to an endpoint. */
export interface AssignedAddress {
  address: string;
  prefixLen: number;
  gateway: string;
}

export interface EndpointAddresses {
  ipv4?: AssignedAddress;
  ipv6?: AssignedAddress;
}

export interface AllocateRequest {
  /** Who holds the addresses (an endpoint or container id); release() frees by owner. */
  owner: string;
  /** Static addresses (--ip, --ip6). */
  ipv4?: string;
  ipv6?: string;
}

export interface Allocation {
  address: string;
  owner: string;
}

/** The content of ipam.json. */
export interface IpamFile {
  version: 1;
  pools: (PlannedPool & { cursor?: string; allocations: Record<string, string> })[];
}

export interface IpamOptions {
  /** Where the state lives, e.g. `<dataRoot>/networks/<id>/ipam.json`. */
  path: string;
  /** The network, for Docker's exhaustion message. */
  network?: { name: string; id: string };
  /** Stores the state durably; by default an atomic JSON write to `path`. */
  persist?: (path: string, state: IpamFile) => Promise<void>;
}

const defaultPersist = (path: string, state: IpamFile): Promise<void> => writeJsonAtomic(path, state);

function serialize(pools: readonly Pool[]): IpamFile {
  return {
    version: 1,
    pools: pools.map((pool) => {
      const entry: IpamFile['pools'][number] = {
        ...toPlanned(pool),
        allocations: Object.fromEntries(
          [...pool.allocated].map(([address, owner]) => [
            formatIp({ family: pool.family, value: address }),
            owner,
          ]),
        ),
      };
      if (pool.cursor !== undefined) entry.cursor = formatIp({ family: pool.family, value: pool.cursor });
      return entry;
    }),
  };
}

function deserialize(value: unknown): Pool[] {
  if (typeof value !== 'object' || value === null) throw new Error('not an object');
  const file = value as Partial<IpamFile>;
  if (file.version !== 1 || !Array.isArray(file.pools)) throw new Error('unknown version or no pools');
  return file.pools.map((entry) => {
    if (typeof entry !== 'object' || entry === null || typeof entry.config !== 'object')
      throw new Error('bad pool');
    const pool = fromPlanned(entry);
    for (const [text, owner] of Object.entries(entry.allocations ?? {})) {
      const address = parseIp(text);
      if (address === undefined || !cidrContains(pool.subnet, address) || typeof owner !== 'string')
        throw new Error(`bad allocation ${text}`);
      pool.allocated.set(address.value, owner);
    }
    if (entry.cursor !== undefined) {
      const cursor = parseIp(entry.cursor);
      if (cursor === undefined || !cidrContains(pool.subnet, cursor))
        throw new Error(`bad cursor ${entry.cursor}`);
      pool.cursor = cursor.value;
    }
    return pool;
  });
}

const clonePools = (pools: readonly Pool[]): Pool[] =>
  pools.map((pool) => ({ ...pool, allocated: new Map(pool.allocated) }));

function assigned(pool: Pool, address: bigint): AssignedAddress {
  return {
    address: formatIp({ family: pool.family, value: address }),
    prefixLen: pool.subnet.bits,
    gateway: formatIp({ family: pool.family, value: pool.gateway }),
  };
}

/** Docker's EndpointIPAMConfig.Validate. */
function parseStatic(text: string | undefined, family: IpFamily): bigint | undefined {
  if (text === undefined || text === '') return undefined;
  const address = parseIp(text);
  if (address === undefined || address.family !== family || address.value === 0n)
    throw invalidArgument(`invalid ${familyName(family)} address: ${text}`);
  return address.value;
}

const UNSUPPORTED_STATIC =
  'user specified IP address is supported only when connecting to networks with user configured subnets';

export class Ipam {
  private current: Pool[];
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly options: IpamOptions,
    pools: Pool[],
  ) {
    this.current = pools;
  }

  /** Starts a network's state with its planned pools and stores it (replacing any old state). */
  static async create(options: IpamOptions, pools: readonly PlannedPool[]): Promise<Ipam> {
    let parsed: Pool[];
    try {
      parsed = pools.map(fromPlanned);
    } catch (err) {
      throw invalidArgument(`invalid IPAM pools: ${err instanceof Error ? err.message : String(err)}`);
    }
    await (options.persist ?? defaultPersist)(options.path, serialize(parsed));
    return new Ipam(options, parsed);
  }

  /**
   * Loads a network's state. When the file does not exist and `pools` are given, starts it as
   * create() does (a crash between storing the network and its IPAM state); otherwise not-found.
   */
  static async open(options: IpamOptions, pools?: readonly PlannedPool[]): Promise<Ipam> {
    let text: string;
    try {
      text = await readFile(options.path, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') {
        if (pools !== undefined) return Ipam.create(options, pools);
        throw notFound(`IPAM state ${options.path} does not exist`);
      }
      throw internal(`cannot read IPAM state ${options.path}`, err);
    }
    try {
      return new Ipam(options, deserialize(JSON.parse(text)));
    } catch (err) {
      throw internal(
        `IPAM state ${options.path} is corrupt: ${err instanceof Error ? err.message : String(err)}`,
        err,
      );
    }
  }

  /** The network's pools (IPAM.Config of inspect is `pools().map((p) => p.config)`). */
  pools(): PlannedPool[] {
    return this.current.map(toPlanned);
  }

  allocations(): Allocation[] {
    return this.current.flatMap((pool) =>
      [...pool.allocated].map(([address, owner]) => ({
        address: formatIp({ family: pool.family, value: address }),
        owner,
      })),
    );
  }

  /**
   * Gives the owner one address per family the network has: the static one it asks for or the
   * next free one. Asking again for an owner that already holds addresses returns them, so a
   * retry after a crash is harmless.
   */
  async allocate(request: AllocateRequest): Promise<EndpointAddresses> {
    const { result, stored } = await this.allocateAhead(request);
    await stored;
    return result;
  }

  /**
   * allocate() that answers as soon as the addresses are chosen, with the write of ipam.json
   * still going (`stored`): the caller configures the interface meanwhile and must not let the
   * container run before `stored` resolves. Until then later operations wait, and a failed write
   * leaves the addresses free again.
   */
  allocateAhead(request: AllocateRequest): Promise<{ result: EndpointAddresses; stored: Promise<void> }> {
    const wanted = { 4: parseStatic(request.ipv4, 4), 6: parseStatic(request.ipv6, 6) };
    return this.mutateAhead((pools) => {
      const result: EndpointAddresses = {};
      for (const family of [4, 6] as const) {
        const mine = pools.filter((pool) => pool.family === family);
        const wish = wanted[family];
        if (mine.length === 0) {
          if (wish !== undefined) throw invalidArgument(UNSUPPORTED_STATIC);
          continue;
        }
        result[family === 4 ? 'ipv4' : 'ipv6'] = this.allocateIn(mine, family, request.owner, wish);
      }
      return result;
    });
  }

  /** Frees every address the owner holds. */
  release(owner: string): Promise<void> {
    return this.mutate((pools) => {
      for (const pool of pools)
        for (const [address, holder] of pool.allocated) if (holder === owner) pool.allocated.delete(address);
    });
  }

  /** Frees the addresses of owners not in `owners` (reconciliation after a crash); returns them. */
  retain(owners: Iterable<string>): Promise<Allocation[]> {
    const keep = new Set(owners);
    return this.mutate((pools) => {
      const freed: Allocation[] = [];
      for (const pool of pools)
        for (const [address, owner] of pool.allocated)
          if (!keep.has(owner)) {
            pool.allocated.delete(address);
            freed.push({ address: formatIp({ family: pool.family, value: address }), owner });
          }
      return freed;
    });
  }

  private allocateIn(
    pools: Pool[],
    family: IpFamily,
    owner: string,
    wish: bigint | undefined,
  ): AssignedAddress {
    for (const pool of pools)
      for (const [address, holder] of pool.allocated)
        if (holder === owner) {
          if (wish !== undefined && wish !== address)
            throw conflict(
              `endpoint ${owner} already holds ${formatIp({ family, value: address })}, not ${formatIp({ family, value: wish })}`,
            );
          return assigned(pool, address);
        }

    if (wish !== undefined) {
      const user = pools.filter((pool) => pool.userSubnet);
      if (user.length === 0) throw invalidArgument(UNSUPPORTED_STATIC);
      const pool = user.find((p) => cidrContains(p.subnet, { family, value: wish }));
      if (pool === undefined)
        throw invalidArgument(
          `no configured subnet or ip-range contain the IP address ${formatIp({ family, value: wish })}`,
        );
      if (isTaken(pool, wish)) throw forbidden('Address already in use');
      pool.allocated.set(wish, owner);
      return assigned(pool, wish);
    }

    for (const pool of pools) {
      const from = pool.cursor === undefined ? cidrFirst(pool.range) : pool.cursor + 1n;
      const takenCount = pool.allocated.size + pool.aux.size + 3; // + network, broadcast, gateway
      const address = firstFree(pool.range, from, (candidate) => isTaken(pool, candidate), takenCount);
      if (address === undefined) continue;
      pool.allocated.set(address, owner);
      pool.cursor = address;
      return assigned(pool, address);
    }
    const network = this.options.network;
    throw unavailable(
      `no available ${familyName(family)} addresses on this network's address pools` +
        (network === undefined ? '' : `: ${network.name} (${network.id})`),
    );
  }

  /** Resolves once every operation started so far has finished (its write included). */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }

  /**
   * Runs `change` on a copy of the pools, stores the copy, and only then makes it current: a
   * failed write leaves memory as it was. Operations run one at a time.
   */
  private async mutate<T>(change: (pools: Pool[]) => T): Promise<T> {
    const { result, stored } = await this.mutateAhead(change);
    await stored;
    return result;
  }

  /** mutate(), answering with the result as soon as `change` ran and the write as `stored`. */
  private mutateAhead<T>(change: (pools: Pool[]) => T): Promise<{ result: T; stored: Promise<void> }> {
    return new Promise((resolve, reject) => {
      const run = async (): Promise<void> => {
        const next = clonePools(this.current);
        let result: T;
        try {
          result = change(next);
        } catch (err) {
          reject(err as Error);
          return;
        }
        const stored = (this.options.persist ?? defaultPersist)(this.options.path, serialize(next)).then(
          () => {
            this.current = next;
          },
        );
        resolve({ result, stored });
        await stored;
      };
      this.tail = this.tail.then(run).catch(() => undefined);
    });
  }
}
