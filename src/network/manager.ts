/**
 * berthd's networks: records (bridge, host, none and user-defined bridges), their bridges,
 * addresses (IPAM), firewall (nftables), published ports and DNS; and the containers' endpoints
 * on them. It knows containers only as an id and a name, and touches the kernel only through
 * the netlink coprocess and nft.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../common/atomic-file.js';
import { describeError, forbidden, conflict, invalidArgument } from '../common/errors.js';
import type { Endpoint, IpamPoolConfig, NetworkRecord, PortMapping } from './network-record.js';
import { isPredefined } from './network-record.js';
import { NetworkStore } from './network-store.js';
import type { PortRequest } from './port-requests.js';
import { Netlink, type NetOp } from './netlink.js';
import { bipPool, Ipam, planNetworkPools, type AddressPool, type PlannedPool } from './ipam.js';
import { Firewall } from './firewall.js';
import { HostPorts, type PortReservation } from './host-ports.js';
import { NetworkDnsServer, upstreamsFromResolvConf } from './dns-server.js';
import { CniClient, loadConfDir, type CniResult } from './cni/index.js';
import { createHash } from 'node:crypto';

export interface NetworkManagerOptions {
  dataRoot: string;
  execRoot: string;
  /** The default network's bridge device (`none`: no default network), its address (`bip`) and MTU. */
  defaultBridge: { name: string; bip?: string; mtu: number };
  addressPools: AddressPool[];
  /** nftables table of this daemon (tests run several daemons side by side). */
  firewallTable: string;
  /** CNI network configuration lists (each one a network of driver `cni`) and plugin folders. */
  cniConfigDir?: string;
  cniPluginDirs?: string[];
  log: { info(message: string): void; warn(message: string): void; error(message: string): void };
}

