/** `ps` / `container ls`: the container list with docker's columns and formatting rules. */
import { flagBool, flagValue, flagValues } from '../args.js';
import { FILTER_FLAG, FORMAT_FLAG, type CommandDef } from '../command.js';
import { loadConfig } from '../config.js';
import { joinLabels, labelLookup, renderList, structContext } from '../format/formatter.js';
import { ellipsis, goTimeString, humanSizeWithPrecision, timeAgo } from '../format/units.js';
import { filtersJson } from '../opts/values.js';
import { parseReference, familiarName } from '../../image/reference.js';
import { shortId } from './common.js';

export interface ContainerPort {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

export interface ContainerSummary {
  Id: string;
  Names?: string[] | null;
  Image?: string;
  ImageID?: string;
  Command?: string;
  Created?: number;
  Ports?: ContainerPort[] | null;
  SizeRw?: number;
  SizeRootFs?: number;
  Labels?: Record<string, string> | null;
  State?: string;
  Status?: string;
  Mounts?: Array<{ Name?: string; Source?: string; Driver?: string }> | null;
  NetworkSettings?: { Networks?: Record<string, unknown> | null } | null;
}

const byteCompare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** docker requests sizes when the template shows them: `.Size`, or `json .` which shows every field. */
export const formatUsesSize = (format: string): boolean =>
  format === 'json' || /\.Size\b/.test(format) || /\bjson\s+\.\s*(\}\}|\)|\|)/.test(format);

const joinHostPort = (host: string, port: number): string =>
  host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;

/** formatter.DisplayablePorts: ranges grouped ("8000-8002/tcp"), host mappings last. */
export function displayablePorts(input: ContainerPort[]): string {
  const ports = [...input].sort(
    (a, b) =>
      a.PrivatePort - b.PrivatePort ||
      byteCompare(a.IP ?? '', b.IP ?? '') ||
      (a.PublicPort ?? 0) - (b.PublicPort ?? 0) ||
      byteCompare(a.Type, b.Type),
  );
  const groups = new Map<string, { first: number; last: number }>();
  const result: string[] = [];
  const hostMappings: string[] = [];
  const formGroup = (key: string, first: number, last: number): string => {
    const slash = key.lastIndexOf('/');
    const ip = slash === -1 ? '' : key.slice(0, slash);
    const type = slash === -1 ? key : key.slice(slash + 1);
    let group = first === last ? String(first) : `${first}-${last}`;
    if (ip !== '') group = `${ip}:${group}->${group}`;
    return `${group}/${type}`;
  };
  for (const port of ports) {
    const current = port.PrivatePort;
    let key = port.Type;
    if (port.IP) {
      if ((port.PublicPort ?? 0) !== current) {
        hostMappings.push(`${joinHostPort(port.IP, port.PublicPort ?? 0)}->${port.PrivatePort}/${port.Type}`);
        continue;
      }
      key = `${port.IP}/${port.Type}`;
    }
    const group = groups.get(key);
    if (!group) {
      groups.set(key, { first: current, last: current });
      continue;
    }
    if (current === group.last + 1) {
      group.last = current;
      continue;
    }
    result.push(formGroup(key, group.first, group.last));
    groups.set(key, { first: current, last: current });
  }
  for (const [key, group] of groups) result.push(formGroup(key, group.first, group.last));
  return [...result, ...hostMappings].join(', ');
}

