/**
 * A container's networking, between the engine and the network manager: which networks it joins
 * (NetworkMode first, as eth0), its endpoints and published ports while it runs, and the
 * NetworkSettings / port JSON Docker clients read back.
 */
import { conflict, forbidden, invalidArgument, notFound } from '../common/errors.js';
import type { NetworkManager } from '../network/manager.js';
import type { Endpoint, NetworkRecord, PortMapping } from '../network/network-record.js';
import { parsePortBindings, type PortRequest } from '../network/port-requests.js';
import type { ContainerRecord } from './container-record.js';
import type { EndpointSettings, HostConfig } from './docker-types.js';
import { containerRef, isHostMode } from './namespaces.js';

/** The network a NetworkMode names: `default` is the daemon's `bridge`. */
export function modeNetworkName(mode: string | undefined): string | undefined {
  if (!mode || mode === 'default') return 'bridge';
  if (mode === 'none' || isHostMode(mode) || containerRef(mode) !== undefined) return undefined;
  return mode;
}

/** Whether the container gets a network namespace that berthd prepares (bridge networks). */
export const usesManagedNetwork = (record: ContainerRecord): boolean =>
  modeNetworkName(record.hostConfig.NetworkMode) !== undefined && record.config.NetworkDisabled !== true;

const ifNameOf = (index: number): string => `eth${index}`;

export class ContainerNetworking {
  constructor(private readonly networks: NetworkManager) {}

  get manager(): NetworkManager {
    return this.networks;
  }

  /**
   * Whether a container gets no network at all: the default mode while the daemon runs without a
   * default bridge (`bridge: "none"`), where Docker sets the container's NetworkDisabled.
   */
  noDefaultNetwork(hostConfig: HostConfig): boolean {
    const mode = hostConfig.NetworkMode;
    return (!mode || mode === 'default') && !this.networks.defaultBridgeEnabled;
  }

  /**
   * At create: the networks the container will join, by name, with the endpoint settings the
   * client asked for. Unknown networks fail like Docker's (404).
   */
  requestedNetworks(
    hostConfig: HostConfig,
    endpoints: Record<string, EndpointSettings> | null | undefined,
  ): Record<string, EndpointSettings> {
    const result: Record<string, EndpointSettings> = {};
    const primary = this.noDefaultNetwork(hostConfig) ? undefined : modeNetworkName(hostConfig.NetworkMode);
    const given = Object.entries(endpoints ?? {});
    if (primary === undefined) {
      // host, none, container:<id>: Docker accepts no other endpoints at create.
      const mode = hostConfig.NetworkMode || 'default';
      if (given.some(([name]) => name !== mode))
        throw invalidArgument(
          `container cannot be connected to multiple networks with one of the networks in private (none) mode`,
        );
      return result;
    }
    // Like dockerd, a network that does not exist fails the start, not the create: the docker CLI
    // takes a 404 from create for a missing image and would try to pull it.
    const network = this.networks.find(primary);
    // Clients key the primary endpoint by the mode as given (`default`, a name or an ID).
    const modeKey = hostConfig.NetworkMode || 'default';
    const primarySettings =
      endpoints?.[modeKey] ?? endpoints?.[primary] ?? (network ? endpoints?.[network.name] : undefined) ?? {};
    result[network?.name ?? primary] = this.checkEndpoint(network, primarySettings);
    for (const [name, settings] of given) {
      if (name === modeKey || name === 'default') continue;
      const other = this.networks.find(name);
      if ((other?.name ?? name) in result) continue;
      if (other && other.driver !== 'bridge' && other.driver !== 'cni')
        throw invalidArgument(
          `container cannot be connected to network "${other.name}" of driver ${other.driver} together with others`,
        );
      result[other?.name ?? name] = this.checkEndpoint(other, settings ?? {});
    }
    return result;
  }

