/**
 * berth's nftables ruleset: one table of its own (family inet, so one rule set serves IPv4 and
 * IPv6, nat included since Linux 5.2), rebuilt from the complete desired state and swapped in
 * by one atomic nft transaction. Other tables are never touched.
 *
 * Semantics (Docker's bridge driver, nftables flavour):
 * - forward: internal networks exchange nothing with other interfaces; DNATed traffic to a
 *   published container port is accepted (also from other networks, as through any host
 *   address); replies are accepted; traffic between two berth bridges is dropped; icc=false
 *   drops traffic inside a bridge; containers may go out; anything else towards a bridge (direct
 *   routing from outside to a container address) is dropped.
 * - nat: published ports are DNATed for local destinations, from outside (prerouting) and from
 *   the host itself (output: 127.0.0.1:port works once the bridge has
 *   net.ipv4.conf.<bridge>.route_localnet=1); traffic of non-internal networks leaving through
 *   another interface is masqueraded, and so are DNATed flows that come back into their own
 *   bridge (hairpin) and loopback-sourced flows into a bridge.
 */
import { spawn } from 'node:child_process';
import { internal, invalidArgument, unavailable } from '../common/errors.js';
import { formatCidr, formatIp, maskCidr, parseCidr, parseIp } from './subnets.js';
import type { Cidr, IpAddress } from './subnets.js';

export interface FirewallNetwork {
  bridge: string;
  subnets: string[];
  internal?: boolean;
  /** com.docker.network.bridge.enable_ip_masquerade (default true). */
  masquerade?: boolean;
  /** com.docker.network.bridge.enable_icc (default true). */
  icc?: boolean;
}

export interface FirewallPortMap {
  proto: 'tcp' | 'udp';
  /** '' (or absent), 0.0.0.0 or :: mean any address of the container address's family. */
  hostIp?: string;
  hostPort: number;
  containerIp: string;
  containerPort: number;
  bridge: string;
}

export interface FirewallState {
  networks: FirewallNetwork[];
  portMaps: FirewallPortMap[];
}

export interface FirewallOptions {
  /** Table name in family inet (default `berth`). */
  table?: string;
  /** Run nft inside this network namespace (e.g. /run/netns/x) through nsenter. */
  netnsPath?: string;
  nftBinary?: string;
  nsenterBinary?: string;
  /** Upper bound for one nft run. */
  timeoutMs?: number;
}

const BRIDGE_NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const TABLE_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

interface Network {
  bridge: string;
  subnets: Cidr[];
  internal: boolean;
  masquerade: boolean;
  icc: boolean;
}

interface PortMap {
  proto: 'tcp' | 'udp';
  hostIp?: IpAddress;
  hostPort: number;
  container: IpAddress;
  containerPort: number;
  bridge: string;
}

const quote = (name: string): string => `"${name}"`;
const ipKeyword = (family: 4 | 6): string => (family === 4 ? 'ip' : 'ip6');

function checkPort(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 65535)
    throw invalidArgument(`invalid ${field} ${value}: must be an integer from 1 to 65535`);
}