/** The template context of one container (docker's ContainerContext). */
export function containerContext(
  c: ContainerSummary,
  trunc: boolean,
  now = Date.now(),
): Record<string, unknown> {
  let names = (c.Names ?? []).map((n) => n.replace(/^\//, ''));
  if (trunc) {
    const plain = names.find((n) => !n.includes('/'));
    if (plain !== undefined) names = [plain];
  }
  let image = c.Image ?? '';
  if (image === '') image = '<no image>';
  else if (trunc) {
    if (shortId(c.ImageID ?? '') === shortId(image)) image = shortId(image);
    else {
      try {
        const ref = parseReference(image, { defaultTag: false });
        image = familiarName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '');
      } catch {
        // Not a reference: shown as it is.
      }
    }
  }
  const command = trunc ? ellipsis(c.Command ?? '', 20) : (c.Command ?? '');
  const sizeRw = humanSizeWithPrecision(c.SizeRw ?? 0, 3);
  const size =
    (c.SizeRootFs ?? 0) > 0 ? `${sizeRw} (virtual ${humanSizeWithPrecision(c.SizeRootFs ?? 0, 3)})` : sizeRw;
  const mounts = (c.Mounts ?? []).map((m) => {
    const name = m.Name ? m.Name : (m.Source ?? '');
    return trunc ? ellipsis(name, 15) : name;
  });
  return structContext({
    Command: JSON.stringify(command),
    CreatedAt: goTimeString(c.Created ?? 0),
    ID: trunc ? shortId(c.Id) : c.Id,
    Image: image,
    Label: labelLookup(c.Labels),
    Labels: joinLabels(c.Labels),
    LocalVolumes: String((c.Mounts ?? []).filter((m) => m.Driver === 'local').length),
    Mounts: mounts.join(','),
    Names: names.join(','),
    Networks: Object.keys(c.NetworkSettings?.Networks ?? {})
      .sort()
      .join(','),
    Platform: null,
    Ports: displayablePorts(c.Ports ?? []),
    RunningFor: timeAgo(c.Created ?? 0, now),
    Size: size,
    State: c.State ?? '',
    Status: c.Status ?? '',
  });
}

export const CONTAINER_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID',
  Names: 'NAMES',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Size: 'SIZE',
  Labels: 'LABELS',
  Mounts: 'MOUNTS',
  LocalVolumes: 'LOCAL VOLUMES',
  Networks: 'NETWORKS',
  Platform: 'PLATFORM',
};

const DEFAULT_PS =
  'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';

export const commands: Record<string, CommandDef> = {
  ps: {
    usage: '[OPTIONS]',
    description: 'List containers',
    aliases: ['berth container ls', 'berth container list', 'berth container ps', 'berth ps'],
    args: { max: 0 },
    flags: [
      {
        name: 'all',
        short: 'a',
        type: 'bool',
        description: 'Show all containers (default shows just running)',
      },
      FILTER_FLAG,
      FORMAT_FLAG,
      {
        name: 'last',
        short: 'n',
        type: 'int',
        description: 'Show n last created containers (includes all states)',
        defaultText: '-1',
      },
      {
        name: 'latest',
        short: 'l',
        type: 'bool',
        description: 'Show the latest created container (includes all states)',
      },
      { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only display container IDs' },
      { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes' },
    ],
    run: async (ctx, args) => {
      const quiet = flagBool(args, 'quiet');
      let format = flagValue(args, 'format') ?? '';
      if (format === '') {
        const configured = (await loadConfig(ctx.configDir)).psFormat;
        if (typeof configured === 'string') format = configured;
      }
      const sizeFlag = flagValue(args, 'size');
      const size = sizeFlag === 'true' || (!quiet && sizeFlag === undefined && formatUsesSize(format));
      let limit = Number(flagValue(args, 'last') ?? '-1');
      if (flagBool(args, 'latest')) limit = 1;
      const containers =
        (await ctx.client().json<ContainerSummary[] | null>('GET', '/containers/json', {
          query: {
            all: flagBool(args, 'all') ? '1' : undefined,
            limit: limit > 0 ? limit : undefined,
            size: size ? '1' : undefined,
            filters: filtersJson(flagValues(args, 'filter')),
          },
        })) ?? [];
      const trunc = !flagBool(args, 'no-trunc');
      const now = Date.now();
      const defaultTable = size ? `${DEFAULT_PS}\t{{.Size}}` : DEFAULT_PS;
      ctx.out(
        renderList(
          { format, defaultTable, headers: CONTAINER_HEADERS },
          containers.map((c) => containerContext(c, trunc, now)),
          quiet,
        ),
      );
      return 0;
    },
  },
};