  /** The endpoint settings kept for a network; checked against it when it exists already. */
  private checkEndpoint(network: NetworkRecord | undefined, settings: EndpointSettings): EndpointSettings {
    const staticIp = settings.IPAMConfig?.IPv4Address || settings.IPAMConfig?.IPv6Address;
    if (staticIp && network && !network.userSubnets)
      throw invalidArgument(
        'user specified IP address is supported only when connecting to networks with user configured subnets',
      );
    if (network?.isDefault && (settings.Aliases ?? []).length > 0)
      throw invalidArgument('network-scoped alias is supported only for containers in user defined networks');
    return {
      ...(settings.IPAMConfig ? { IPAMConfig: settings.IPAMConfig } : {}),
      ...(settings.Aliases?.length ? { Aliases: [...settings.Aliases] } : {}),
      ...(settings.Links?.length ? { Links: [...settings.Links] } : {}),
      ...(settings.MacAddress ? { MacAddress: settings.MacAddress } : {}),
      ...(settings.DriverOpts ? { DriverOpts: settings.DriverOpts } : {}),
    };
  }

  /**
   * At start: a network namespace with one endpoint per requested network, and the published
   * ports. Everything set up is undone when a later step fails. Returns the namespace path.
   */
  async setUp(record: ContainerRecord, exposedPorts: string[]): Promise<string> {
    const netnsPath = this.networks.sandboxPath(record.id);
    // Not waited for before the endpoints: their batches queue behind the namespace's in
    // berth-netlink, so its answer and the address choice overlap.
    const created = this.networks.createSandbox(record.id);
    record.netnsPath = netnsPath;
    const endpoints: Record<string, Endpoint> = (record.endpoints = {});
    try {
      const attached = (async (): Promise<void> => {
        const requested = Object.entries(record.networks ?? {});
        for (const [index, [name, settings]] of requested.entries()) {
          const network = this.networks.get(name);
          // CNI plugins look at the namespace themselves.
          if (network.driver === 'cni') await created;
          endpoints[network.name] = await this.networks.attach(
            { id: record.id, name: record.name },
            netnsPath,
            network,
            {
              ...settings,
              ...(index === 0 && record.config.MacAddress ? { MacAddress: record.config.MacAddress } : {}),
            },
            ifNameOf(index),
            index === 0,
          );
        }
      })();
      const [made, joined] = await Promise.allSettled([created, attached]);
      // A namespace that could not be made explains the endpoints' failure too.
      if (made.status === 'rejected') throw made.reason;
      if (joined.status === 'rejected') throw joined.reason;
      const primary = Object.values(record.endpoints)[0];
      const requests = parsePortBindings(record.hostConfig, exposedPorts);
      record.ports =
        primary && requests.length > 0 ? await this.networks.publish(record, requests, primary) : [];
      return netnsPath;
    } catch (err) {
      await this.tearDown(record);
      throw err;
    }
  }

  /** The namespace setUp prepares, known before it finishes: a spec needs only the path. */
  namespacePath(record: ContainerRecord): string {
    return this.networks.sandboxPath(record.id);
  }

  /** At exit (or a failed start): ports, endpoints and the namespace go. */
  async tearDown(record: ContainerRecord): Promise<void> {
    await this.networks.unpublish(record.id);
    // Removing the namespace takes its veths with it (no synchronous link deletion), and nothing
    // waits for the removal itself (dropSandbox).
    for (const endpoint of Object.values(record.endpoints ?? {}))
      await this.networks.detach(record.id, endpoint, !record.netnsPath);
    if (record.netnsPath) this.networks.dropSandbox(record.id);
    delete record.endpoints;
    delete record.ports;
    delete record.netnsPath;
  }

  /** After a daemon restart, for a container still running: its endpoints and ports are live again. */
  async restore(record: ContainerRecord): Promise<void> {
    await this.networks.restore(
      { id: record.id, name: record.name },
      Object.values(record.endpoints ?? {}),
      record.ports ?? [],
    );
  }