export interface NetworkCreateRequest {
  Name: string;
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  EnableIPv6?: boolean;
  IPAM?: {
    Driver?: string;
    Config?: IpamPoolConfig[] | null;
    Options?: Record<string, string> | null;
  } | null;
  Options?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

interface EndpointOwner {
  id: string;
  name: string;
}

interface IndexedEndpoint {
  owner: EndpointOwner;
  endpoint: Endpoint;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const BRIDGE_OPTIONS = new Set([
  'com.docker.network.bridge.name',
  'com.docker.network.bridge.enable_icc',
  'com.docker.network.bridge.enable_ip_masquerade',
  'com.docker.network.bridge.host_binding_ipv4',
  'com.docker.network.driver.mtu',
  'com.docker.network.bridge.default_bridge',
]);

/** Docker's MAC for an IPv4 endpoint: 02:42 and the address bytes. */
function macFor(ipv4: string | undefined): string {
  const bytes = ipv4 ? ipv4.split('.').map(Number) : [...randomBytes(4)];
  return ['02', '42', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** A pool as the user gave it (the fields of IPAM.Config that were set), for inspect. */
function requestedPool(pool: IpamPoolConfig): IpamPoolConfig {
  return {
    Subnet: pool.Subnet,
    ...(pool.IPRange ? { IPRange: pool.IPRange } : {}),
    ...(pool.Gateway ? { Gateway: pool.Gateway } : {}),
    ...(pool.AuxiliaryAddresses && Object.keys(pool.AuxiliaryAddresses).length > 0
      ? { AuxiliaryAddresses: { ...pool.AuxiliaryAddresses } }
      : {}),
  };
}

export class NetworkManager {
  private readonly ipams = new Map<string, Ipam>();
  /** Pools of a network being created, until its IPAM file exists. */
  private readonly planned = new Map<string, PlannedPool[]>();
  private readonly dns = new Map<string, NetworkDnsServer>();
  /** network id -> container id -> endpoint, for DNS, inspect and removal checks. */
  private readonly endpoints = new Map<string, Map<string, IndexedEndpoint>>();
  private readonly ports = new Map<string, { mappings: PortMapping[]; reservations: PortReservation[] }>();
  private firewallQueue: Promise<void> = Promise.resolve();
  private upstreams: string[] = [];

  private constructor(
    private readonly options: NetworkManagerOptions,
    private readonly store: NetworkStore,
    private readonly netlink: Netlink,
    private readonly firewall: Firewall,
    private readonly hostPorts: HostPorts,
    private readonly cni: CniClient,
  ) {}

  static async open(options: NetworkManagerOptions): Promise<NetworkManager> {
    const manager = new NetworkManager(
      options,
      await NetworkStore.open(options.dataRoot),
      Netlink.start(),
      new Firewall({ table: options.firewallTable }),
      new HostPorts(),
      new CniClient({
        cacheDir: join(options.dataRoot, 'cni'),
        ...(options.cniPluginDirs ? { pluginDirs: options.cniPluginDirs } : {}),
      }),
    );
    await mkdir(manager.sandboxDir, { recursive: true, mode: 0o700 });
    manager.upstreams = upstreamsFromResolvConf(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
    await manager.ensurePredefined();
    await manager.loadCniNetworks();
    await manager.netlink.run([{ op: 'sysctl', key: ['net', 'ipv4', 'ip_forward'], value: '1' }]);
    for (const network of manager.store.list()) {
      if (network.driver !== 'bridge') continue;
      await manager.openIpam(network);
      await manager.ensureBridge(network);
      await manager.startDns(network);
    }
    await manager.applyFirewall();
    manager.prepareSandbox();
    return manager;
  }

  private get sandboxDir(): string {
    return join(this.options.execRoot, 'netns');
  }

  // ---- networks ----------------------------------------------------------------------------

  list(): NetworkRecord[] {
    return this.store.list();
  }

  find(reference: string): NetworkRecord | undefined {
    return this.store.find(reference);
  }

  get(reference: string): NetworkRecord {
    return this.store.get(reference);
  }

  /** Containers with a live endpoint on the network. */
  endpointsOn(networkId: string): IndexedEndpoint[] {
    return [...(this.endpoints.get(networkId)?.values() ?? [])];
  }

  /**
   * Whether the daemon has its default `bridge` network: dockerd's `bridge: "none"` (`-b none`)
   * disables it, and containers without a network then get none.
   */
  get defaultBridgeEnabled(): boolean {
    return this.options.defaultBridge.name !== 'none';
  }

  private async ensurePredefined(): Promise<void> {
    const { name: bridge, bip, mtu } = this.options.defaultBridge;
    const existing = this.store.find('bridge');
    if (existing && (existing.bridge !== bridge || !this.defaultBridgeEnabled)) {
      // The daemon's bridge name changed: the record follows the configuration.
      await this.store.remove(existing.id);
    }
    if (this.defaultBridgeEnabled && !this.store.find('bridge')) {
      const pools = bip ? [bipPool(bip)] : await this.planPools({});
      this.planned.set('bridge', pools);
      await this.store.save({
        id: randomBytes(32).toString('hex'),
        name: 'bridge',
        driver: 'bridge',
        created: new Date().toISOString(),
        internal: false,
        attachable: false,
        enableIPv6: false,
        options: {
          'com.docker.network.bridge.default_bridge': 'true',
          'com.docker.network.bridge.enable_icc': 'true',
          'com.docker.network.bridge.enable_ip_masquerade': 'true',
          'com.docker.network.bridge.host_binding_ipv4': '0.0.0.0',
          'com.docker.network.bridge.name': bridge,
          'com.docker.network.driver.mtu': String(mtu),
        },
        labels: {},
        ipam: { driver: 'default', options: null, config: pools.map((p) => p.config) },
        userSubnets: false,
        bridge,
        mtu,
        isDefault: true,
      });
    }
    for (const [name, driver] of [
      ['host', 'host'],
      ['none', 'null'],
    ] as const) {
      if (this.store.find(name)) continue;
      await this.store.save({
        id: randomBytes(32).toString('hex'),
        name,
        driver,
        created: new Date().toISOString(),
        internal: false,
        attachable: false,
        enableIPv6: false,
        options: {},
        labels: {},
        ipam: { driver: 'default', options: null, config: [] },
        userSubnets: false,
      });
    }
  }

  /**
   * Every configuration list in the CNI folder is a network named by the list (driver `cni`);
   * lists that left the folder take their network with them. IDs derive from the name, so they
   * are stable across restarts.
   */
  private async loadCniNetworks(): Promise<void> {
    const dir = this.options.cniConfigDir;
    const lists = dir ? await loadConfDir(dir) : [];
    const seen = new Set<string>();
    for (const list of lists) {
      const existing = this.store.find(list.name);
      if (existing && existing.driver !== 'cni') {
        this.options.log.warn(
          `CNI network ${list.name} is ignored: a ${existing.driver} network has that name`,
        );
        continue;
      }
      seen.add(list.name);
      await this.store.save({
        id: existing?.id ?? createHash('sha256').update(`cni:${list.name}`).digest('hex'),
        name: list.name,
        driver: 'cni',
        created: existing?.created ?? new Date().toISOString(),
        internal: false,
        attachable: true,
        enableIPv6: false,
        options: {},
        labels: {},
        ipam: { driver: 'cni', options: null, config: [] },
        userSubnets: false,
        cni: { list },
      });
    }
    for (const network of this.store.list())
      if (network.driver === 'cni' && !seen.has(network.name)) await this.store.remove(network.id);
  }

  private usedSubnets(): string[] {
    return this.store.list().flatMap((n) => n.ipam.config.map((c) => c.Subnet));
  }

  private planPools(request: { configs?: IpamPoolConfig[]; enableIPv6?: boolean }): Promise<PlannedPool[]> {
    return planNetworkPools(
      { configs: request.configs ?? [], enableIPv4: true, enableIPv6: request.enableIPv6 === true },
      {
        usedSubnets: this.usedSubnets(),
        ...(this.options.addressPools.length > 0 ? { defaultPools: this.options.addressPools } : {}),
      },
    );
  }

  async create(request: NetworkCreateRequest): Promise<NetworkRecord> {
    const name = request.Name ?? '';
    if (!NAME.test(name))
      throw invalidArgument(`invalid network name "${name}": must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
    const driver = request.Driver || 'bridge';
    if (driver === 'host' || driver === 'null')
      throw forbidden(`only one instance of "${driver}" network is allowed`);
    if (driver === 'cni')
      throw invalidArgument(
        `CNI networks are declared by configuration lists in ${this.options.cniConfigDir ?? 'the CNI configuration folder (cni-config-dir)'}`,
      );
    if (driver !== 'bridge')
      throw invalidArgument(`plugin "${driver}" not found: berth supports the bridge and cni drivers`);
    if (this.store.nameTaken(name)) throw conflict(`network with name ${name} already exists`);
    const options = { ...(request.Options ?? {}) };
    for (const key of Object.keys(options))
      if (key.startsWith('com.docker.network.') && !BRIDGE_OPTIONS.has(key))
        throw invalidArgument(`unsupported bridge option ${key}`);
    const ipamDriver = request.IPAM?.Driver || 'default';
    if (ipamDriver !== 'default') throw invalidArgument(`IPAM driver "${ipamDriver}" is not supported`);
    const id = randomBytes(32).toString('hex');
    const bridge = options['com.docker.network.bridge.name'] || `br-${id.slice(0, 12)}`;
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) throw invalidArgument(`invalid bridge name ${bridge}`);
    if (this.store.list().some((n) => n.bridge === bridge))
      throw conflict(`bridge name ${bridge} is already used by another network`);
    const mtuText = options['com.docker.network.driver.mtu'];
    const mtu = mtuText === undefined ? this.options.defaultBridge.mtu : Number(mtuText);
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw invalidArgument(`invalid MTU ${mtuText}`);
    const given = request.IPAM?.Config ?? [];
    const planned = await this.planPools({ configs: given, enableIPv6: request.EnableIPv6 === true });
    const config = planned.map((p) => p.config);
    const record: NetworkRecord = {
      id,
      name,
      driver: 'bridge',
      created: new Date().toISOString(),
      internal: request.Internal === true,
      attachable: request.Attachable === true,
      enableIPv6: request.EnableIPv6 === true,
      options,
      labels: { ...(request.Labels ?? {}) },
      ipam: {
        driver: 'default',
        options: request.IPAM?.Options ?? null,
        config,
        ...(given.length > 0 ? { requested: given.map(requestedPool) } : {}),
      },
      userSubnets: given.length > 0,
      bridge,
      mtu,
    };
    this.planned.set(id, planned);
    await this.store.save(record);
    try {
      await this.openIpam(record);
      await this.ensureBridge(record);
      await this.startDns(record);
      await this.applyFirewall();
    } catch (err) {
      await this.destroy(record).catch(() => undefined);
      throw err;
    }
    return record;
  }

  async remove(reference: string, containersUsing: string[]): Promise<NetworkRecord> {
    const network = this.store.get(reference);
    if (isPredefined(network.name))
      throw forbidden(`${network.name} is a pre-defined network and cannot be removed`);
    if (network.driver === 'cni')
      throw forbidden(`${network.name} is a CNI network: remove its configuration list to remove it`);
    if (this.endpointsOn(network.id).length > 0 || containersUsing.length > 0)
      throw forbidden(
        `error while removing network: network ${network.name} id ${network.id} has active endpoints`,
      );
    await this.destroy(network);
    await this.applyFirewall();
    return network;
  }

  private async destroy(network: NetworkRecord): Promise<void> {
    await this.dns.get(network.id)?.close();
    this.dns.delete(network.id);
    // A release still being written must not recreate the directory removed below.
    await this.ipams.get(network.id)?.idle();
    this.ipams.delete(network.id);
    this.endpoints.delete(network.id);
    if (network.bridge) await this.netlink.run([{ op: 'link-delete', dev: network.bridge }]);
    await this.store.remove(network.id);
  }

  private async openIpam(network: NetworkRecord): Promise<Ipam> {
    let ipam = this.ipams.get(network.id);
    if (!ipam) {
      const planned = this.planned.get(network.isDefault ? 'bridge' : network.id);
      ipam = await Ipam.open(
        {
          path: join(this.store.dir(network.id), 'ipam.json'),
          network: { name: network.name, id: network.id },
          // Atomic but not fsync'd: after a host crash no container runs, and retain() frees
          // whatever the file still holds; a daemon crash keeps the page cache.
          persist: (path, state) => writeJsonAtomic(path, state, { durable: false }),
        },
        planned,
      );
      this.planned.delete(network.isDefault ? 'bridge' : network.id);
      this.ipams.set(network.id, ipam);
    }
    return ipam;
  }

  private async ensureBridge(network: NetworkRecord): Promise<void> {
    const bridge = network.bridge as string;
    const ops: NetOp[] = [{ op: 'bridge', name: bridge, mtu: network.mtu ?? 1500 }];
    for (const pool of network.ipam.config) {
      const prefix = pool.Subnet.split('/')[1];
      ops.push({ op: 'addr', dev: bridge, cidr: `${pool.Gateway}/${prefix}` });
    }
    // Published ports must answer on 127.0.0.1: DNAT from loopback into the bridge needs this.
    ops.push({ op: 'sysctl', key: ['net', 'ipv4', 'conf', bridge, 'route_localnet'], value: '1' });
    await this.netlink.run(ops);
  }

  private async startDns(network: NetworkRecord): Promise<void> {
    if (network.isDefault || network.driver !== 'bridge' || this.dns.has(network.id)) return;
    const gateway = network.ipam.config.find((p) => !p.Subnet.includes(':'))?.Gateway;
    if (!gateway) return;
    const server = await NetworkDnsServer.listen({
      address: gateway,
      networkName: network.name,
      upstreams: network.internal ? [] : this.upstreams,
      log: { debug: () => undefined, warn: (message) => this.options.log.warn(message) },
      records: {
        lookup: (name, client) => this.lookupName(this.networksOfClient(network.id, client), name),
        reverse: (address, client) => this.reverseName(this.networksOfClient(network.id, client), address),
      },
    });
    this.dns.set(network.id, server);
  }

  /** The DNS server address a container on this network uses, if it has one. */
  dnsServerOf(network: NetworkRecord): string | undefined {
    if (!this.dns.has(network.id)) return undefined;
    return network.ipam.config.find((p) => !p.Subnet.includes(':'))?.Gateway;
  }

  /**
   * The networks whose names a client of this network's DNS server sees: all the networks of the
   * container asking (Docker's embedded DNS is per container), or only this one.
   */
  private networksOfClient(networkId: string, client: string): string[] {
    const address = client.replace(/^::ffff:/, '');
    const asking = this.endpointsOn(networkId).find(
      ({ endpoint }) => endpoint.ipv4?.address === address || endpoint.ipv6?.address === address,
    );
    if (!asking) return [networkId];
    const networks = [networkId];
    for (const [id, endpoints] of this.endpoints)
      if (id !== networkId && endpoints.has(asking.owner.id)) networks.push(id);
    return networks;
  }

  private lookupName(networkIds: string[], query: string): { v4: string[]; v6: string[] } | undefined {
    const name = query.toLowerCase().replace(/\.$/, '');
    const v4: string[] = [];
    const v6: string[] = [];
    for (const { owner, endpoint } of networkIds.flatMap((id) => this.endpointsOn(id))) {
      const names = [owner.name, owner.id.slice(0, 12), ...endpoint.aliases].map((n) => n.toLowerCase());
      if (!names.includes(name)) continue;
      if (endpoint.ipv4) v4.push(endpoint.ipv4.address);
      if (endpoint.ipv6) v6.push(endpoint.ipv6.address);
    }
    return v4.length + v6.length > 0 ? { v4, v6 } : undefined;
  }

  private reverseName(networkIds: string[], address: string): string | undefined {
    for (const { owner, endpoint } of networkIds.flatMap((id) => this.endpointsOn(id)))
      if (endpoint.ipv4?.address === address || endpoint.ipv6?.address === address) return owner.name;
    return undefined;
  }

  // ---- containers --------------------------------------------------------------------------

  /** Where createSandbox mounts the container's network namespace. */
  sandboxPath(containerId: string): string {
    return join(this.sandboxDir, containerId.slice(0, 16));
  }

  /**
   * A network namespace for a container, before its process exists (the runtime joins it by path).
   * Its batch is written before this returns, so batches sent after it (the endpoints) run after it.
   */
  async createSandbox(containerId: string): Promise<string> {
    const path = this.sandboxPath(containerId);
    await this.netlink.run([
      { op: 'netns-delete', path },
      { op: 'netns-create', path },
    ]);
    return path;
  }

  async removeSandbox(containerId: string): Promise<void> {
    await this.netlink.run([{ op: 'netns-delete', path: this.sandboxPath(containerId) }]);
    this.prepareSandbox();
  }

  /**
   * removeSandbox without waiting (a container's exit): berth-netlink runs the removal before any
   * later batch, a new namespace for the same container included, and close() lets it finish.
   */
  dropSandbox(containerId: string): void {
    this.removeSandbox(containerId).catch((err: unknown) =>
      this.options.log.warn(`removing the network namespace of ${containerId}: ${describeError(err)}`),
    );
  }

  /**
   * berth-netlink makes the next container's namespace now, while nobody waits for it (the unshare
   * and lo's setup cost a millisecond or more). Not waited for: if it fails, netns-create makes one.
   */
  private prepareSandbox(): void {
    this.netlink
      .run([{ op: 'netns-prepare' }])
      .catch((err: unknown) => this.options.log.warn(`preparing a network namespace: ${describeError(err)}`));
  }

  private index(networkId: string, owner: EndpointOwner, endpoint: Endpoint): void {
    let map = this.endpoints.get(networkId);
    if (!map) this.endpoints.set(networkId, (map = new Map()));
    map.set(owner.id, { owner, endpoint });
  }

  /** A veth pair from the network's bridge into the container's namespace, addressed and routed. */
  async attach(
    owner: EndpointOwner,
    netnsPath: string,
    network: NetworkRecord,
    settings: {
      IPAMConfig?: { IPv4Address?: string; IPv6Address?: string } | null;
      MacAddress?: string;
      Aliases?: string[] | null;
    },
    ifName: string,
    primary: boolean,
  ): Promise<Endpoint> {
    if (network.driver === 'cni') return this.attachCni(owner, netnsPath, network, settings, ifName);
    if (network.driver !== 'bridge' || !network.bridge)
      throw invalidArgument(`network ${network.name} has no bridge to attach to`);
    const ipam = await this.openIpam(network);
    // ipam.json is written while berth-netlink configures the interface; both finish before the
    // container runs, so no running container ever holds an address the file does not.
    const { result: addresses, stored } = await ipam.allocateAhead({
      owner: owner.id,
      ...(settings.IPAMConfig?.IPv4Address ? { ipv4: settings.IPAMConfig.IPv4Address } : {}),
      ...(settings.IPAMConfig?.IPv6Address ? { ipv6: settings.IPAMConfig.IPv6Address } : {}),
    });
    const hostIf = `vb${owner.id.slice(0, 10)}${ifName.replace(/^eth/, '').padStart(2, '0')}`;
    const endpoint: Endpoint = {
      networkId: network.id,
      endpointId: randomBytes(32).toString('hex'),
      ifName,
      hostIf,
      macAddress: settings.MacAddress || macFor(addresses.ipv4?.address),
      ...(addresses.ipv4 ? { ipv4: addresses.ipv4 } : {}),
      ...(addresses.ipv6 ? { ipv6: addresses.ipv6 } : {}),
      aliases: [...(settings.Aliases ?? [])],
    };
    const mtu = network.mtu ?? 1500;
    const ops: NetOp[] = [
      // The same name may linger from this container's previous run while the kernel destroys
      // its old namespace; a missing link is not an error.
      { op: 'link-delete', dev: hostIf },
      { op: 'veth', hostName: hostIf, peerName: ifName, netns: netnsPath, mtu, peerMac: endpoint.macAddress },
      { op: 'master', dev: hostIf, bridge: network.bridge },
      { op: 'hairpin', dev: hostIf },
      { op: 'up', dev: hostIf },
      { op: 'enter', path: netnsPath },
    ];
    if (endpoint.ipv4)
      ops.push({ op: 'addr', dev: ifName, cidr: `${endpoint.ipv4.address}/${endpoint.ipv4.prefixLen}` });
    if (endpoint.ipv6)
      ops.push({ op: 'addr', dev: ifName, cidr: `${endpoint.ipv6.address}/${endpoint.ipv6.prefixLen}` });
    ops.push({ op: 'up', dev: ifName });
    if (primary && !network.internal) {
      if (endpoint.ipv4)
        ops.push({ op: 'route', dst: 'default', gateway: endpoint.ipv4.gateway, dev: ifName });
      if (endpoint.ipv6)
        ops.push({ op: 'route', dst: 'default', gateway: endpoint.ipv6.gateway, dev: ifName });
    }
    const [linked, saved] = await Promise.allSettled([this.netlink.run(ops), stored]);
    if (linked.status === 'rejected' || saved.status === 'rejected') {
      await this.netlink.run([{ op: 'link-delete', dev: hostIf }]).catch(() => undefined);
      // A failed write left the addresses free already.
      if (saved.status === 'fulfilled') await ipam.release(owner.id).catch(() => undefined);
      throw linked.status === 'rejected' ? linked.reason : (saved as PromiseRejectedResult).reason;
    }
    this.index(network.id, owner, endpoint);
    return endpoint;
  }

  /** A CNI network's plugins (ADD) set up the interface; berth records what they report. */
  private async attachCni(
    owner: EndpointOwner,
    netnsPath: string,
    network: NetworkRecord,
    settings: { Aliases?: string[] | null },
    ifName: string,
  ): Promise<Endpoint> {
    const list = network.cni?.list;
    if (!list) throw invalidArgument(`network ${network.name} has no CNI configuration`);
    const result = await this.cni.add(list, { containerId: owner.id, netns: netnsPath, ifName });
    const address = (family: 4 | 6): Endpoint['ipv4'] => {
      const ip = result.ips.find((entry) => (family === 6) === entry.address.includes(':'));
      if (!ip) return undefined;
      const [addr = '', prefix = '0'] = ip.address.split('/');
      return { address: addr, prefixLen: Number(prefix), gateway: ip.gateway ?? '' };
    };
    const ipv4 = address(4);
    const ipv6 = address(6);
    const endpoint: Endpoint = {
      networkId: network.id,
      endpointId: randomBytes(32).toString('hex'),
      ifName,
      hostIf: '',
      macAddress: containerMac(result, ifName),
      ...(ipv4 ? { ipv4 } : {}),
      ...(ipv6 ? { ipv6 } : {}),
      aliases: [...(settings.Aliases ?? [])],
    };
    this.index(network.id, owner, endpoint);
    return endpoint;
  }

  /**
   * The endpoint goes. `deleteLink` false when its namespace goes too: the kernel then destroys
   * the veth pair with the namespace, without the synchronous wait a link deletion costs.
   */
  async detach(containerId: string, endpoint: Endpoint, deleteLink = true): Promise<void> {
    this.endpoints.get(endpoint.networkId)?.delete(containerId);
    const network = this.store.find(endpoint.networkId);
    if (network?.driver === 'cni' && network.cni) {
      // DEL runs while the namespace still exists (the plugins clean up inside it).
      await this.cni
        .del(network.cni.list, { containerId, netns: this.sandboxPath(containerId), ifName: endpoint.ifName })
        .catch((err: unknown) => this.options.log.warn(`CNI DEL on ${network.name}: ${describeError(err)}`));
      return;
    }
    if (deleteLink)
      await this.netlink
        .run([{ op: 'link-delete', dev: endpoint.hostIf }])
        .catch((err: unknown) => this.options.log.warn(`removing ${endpoint.hostIf}: ${describeError(err)}`));
    // Not waited for: later IPAM operations queue behind the write, network removal and close()
    // wait for it, and one lost to a crash is redone by retain() at the next start.
    this.ipams
      .get(endpoint.networkId)
      ?.release(containerId)
      .catch((err: unknown) =>
        this.options.log.warn(`freeing the addresses of ${containerId}: ${describeError(err)}`),
      );
  }

  /** Reserve the host ports (a conflict fails here, like Docker) and forward them. */
  async publish(owner: EndpointOwner, requests: PortRequest[], endpoint: Endpoint): Promise<PortMapping[]> {
    const network = this.store.get(endpoint.networkId);
    if (network.driver !== 'bridge')
      throw invalidArgument(
        `publishing ports on the ${network.driver} network ${network.name} is not supported`,
      );
    const containerIp = endpoint.ipv4?.address ?? endpoint.ipv6?.address ?? '';
    const mappings: PortMapping[] = [];
    const reservations: PortReservation[] = [];
    this.ports.set(owner.id, { mappings, reservations });
    try {
      for (const request of requests) {
        const reservation = await this.hostPorts.reserve({
          proto: request.proto,
          hostIp: request.hostIp,
          first: request.hostPortFirst,
          last: request.hostPortLast,
          // dockerd names the endpoint by its container's name and the endpoint's id.
          endpoint: `${owner.name} (${endpoint.endpointId})`,
        });
        reservations.push(reservation);
        const mapping: PortMapping = {
          proto: request.proto,
          hostIp: request.hostIp,
          hostPort: reservation.port,
          containerPort: request.containerPort,
          containerIp,
          bridge: network.bridge as string,
        };
        mappings.push(mapping);
        // A dual-stack container is reached on the host's IPv6 addresses too.
        if (endpoint.ipv4 && endpoint.ipv6 && (request.hostIp === '' || request.hostIp.includes(':')))
          mappings.push({ ...mapping, containerIp: endpoint.ipv6.address });
      }
      await this.applyFirewall();
    } catch (err) {
      await this.unpublish(owner.id);
      throw err;
    }
    return mappings;
  }

  async unpublish(containerId: string): Promise<void> {
    const entry = this.ports.get(containerId);
    if (!entry) return;
    this.ports.delete(containerId);
    for (const reservation of entry.reservations) await this.hostPorts.release(reservation);
    await this.applyFirewall();
  }

  /** Live restore: a running container's endpoints and ports, as recorded. */
  async restore(owner: EndpointOwner, endpoints: Endpoint[], mappings: PortMapping[]): Promise<void> {
    for (const endpoint of endpoints) this.index(endpoint.networkId, owner, endpoint);
    const reservations: PortReservation[] = [];
    for (const mapping of mappings) {
      const reservation = await this.hostPorts
        .reserve({
          proto: mapping.proto,
          hostIp: mapping.hostIp,
          first: mapping.hostPort,
          last: mapping.hostPort,
          endpoint: endpoints[0] ? `${owner.name} (${endpoints[0].endpointId})` : owner.name,
        })
        .catch((err: unknown) => {
          this.options.log.warn(`container ${owner.id}: port ${mapping.hostPort}: ${describeError(err)}`);
          return undefined;
        });
      if (reservation) reservations.push(reservation);
    }
    if (mappings.length > 0) this.ports.set(owner.id, { mappings, reservations });
  }

  /** The whole firewall, from the networks and published ports (also the reconciliation at start). */
  applyFirewall(): Promise<void> {
    const run = async (): Promise<void> => {
      const networks = this.store
        .list()
        .filter((n) => n.driver === 'bridge' && n.bridge)
        .map((n) => ({
          bridge: n.bridge as string,
          subnets: n.ipam.config.map((p) => p.Subnet),
          internal: n.internal,
          masquerade: n.options['com.docker.network.bridge.enable_ip_masquerade'] !== 'false',
          icc: n.options['com.docker.network.bridge.enable_icc'] !== 'false',
        }));
      const portMaps = [...this.ports.values()].flatMap((entry) => entry.mappings);
      await this.firewall.apply({ networks, portMaps });
    };
    this.firewallQueue = this.firewallQueue.then(run, run);
    return this.firewallQueue;
  }

  /**
   * After the engine's recovery: network namespaces no running container uses (a build step or a
   * start a crash interrupted) go, and their veths with them.
   */
  async removeSandboxesExcept(keep: Set<string>): Promise<void> {
    for (const name of await readdir(this.sandboxDir).catch(() => [] as string[])) {
      const path = join(this.sandboxDir, name);
      if (keep.has(path)) continue;
      await this.netlink
        .run([{ op: 'netns-delete', path }])
        .catch((err: unknown) => this.options.log.warn(`network namespace ${path}: ${describeError(err)}`));
    }
  }

  /** After the engine's recovery: addresses held by containers that no longer run are freed. */
  async retain(runningContainers: Set<string>): Promise<void> {
    for (const network of this.store.list()) {
      if (network.driver !== 'bridge') continue;
      const released = await (await this.openIpam(network)).retain(runningContainers);
      for (const allocation of released)
        this.options.log.warn(
          `network ${network.name}: freed ${allocation.address}, held by ${allocation.owner} which no longer runs`,
        );
    }
  }

  /** Daemon shutdown: DNS listeners and the netlink coprocess stop; bridges, rules and namespaces stay (live restore). */
  async close(): Promise<void> {
    for (const ipam of this.ipams.values()) await ipam.idle();
    for (const server of this.dns.values()) await server.close();
    this.dns.clear();
    for (const entry of this.ports.values())
      for (const r of entry.reservations) await this.hostPorts.release(r);
    await this.netlink.close();
  }
}

/** The MAC the plugins report for the container's interface, if any. */
function containerMac(result: CniResult, ifName: string): string {
  return result.interfaces.find((i) => i.name === ifName && i.sandbox)?.mac ?? '';
}
