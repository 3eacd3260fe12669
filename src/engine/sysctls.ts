/**
 * `--sysctl` over Docker's defaults for a container with its own network namespace, checked the
 * way runc checks them (a sysctl must belong to a namespace the container does not share with the
 * host), with runc's messages.
 */
import { invalidArgument } from '../common/errors.js';
import { sysctlNamespace } from '../oci/validate.js';
import type { NamespaceType } from '../oci/runtime-spec.js';

/**
 * Docker sets these when it creates the network namespace: ping without CAP_NET_RAW and binding
 * ports below 1024 without CAP_NET_BIND_SERVICE (kernel 4.11 or later).
 */
export const DEFAULT_NETWORK_SYSCTLS: Readonly<Record<string, string>> = {
  'net.ipv4.ping_group_range': '0 2147483647',
  'net.ipv4.ip_unprivileged_port_start': '0',
};

export function containerSysctls(
  sysctls: Record<string, string> | null | undefined,
  options: { privateNetwork: boolean; namespaces: ReadonlySet<NamespaceType> },
): Record<string, string> {
  const result: Record<string, string> = options.privateNetwork ? { ...DEFAULT_NETWORK_SYSCTLS } : {};
  for (const [key, value] of Object.entries(sysctls ?? {})) {
    const owner = sysctlNamespace(key);
    const quoted = JSON.stringify(key);
    if (owner === 'ipc' && !options.namespaces.has('ipc'))
      throw invalidArgument(`sysctl ${quoted} is not allowed in the hosts ipc namespace`);
    if (owner === 'network' && !options.namespaces.has('network'))
      throw invalidArgument(`sysctl ${quoted} is not allowed in the hosts network namespace`);
    if (owner === 'uts' && key === 'kernel.hostname' && options.namespaces.has('uts'))
      throw invalidArgument(`sysctl ${quoted} is not allowed as it conflicts with the OCI "hostname" field`);
    if (owner === undefined || (owner === 'uts' && !options.namespaces.has('uts')))
      throw invalidArgument(`sysctl ${quoted} is not in a separate kernel namespace`);
    result[key] = value;
  }
  return result;
}