  /** `network connect`: recorded for a stopped container, attached at once to a running one. */
  async connect(
    record: ContainerRecord,
    reference: string,
    settings: EndpointSettings,
  ): Promise<NetworkRecord> {
    const network = this.networks.get(reference);
    const mode = record.hostConfig.NetworkMode;
    if (modeNetworkName(mode) === undefined)
      throw invalidArgument(
        `container sharing network namespace with another container or host cannot be connected to any other network`,
      );
    if (network.driver !== 'bridge' && network.driver !== 'cni')
      throw forbidden(`container cannot be disconnected from host network or connected to host network`);
    if (record.networks?.[network.name])
      throw forbidden(`endpoint with name ${record.name} already exists in network ${network.name}`);
    const checked = this.checkEndpoint(network, settings);
    record.networks = { ...(record.networks ?? {}), [network.name]: checked };
    if (record.state.Running && record.netnsPath) {
      try {
        record.endpoints = {
          ...(record.endpoints ?? {}),
          [network.name]: await this.networks.attach(
            { id: record.id, name: record.name },
            record.netnsPath,
            network,
            checked,
            this.freeIfName(record),
            Object.keys(record.endpoints ?? {}).length === 0,
          ),
        };
      } catch (err) {
        delete record.networks[network.name];
        throw err;
      }
    }
    return network;
  }

  private freeIfName(record: ContainerRecord): string {
    const used = new Set(Object.values(record.endpoints ?? {}).map((e) => e.ifName));
    for (let index = 0; ; index++) if (!used.has(ifNameOf(index))) return ifNameOf(index);
  }

  /** `network disconnect`. */
  async disconnect(record: ContainerRecord, reference: string, force: boolean): Promise<NetworkRecord> {
    const network = this.networks.find(reference);
    if (!network) {
      if (!force) throw notFound(`network ${reference} not found`);
      return { name: reference } as NetworkRecord;
    }
    if (!record.networks?.[network.name]) {
      if (network.driver !== 'bridge' && modeNetworkName(record.hostConfig.NetworkMode) === undefined)
        throw forbidden(`container cannot be disconnected from host network or connected to host network`);
      throw forbidden(`container ${record.id} is not connected to network ${network.name}`);
    }
    const endpoint = record.endpoints?.[network.name];
    if (endpoint) {
      if ((record.ports ?? []).some((p) => p.bridge === network.bridge) && !force)
        throw conflict(
          `container ${record.name} has ports published on network ${network.name}; stop it first`,
        );
      await this.networks.detach(record.id, endpoint);
      delete record.endpoints?.[network.name];
    }
    delete record.networks[network.name];
    return network;
  }

  /** `NetworkSettings` of inspect. */
  settingsJson(record: ContainerRecord): object {
    const networks: Record<string, object> = {};
    const mode = record.hostConfig.NetworkMode;
    if (modeNetworkName(mode) === undefined && mode && containerRef(mode) === undefined)
      networks[mode] = endpointJson(this.networks.find(mode), undefined, {});
    for (const [name, settings] of Object.entries(record.networks ?? {}))
      networks[name] = endpointJson(this.networks.find(name), record.endpoints?.[name], settings, record);
    const primary = record.endpoints?.bridge;
    return {
      Bridge: '',
      SandboxID: record.netnsPath ? record.id : '',
      SandboxKey: record.netnsPath ?? '',
      Ports: portsJson(record),
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      // The legacy top-level fields describe the default bridge only, like Docker's.
      EndpointID: primary?.endpointId ?? '',
      Gateway: primary?.ipv4?.gateway ?? '',
      GlobalIPv6Address: primary?.ipv6?.address ?? '',
      GlobalIPv6PrefixLen: primary?.ipv6?.prefixLen ?? 0,
      IPAddress: primary?.ipv4?.address ?? '',
      IPPrefixLen: primary?.ipv4?.prefixLen ?? 0,
      IPv6Gateway: primary?.ipv6?.gateway ?? '',
      MacAddress: primary?.macAddress ?? '',
      Networks: networks,
    };
  }

  /** `NetworkSettings.Networks` of `GET /containers/json`. */
  summaryNetworks(record: ContainerRecord): Record<string, object> {
    const networks: Record<string, object> = {};
    for (const [name, settings] of Object.entries(record.networks ?? {}))
      networks[name] = endpointJson(this.networks.find(name), record.endpoints?.[name], settings, record);
    return networks;
  }