function normalize(state: FirewallState): { networks: Network[]; portMaps: PortMap[] } {
  const networks = state.networks.map((network): Network => {
    if (!BRIDGE_NAME.test(network.bridge)) throw invalidArgument(`invalid bridge name "${network.bridge}"`);
    return {
      bridge: network.bridge,
      subnets: network.subnets.map((text) => {
        const cidr = parseCidr(text);
        if (cidr === undefined) throw invalidArgument(`invalid subnet ${text} of bridge ${network.bridge}`);
        return maskCidr(cidr);
      }),
      internal: network.internal ?? false,
      masquerade: network.masquerade ?? true,
      icc: network.icc ?? true,
    };
  });
  const bridges = new Set<string>();
  for (const network of networks) {
    if (bridges.has(network.bridge)) throw invalidArgument(`bridge ${network.bridge} is listed twice`);
    bridges.add(network.bridge);
  }
  const portMaps = state.portMaps.map((map): PortMap => {
    const where = `${map.hostIp ?? ''}:${map.hostPort}/${map.proto}`;
    if (map.proto !== 'tcp' && map.proto !== 'udp')
      throw invalidArgument(`invalid protocol ${String(map.proto)}`);
    checkPort(map.hostPort, 'host port');
    checkPort(map.containerPort, 'container port');
    if (!bridges.has(map.bridge))
      throw invalidArgument(`port map ${where} names unknown bridge ${map.bridge}`);
    const container = parseIp(map.containerIp);
    if (container === undefined) throw invalidArgument(`invalid container address ${map.containerIp}`);
    const hostText = map.hostIp ?? '';
    const host = hostText === '' ? undefined : parseIp(hostText);
    if (hostText !== '' && host === undefined) throw invalidArgument(`invalid host address ${hostText}`);
    if (host !== undefined && host.family !== container.family)
      throw invalidArgument(
        `port map ${where}: host address and container address ${map.containerIp} differ in family`,
      );
    const result: PortMap = {
      proto: map.proto,
      hostPort: map.hostPort,
      container,
      containerPort: map.containerPort,
      bridge: map.bridge,
    };
    if (host !== undefined && host.value !== 0n) result.hostIp = host;
    return result;
  });
  return { networks, portMaps };
}

const dnatTarget = (map: PortMap): string =>
  map.container.family === 4
    ? `${formatIp(map.container)}:${map.containerPort}`
    : `[${formatIp(map.container)}]:${map.containerPort}`;

/** The table's definition (without the replace wrapper); pure, for tests and for apply(). */
export function renderTable(state: FirewallState, table = 'berth'): string {
  if (!TABLE_NAME.test(table)) throw invalidArgument(`invalid nftables table name "${table}"`);
  const { networks, portMaps } = normalize(state);
  const internalBridges = new Set(networks.filter((n) => n.internal).map((n) => n.bridge));
  const published = portMaps.filter((map) => !internalBridges.has(map.bridge));

  const forward: string[] = [];
  for (const n of networks.filter((n) => n.internal)) {
    forward.push(`iifname ${quote(n.bridge)} oifname != ${quote(n.bridge)} drop`);
    forward.push(`oifname ${quote(n.bridge)} iifname != ${quote(n.bridge)} drop`);
  }
  for (const map of published) {
    const ip = ipKeyword(map.container.family);
    forward.push(
      `oifname ${quote(map.bridge)} ${ip} daddr ${formatIp(map.container)} ${map.proto} dport ${map.containerPort} ct status dnat accept`,
    );
  }
  for (const n of networks) forward.push(`oifname ${quote(n.bridge)} ct state established,related accept`);
  for (const n of networks) {
    const others = networks.filter((o) => o.bridge !== n.bridge).map((o) => quote(o.bridge));
    if (others.length > 0) forward.push(`iifname ${quote(n.bridge)} oifname { ${others.join(', ')} } drop`);
  }
  for (const n of networks)
    forward.push(`iifname ${quote(n.bridge)} oifname ${quote(n.bridge)} ${n.icc ? 'accept' : 'drop'}`);
  for (const n of networks.filter((n) => !n.internal)) forward.push(`iifname ${quote(n.bridge)} accept`);
  for (const n of networks.filter((n) => !n.internal)) forward.push(`oifname ${quote(n.bridge)} drop`);

  const publish = published.map((map) => {
    const ip = ipKeyword(map.container.family);
    const match =
      map.hostIp === undefined
        ? `meta nfproto ${map.container.family === 4 ? 'ipv4' : 'ipv6'}`
        : `${ip} daddr ${formatIp(map.hostIp)}`;
    return `${match} ${map.proto} dport ${map.hostPort} dnat ${ip} to ${dnatTarget(map)}`;
  });

  const postrouting: string[] = [];
  for (const n of networks.filter((n) => !n.internal)) {
    if (n.masquerade)
      for (const subnet of n.subnets)
        postrouting.push(
          `${ipKeyword(subnet.family)} saddr ${formatCidr(subnet)} oifname != ${quote(n.bridge)} masquerade`,
        );
    for (const subnet of n.subnets)
      postrouting.push(
        `${ipKeyword(subnet.family)} saddr ${formatCidr(subnet)} oifname ${quote(n.bridge)} ct status dnat masquerade`,
      );
    postrouting.push(`oifname ${quote(n.bridge)} ip saddr 127.0.0.0/8 masquerade`);
  }

  const chain = (name: string, header: string | undefined, rules: string[]): string[] => [
    `\tchain ${name} {`,
    ...(header === undefined ? [] : [`\t\t${header}`]),
    ...rules.map((rule) => `\t\t${rule}`),
    '\t}',
  ];
  return [
    `table inet ${table} {`,
    ...chain('forward', 'type filter hook forward priority filter; policy accept;', forward),
    ...chain('published', undefined, publish),
    ...chain('prerouting', 'type nat hook prerouting priority dstnat; policy accept;', [
      'fib daddr type local jump published',
    ]),
    ...chain('output', 'type nat hook output priority -100; policy accept;', [
      'fib daddr type local jump published',
    ]),
    ...chain('postrouting', 'type nat hook postrouting priority srcnat; policy accept;', postrouting),
    '}',
    '',
  ].join('\n');
}

