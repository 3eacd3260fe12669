import type { CniNetworkList } from './cni/index.js';

/**
 * What berthd keeps of a network (`<dataRoot>/networks/<id>/network.json`) and of a container's
 * endpoint on it. The Docker JSON shapes of `/networks` are rendered from these.
 */

export type NetworkDriver = 'bridge' | 'host' | 'null' | 'cni';

export interface IpamPoolConfig {
  Subnet: string;
  Gateway?: string;
  IPRange?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

export interface NetworkRecord {
  id: string;
  name: string;
  driver: NetworkDriver;
  created: string;
  internal: boolean;
  attachable: boolean;
  enableIPv6: boolean;
  /** `com.docker.network.*` driver options as given (and the defaults Docker shows). */
  options: Record<string, string>;
  labels: Record<string, string>;
  ipam: {
    driver: string;
    options: Record<string, string> | null;
    /** The pools as allocated: subnet and gateway always filled in. */
    config: IpamPoolConfig[];
    /** The pools as the user asked for them, which inspect shows for their family (as dockerd). */
    requested?: IpamPoolConfig[];
  };
  /** The IPAM pools were given by the user (Docker allows `--ip` only then). */
  userSubnets: boolean;
  /** Bridge driver: the bridge device and its MTU. */
  bridge?: string;
  mtu?: number;
  /** The daemon's default network (`bridge`): no DNS of its own, legacy behaviour. */
  isDefault?: boolean;
  /** CNI driver: the network configuration list its plugins run with. */
  cni?: { list: CniNetworkList };
}

/** A container's endpoint on a network, while it is connected and running. */
export interface Endpoint {
  networkId: string;
  endpointId: string;
  /** Interface name inside the container (eth0, eth1, ...) and the host side of the veth ('' when a CNI plugin made it). */
  ifName: string;
  hostIf: string;
  macAddress: string;
  ipv4?: { address: string; prefixLen: number; gateway: string };
  ipv6?: { address: string; prefixLen: number; gateway: string };
  /** Names the network's DNS answers for this container (besides its name and short id). */
  aliases: string[];
}

/** One published port while the container runs. */
export interface PortMapping {
  proto: 'tcp' | 'udp';
  /** '' means all addresses (shown as 0.0.0.0 and ::). */
  hostIp: string;
  hostPort: number;
  containerPort: number;
  containerIp: string;
  bridge: string;
}

export const PREDEFINED_NETWORKS = ['bridge', 'host', 'none'] as const;

export const isPredefined = (name: string): boolean =>
  (PREDEFINED_NETWORKS as readonly string[]).includes(name);

/**
 * libnetwork shows a family's pools as the user gave them (no Gateway when none was given), and
 * the allocated ones (subnet and gateway) for a family the user gave none of.
 */
function shownPools(network: NetworkRecord): IpamPoolConfig[] {
  const isV6 = (pool: IpamPoolConfig): boolean => pool.Subnet.includes(':');
  const requested = network.ipam.requested ?? [];
  return [false, true].flatMap((v6) => {
    const asked = requested.filter((pool) => isV6(pool) === v6);
    const pools = asked.length > 0 ? asked : network.ipam.config.filter((pool) => isV6(pool) === v6);
    return pools.map((pool) => ({ ...pool }));
  });
}

/** Docker's JSON for `GET /networks/{id}` (`containers` for inspect; list passes an empty map). */
export function networkJson(network: NetworkRecord, containers: Record<string, object>): object {
  return {
    Name: network.name,
    Id: network.id,
    Created: network.created,
    Scope: 'local',
    Driver: network.driver,
    EnableIPv4: true,
    EnableIPv6: network.enableIPv6,
    IPAM: {
      Driver: network.ipam.driver,
      Options: network.ipam.options,
      Config: shownPools(network),
    },
    Internal: network.internal,
    Attachable: network.attachable,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: network.options,
    Labels: network.labels,
  };
}