  /** The network's view of its containers, for network inspect. */
  containersOn(network: NetworkRecord, records: ContainerRecord[]): Record<string, object> {
    const result: Record<string, object> = {};
    for (const record of records) {
      const endpoint = record.endpoints?.[network.name];
      if (!endpoint || endpoint.networkId !== network.id) continue;
      result[record.id] = {
        Name: record.name,
        EndpointID: endpoint.endpointId,
        MacAddress: endpoint.macAddress,
        IPv4Address: endpoint.ipv4 ? `${endpoint.ipv4.address}/${endpoint.ipv4.prefixLen}` : '',
        IPv6Address: endpoint.ipv6 ? `${endpoint.ipv6.address}/${endpoint.ipv6.prefixLen}` : '',
      };
    }
    return result;
  }

  /** Port requests of a container, parsed at create so bad input fails there. */
  static checkPorts(hostConfig: HostConfig, exposedPorts: string[]): PortRequest[] {
    return parsePortBindings(hostConfig, exposedPorts);
  }
}

function endpointJson(
  network: NetworkRecord | undefined,
  endpoint: Endpoint | undefined,
  settings: EndpointSettings,
  record?: ContainerRecord,
): object {
  return {
    IPAMConfig: settings.IPAMConfig ?? null,
    Links: settings.Links ?? null,
    Aliases: settings.Aliases ?? null,
    MacAddress: endpoint?.macAddress ?? '',
    DriverOpts: settings.DriverOpts ?? null,
    NetworkID: network?.id ?? '',
    EndpointID: endpoint?.endpointId ?? '',
    Gateway: endpoint?.ipv4?.gateway ?? '',
    IPAddress: endpoint?.ipv4?.address ?? '',
    IPPrefixLen: endpoint?.ipv4?.prefixLen ?? 0,
    IPv6Gateway: endpoint?.ipv6?.gateway ?? '',
    GlobalIPv6Address: endpoint?.ipv6?.address ?? '',
    GlobalIPv6PrefixLen: endpoint?.ipv6?.prefixLen ?? 0,
    DNSNames:
      record && network && !network.isDefault && network.driver === 'bridge'
        ? [record.name, ...(settings.Aliases ?? []), record.id.slice(0, 12)]
        : null,
  };
}

const hostIpOf = (mapping: PortMapping): string =>
  mapping.hostIp || (mapping.containerIp.includes(':') ? '::' : '0.0.0.0');

/** `NetworkSettings.Ports`: every exposed or published port, null when not published. */
export function portsJson(
  record: ContainerRecord,
): Record<string, Array<{ HostIp: string; HostPort: string }> | null> {
  const result: Record<string, Array<{ HostIp: string; HostPort: string }> | null> = {};
  if (!record.state.Running) return result;
  for (const key of Object.keys(record.config.ExposedPorts ?? {})) result[key] = null;
  for (const key of Object.keys(record.hostConfig.PortBindings ?? {})) result[key] ??= null;
  for (const mapping of record.ports ?? []) {
    const key = `${mapping.containerPort}/${mapping.proto}`;
    const list = (result[key] ??= []);
    list.push({ HostIp: hostIpOf(mapping), HostPort: String(mapping.hostPort) });
  }
  return result;
}

/** `Ports` of `GET /containers/json`. */
export function portsSummary(
  record: ContainerRecord,
): Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }> {
  const result: Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }> = [];
  const published = new Set<string>();
  for (const mapping of record.ports ?? []) {
    published.add(`${mapping.containerPort}/${mapping.proto}`);
    result.push({
      IP: hostIpOf(mapping),
      PrivatePort: mapping.containerPort,
      PublicPort: mapping.hostPort,
      Type: mapping.proto,
    });
  }
  for (const key of Object.keys(record.config.ExposedPorts ?? {})) {
    if (published.has(key)) continue;
    const [port = '0', proto = 'tcp'] = key.split('/');
    result.push({ PrivatePort: Number(port), Type: proto });
  }
  return result;
}

export type { PortMapping };
