/**
 * RUN steps of `docker build` on the daemon's default bridge, like the classic builder's: a
 * network namespace with an endpoint on `bridge`, the host's resolvers (without loopback ones,
 * which the namespace cannot reach) and a hosts file naming the step's container.
 */
import { readFile } from 'node:fs/promises';
import type { BuildBridge } from '../build/run.js';
import type { NetworkManager } from '../network/manager.js';
import type { Endpoint } from '../network/network-record.js';

function resolvConfFor(host: string): string {
  return (
    host
      .split('\n')
      .filter((line) => !/^\s*nameserver\s+(127\.|::1\s*$)/.test(line))
      .join('\n')
      .trimEnd() + '\n'
  );
}

export function buildBridge(manager: NetworkManager): BuildBridge {
  const endpoints = new Map<string, Endpoint>();
  return {
    async attach(id) {
      const netnsPath = await manager.createSandbox(id);
      try {
        const endpoint = await manager.attach(
          { id, name: `build-${id.slice(0, 12)}` },
          netnsPath,
          manager.get('bridge'),
          {},
          'eth0',
          true,
        );
        endpoints.set(id, endpoint);
        const address = endpoint.ipv4?.address;
        const hosts = [
          '127.0.0.1\tlocalhost',
          '::1\tlocalhost ip6-localhost ip6-loopback',
          ...(address ? [`${address}\t${id.slice(0, 12)}`] : []),
          '',
        ].join('\n');
        const resolvConf = resolvConfFor(await readFile('/etc/resolv.conf', 'utf8').catch(() => ''));
        return { netnsPath, resolvConf, hosts };
      } catch (err) {
        await manager.removeSandbox(id).catch(() => undefined);
        throw err;
      }
    },
    async detach(id) {
      const endpoint = endpoints.get(id);
      endpoints.delete(id);
      if (endpoint) await manager.detach(id, endpoint, false);
      await manager.removeSandbox(id);
    },
  };
}
