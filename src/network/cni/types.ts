/**
 * CNI data structures (spec 1.0.0): network configuration lists, per-invocation runtime
 * parameters and results. Results are always held in the 1.0.0 shape, whatever version the
 * plugin answered in (result.ts converts).
 */

/** One plugin of a network configuration list; plugin-specific fields pass through untouched. */
export interface CniPluginConf {
  /** The plugin's executable name, looked up in the client's plugin directories. */
  type: string;
  /** Capability arguments the plugin wants in runtimeConfig (for example portMappings). */
  capabilities?: Record<string, boolean>;
  [field: string]: unknown;
}

export interface CniNetworkList {
  cniVersion: string;
  name: string;
  plugins: CniPluginConf[];
  /** When true, CHECK is never run for this network (the spec forbids it). */
  disableCheck?: boolean;
}

/** What identifies one attachment of a container to a network, plus per-call arguments. */
export interface CniRuntimeConf {
  containerId: string;
  /** Path of the container's network namespace, for example /run/netns/<name>. */
  netns: string;
  /** Interface name inside the container, for example eth0. */
  ifName: string;
  /** CNI_ARGS key/value pairs, in order. */
  args?: [string, string][];
  /** Values offered to plugins that declare the capability (portMappings, bandwidth, ...). */
  capabilityArgs?: Record<string, unknown>;
}

export interface CniInterface {
  name: string;
  mac?: string;
  /** The netns path for container interfaces; absent for host interfaces. */
  sandbox?: string;
}

export interface CniIpConfig {
  /** Address with prefix length, for example 10.88.0.5/16. */
  address: string;
  gateway?: string;
  /** Index into the result's interfaces. */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  /** The version the plugin answered in; the shape is 1.0.0's regardless. */
  cniVersion: string;
  interfaces: CniInterface[];
  ips: CniIpConfig[];
  routes: CniRoute[];
  dns: CniDns;
}

export interface CniVersionInfo {
  cniVersion: string;
  supportedVersions: string[];
}
