/** `network create/ls/rm/prune/connect/disconnect` (inspect lives in inspect.ts). */
import { flagBool, flagValue, flagValues } from '../args.js';
import { pathEscape } from '../client.js';
import { FILTER_FLAG, FORCE_PRUNE_FLAG, FORMAT_FLAG, type CommandDef } from '../command.js';
import { CommandError, isNotFound } from '../errors.js';
import { joinLabels, labelLookup, renderList, structContext } from '../format/formatter.js';
import { goTimeString, parseRfc3339 } from '../format/units.js';
import { filtersJson, keyValueMap } from '../opts/values.js';
import { confirm, naturalCompare, shortId } from './common.js';

interface Network {
  Name: string;
  Id: string;
  Created?: string;
  Scope?: string;
  Driver?: string;
  EnableIPv4?: boolean;
  EnableIPv6?: boolean;
  Internal?: boolean;
  Labels?: Record<string, string> | null;
}

const NETWORK_HEADERS: Record<string, string> = {
  ID: 'NETWORK ID',
  Name: 'NAME',
  Driver: 'DRIVER',
  Scope: 'SCOPE',
  IPv4: 'IPV4',
  IPv6: 'IPV6',
  Internal: 'INTERNAL',
  Labels: 'LABELS',
  CreatedAt: 'CREATED AT',
};

function networkContext(n: Network, trunc: boolean): Record<string, unknown> {
  const created = parseRfc3339(n.Created ?? '') ?? { seconds: -62135596800, nanos: 0 };
  return structContext({
    CreatedAt: goTimeString(created.seconds, created.nanos),
    Driver: n.Driver ?? '',
    ID: trunc ? shortId(n.Id) : n.Id,
    IPv4: String(n.EnableIPv4 === true),
    IPv6: String(n.EnableIPv6 === true),
    Internal: String(n.Internal === true),
    Label: labelLookup(n.Labels),
    Labels: joinLabels(n.Labels),
    Name: n.Name,
    Scope: n.Scope ?? '',
  });
}

/** docker's --subnet/--ip-range/--gateway/--aux-address grouping into IPAM configs. */
function ipamConfigs(
  subnets: string[],
  ranges: string[],
  gateways: string[],
  aux: string[],
): Record<string, unknown>[] {
  if (subnets.length < ranges.length || subnets.length < gateways.length) {
    throw new CommandError('every ip-range or gateway must have a corresponding subnet');
  }
  const contains = (subnet: string, address: string): boolean => {
    // Cheap prefix test for IPv4 subnets; the daemon validates precisely.
    const [base = '', bits = '32'] = subnet.split('/');
    if (!base.includes('.') || !address.includes('.')) return true;
    const toInt = (ip: string): number =>
      ip.split('.').reduce((acc, part) => ((acc << 8) | Number(part)) >>> 0, 0);
    const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
    const and = (v: number): number => (v & mask) >>> 0;
    return and(toInt(base)) === and(toInt(address.split('/')[0] ?? ''));
  };
  const configs = subnets.map((subnet) => ({
    Subnet: subnet,
    IPRange: '',
    Gateway: '',
    AuxAddress: {} as Record<string, string>,
  }));
  const place = (value: string, what: string, assign: (c: (typeof configs)[number]) => boolean): void => {
    const target = configs.find((c) => contains(c.Subnet, value) && assign(c));
    if (!target) throw new CommandError(`no matching subnet for ${what} ${value}`);
  };
  for (const range of ranges) {
    place(range, 'range', (c) => {
      if (c.IPRange !== '') return false;
      c.IPRange = range;
      return true;
    });
  }
  for (const gateway of gateways) {
    place(gateway, 'gateway', (c) => {
      if (c.Gateway !== '') return false;
      c.Gateway = gateway;
      return true;
    });
  }
  for (const [name, address] of Object.entries(keyValueMap(aux))) {
    place(address, 'aux-address', (c) => {
      c.AuxAddress[name] = address;
      return true;
    });
  }
  return configs.map((c) => {
    const out: Record<string, unknown> = { Subnet: c.Subnet };
    if (c.IPRange) out.IPRange = c.IPRange;
    if (c.Gateway) out.Gateway = c.Gateway;
    if (Object.keys(c.AuxAddress).length > 0) out.AuxiliaryAddresses = c.AuxAddress;
    return out;
  });
}

const sorted = (map: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(map).sort());