/** The whole transaction: create-if-missing, delete, define; nft applies all of it or nothing. */
export function renderReplaceScript(state: FirewallState, table = 'berth'): string {
  const body = renderTable(state, table);
  return `table inet ${table} {}\ndelete table inet ${table}\n${body}`;
}

export class Firewall {
  readonly table: string;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: FirewallOptions = {}) {
    this.table = options.table ?? 'berth';
    if (!TABLE_NAME.test(this.table)) throw invalidArgument(`invalid nftables table name "${this.table}"`);
  }

  /** Replaces berth's table with the rules for `state`, atomically. */
  async apply(state: FirewallState): Promise<void> {
    const script = renderReplaceScript(state, this.table);
    return this.serialize(() => this.runNft(script));
  }

  /** At daemon start: the same as apply(), which also removes rules left by a crash. */
  reconcile(state: FirewallState): Promise<void> {
    return this.apply(state);
  }

  /** Deletes berth's table if it exists. */
  remove(): Promise<void> {
    const script = `table inet ${this.table} {}\ndelete table inet ${this.table}\n`;
    return this.serialize(() => this.runNft(script));
  }

  private serialize(action: () => Promise<void>): Promise<void> {
    const result = this.tail.then(action);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private runNft(script: string): Promise<void> {
    const nft = this.options.nftBinary ?? 'nft';
    const [program, args] =
      this.options.netnsPath === undefined
        ? [nft, ['-f', '-']]
        : [
            this.options.nsenterBinary ?? 'nsenter',
            [`--net=${this.options.netnsPath}`, '--', nft, '-f', '-'],
          ];
    return new Promise((resolve, reject) => {
      const child = spawn(program, args, {
        stdio: ['pipe', 'ignore', 'pipe'],
        timeout: this.options.timeoutMs ?? 30_000,
      });
      let stderr = '';
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        if (stderr.length < 64 * 1024) stderr += chunk;
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        reject(
          err.code === 'ENOENT'
            ? unavailable(`${program} not found: install nftables (and util-linux for nsenter)`)
            : internal(`cannot run ${program}: ${err.message}`, err),
        );
      });
      child.on('close', (code, signal) => {
        if (code === 0) resolve();
        else
          reject(
            internal(
              `nft failed to update table inet ${this.table} (${signal ?? `exit ${code}`}): ${stderr.trim()}`,
            ),
          );
      });
      child.stdin.on('error', () => undefined); // a failing nft may close stdin early; close reports it
      child.stdin.end(script);
    });
  }
}