export const commands: Record<string, CommandDef> = {
  create: {
    usage: '[OPTIONS] NETWORK',
    description: 'Create a network',
    args: { min: 1, max: 1 },
    flags: [
      { name: 'attachable', type: 'bool', description: 'Enable manual container attachment' },
      {
        name: 'aux-address',
        type: 'map',
        description: 'Auxiliary IPv4 or IPv6 addresses used by Network driver',
      },
      {
        name: 'config-from',
        type: 'string',
        description: 'The network from which to copy the configuration',
      },
      { name: 'config-only', type: 'bool', description: 'Create a configuration only network' },
      {
        name: 'driver',
        short: 'd',
        type: 'string',
        description: 'Driver to manage the Network',
        defaultText: '"bridge"',
      },
      { name: 'gateway', type: 'stringArray', description: 'IPv4 or IPv6 Gateway for the master subnet' },
      { name: 'ingress', type: 'bool', description: 'Create swarm routing-mesh network' },
      { name: 'internal', type: 'bool', description: 'Restrict external access to the network' },
      { name: 'ip-range', type: 'stringArray', description: 'Allocate container ip from a sub-range' },
      {
        name: 'ipam-driver',
        type: 'string',
        description: 'IP Address Management Driver',
        defaultText: '"default"',
      },
      { name: 'ipam-opt', type: 'map', description: 'Set IPAM driver specific options' },
      {
        name: 'ipv4',
        type: 'bool',
        description: 'Enable or disable IPv4 address assignment',
        defaultText: 'true',
      },
      { name: 'ipv6', type: 'bool', description: 'Enable or disable IPv6 address assignment' },
      { name: 'label', type: 'list', description: 'Set metadata on a network' },
      { name: 'opt', short: 'o', type: 'map', description: 'Set driver specific options' },
      { name: 'scope', type: 'string', description: "Control the network's scope" },
      {
        name: 'subnet',
        type: 'stringArray',
        description: 'Subnet in CIDR format that represents a network segment',
      },
    ],
    run: async (ctx, args) => {
      const body: Record<string, unknown> = {
        Driver: flagValue(args, 'driver') ?? 'bridge',
        Scope: flagValue(args, 'scope') ?? '',
      };
      if (args.flags.has('ipv4')) body.EnableIPv4 = flagBool(args, 'ipv4');
      if (args.flags.has('ipv6')) body.EnableIPv6 = flagBool(args, 'ipv6');
      const configFrom = flagValue(args, 'config-from');
      Object.assign(body, {
        IPAM: {
          Driver: flagValue(args, 'ipam-driver') ?? 'default',
          Options: sorted(keyValueMap(flagValues(args, 'ipam-opt'))),
          Config: ipamConfigs(
            flagValues(args, 'subnet'),
            flagValues(args, 'ip-range'),
            flagValues(args, 'gateway'),
            flagValues(args, 'aux-address'),
          ),
        },
        Internal: flagBool(args, 'internal'),
        Attachable: flagBool(args, 'attachable'),
        Ingress: flagBool(args, 'ingress'),
        ConfigOnly: flagBool(args, 'config-only'),
        ConfigFrom: configFrom === undefined ? null : { Network: configFrom },
        Options: sorted(keyValueMap(flagValues(args, 'opt'))),
        Labels: sorted(keyValueMap(flagValues(args, 'label'))),
        Name: args.positional[0] ?? '',
      });
      const created = await ctx
        .client()
        .json<{ Id: string; Warning?: string }>('POST', '/networks/create', { json: body });
      if (created.Warning) ctx.err(`${created.Warning}\n`);
      ctx.out(`${created.Id}\n`);
      return 0;
    },
  },
  ls: {
    usage: '[OPTIONS]',
    description: 'List networks',
    aliases: ['berth network ls', 'berth network list'],
    args: { max: 0 },
    flags: [
      FILTER_FLAG,
      FORMAT_FLAG,
      { name: 'no-trunc', type: 'bool', description: 'Do not truncate the output' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only display network IDs' },
    ],
    run: async (ctx, args) => {
      const networks =
        (await ctx.client().json<Network[] | null>('GET', '/networks', {
          query: { filters: filtersJson(flagValues(args, 'filter')) },
        })) ?? [];
      networks.sort((a, b) => naturalCompare(a.Name, b.Name));
      const trunc = !flagBool(args, 'no-trunc');
      ctx.out(
        renderList(
          {
            format: flagValue(args, 'format'),
            defaultTable: 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}',
            headers: NETWORK_HEADERS,
          },
          networks.map((n) => networkContext(n, trunc)),
          flagBool(args, 'quiet'),
        ),
      );
      return 0;
    },
  },
  rm: {
    usage: '[OPTIONS] NETWORK [NETWORK...]',
    description: 'Remove one or more networks',
    aliases: ['berth network rm', 'berth network remove'],
    args: { min: 1 },
    flags: [
      { name: 'force', short: 'f', type: 'bool', description: 'Do not error if the network does not exist' },
    ],
    run: async (ctx, args) => {
      let failed = false;
      for (const name of args.positional) {
        try {
          await ctx.client().call('DELETE', `/networks/${pathEscape(name)}`);
          ctx.out(`${name}\n`);
        } catch (err) {
          if (flagBool(args, 'force') && isNotFound(err)) continue;
          ctx.err(`${(err as Error).message}\n`);
          failed = true;
        }
      }
      return failed ? 1 : 0;
    },
  },
  prune: {
    usage: '[OPTIONS]',
    description: 'Remove all unused networks',
    args: { max: 0 },
    flags: [
      { ...FILTER_FLAG, short: undefined, description: 'Provide filter values (e.g. "until=<timestamp>")' },
      FORCE_PRUNE_FLAG,
    ],
    run: async (ctx, args) => {
      if (
        !flagBool(args, 'force') &&
        !(await confirm(
          ctx,
          'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?',
        ))
      ) {
        return 0;
      }
      const report = await ctx
        .client()
        .json<{ NetworksDeleted?: string[] | null }>('POST', '/networks/prune', {
          query: { filters: filtersJson(flagValues(args, 'filter')) },
        });
      const deleted = report.NetworksDeleted ?? [];
      if (deleted.length > 0) ctx.out(`Deleted Networks:\n${deleted.map((n) => `${n}\n`).join('')}\n`);
      return 0;
    },
  },
  connect: {
    usage: '[OPTIONS] NETWORK CONTAINER',
    description: 'Connect a container to a network',
    args: { min: 2, max: 2 },
    flags: [
      { name: 'alias', type: 'stringArray', description: 'Add network-scoped alias for the container' },
      { name: 'driver-opt', type: 'stringArray', description: 'driver options for the network' },
      { name: 'gw-priority', type: 'int', description: 'Highest gw-priority provides the default gateway' },
      { name: 'ip', type: 'string', description: 'IPv4 address (e.g., "172.30.100.104")' },
      { name: 'ip6', type: 'string', description: 'IPv6 address (e.g., "2001:db8::33")' },
      { name: 'link', type: 'list', description: 'Add link to another container' },
      {
        name: 'link-local-ip',
        type: 'stringArray',
        description: 'Add a link-local address for the container',
      },
    ],
    run: async (ctx, args) => {
      const [network = '', container = ''] = args.positional;
      const ipam: Record<string, unknown> = {};
      if (flagValue(args, 'ip')) ipam.IPv4Address = flagValue(args, 'ip');
      if (flagValue(args, 'ip6')) ipam.IPv6Address = flagValue(args, 'ip6');
      if (flagValues(args, 'link-local-ip').length > 0) ipam.LinkLocalIPs = flagValues(args, 'link-local-ip');
      const links = flagValues(args, 'link');
      await ctx.client().call('POST', `/networks/${pathEscape(network)}/connect`, {
        json: {
          Container: container,
          EndpointConfig: {
            IPAMConfig: ipam,
            Links: links.length > 0 ? links : null,
            Aliases: flagValues(args, 'alias'),
            MacAddress: '',
            DriverOpts: sorted(keyValueMap(flagValues(args, 'driver-opt'))),
            GwPriority: Number(flagValue(args, 'gw-priority') ?? '0'),
            NetworkID: '',
            EndpointID: '',
            Gateway: '',
            IPAddress: '',
            IPPrefixLen: 0,
            IPv6Gateway: '',
            GlobalIPv6Address: '',
            GlobalIPv6PrefixLen: 0,
            DNSNames: null,
          },
        },
      });
      return 0;
    },
  },
  disconnect: {
    usage: '[OPTIONS] NETWORK CONTAINER',
    description: 'Disconnect a container from a network',
    args: { min: 2, max: 2 },
    flags: [
      {
        name: 'force',
        short: 'f',
        type: 'bool',
        description: 'Force the container to disconnect from a network',
      },
    ],
    run: async (ctx, args) => {
      const [network = '', container = ''] = args.positional;
      await ctx.client().call('POST', `/networks/${pathEscape(network)}/disconnect`, {
        json: { Container: container, Force: flagBool(args, 'force') },
      });
      return 0;
    },
  },
};
