/** `version`, `info`, `system df`, `events`, `system prune`. */
import { arch as osArch } from 'node:os';
import { flagBool, flagValue, flagValues, type ParsedArgs } from '../args.js';
import { FILTER_FLAG, FORMAT_FLAG, type CommandDef } from '../command.js';
import { API_VERSION, BERTH_VERSION } from '../../common/version.js';
import type { CliContext } from '../context.js';
import { ApiError } from '../errors.js';
import { executeTemplate, parseTemplate, renderList, structContext } from '../format/formatter.js';
import { tabwrite } from '../format/tabwriter.js';
import { bytesSize, humanSize, humanSizeWithPrecision, parseRfc3339, timeAgo } from '../format/units.js';
import { readJsonTexts } from '../progress.js';
import { filtersJson, getTimestamp } from '../opts/values.js';
import { confirm } from './common.js';
import { imageRows, type ImageSummary } from './images.js';
import { containerContext, CONTAINER_HEADERS, type ContainerSummary } from './ps.js';

const GO_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
};
const clientArch = (): string => GO_ARCH[osArch()] ?? osArch();

/** Go's time.ANSIC ("Mon Jan  1 00:00:00 2024") of an RFC 3339 time; other text is kept. */
function ansic(text: string): string {
  const parsed = parseRfc3339(text);
  if (!parsed) return text;
  const date = new Date(parsed.seconds * 1000);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const pad = (n: number): string => String(n).padStart(2, '0');
  return (
    `${days[date.getDay()]} ${months[date.getMonth()]} ${String(date.getDate()).padStart(2, ' ')} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())} ${date.getFullYear()}`
  );
}

interface ServerVersion {
  Platform?: { Name?: string };
  Components?: Array<{ Name: string; Version: string; Details?: Record<string, string> | null }> | null;
  Version?: string;
  ApiVersion?: string;
  MinAPIVersion?: string;
  GitCommit?: string;
  GoVersion?: string;
  Os?: string;
  Arch?: string;
  KernelVersion?: string;
  BuildTime?: string;
}

async function version(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const client = ctx.client();
  let server: ServerVersion | undefined;
  let serverError: unknown;
  let apiVersion = API_VERSION;
  try {
    apiVersion = await client.version();
    server = await client.json<ServerVersion>('GET', '/version');
  } catch (err) {
    serverError = err;
  }
  if (server) {
    if (server.BuildTime) server.BuildTime = ansic(server.BuildTime);
    for (const component of server.Components ?? []) {
      if (component.Name === 'Engine' && component.Details?.BuildTime) {
        component.Details.BuildTime = ansic(component.Details.BuildTime);
      }
    }
  }
  const clientInfo: Record<string, unknown> = {
    Platform: { Name: '' },
    Version: BERTH_VERSION,
    ApiVersion: apiVersion,
    DefaultAPIVersion: API_VERSION,
    GitCommit: '',
    GoVersion: process.version,
    Os: 'linux',
    Arch: clientArch(),
    BuildTime: '',
    Context: 'default',
  };
  Object.defineProperty(clientInfo, 'APIVersion', { value: apiVersion, enumerable: false });
  const format = flagValue(args, 'format');
  if (format !== undefined && format !== '') {
    const template = parseTemplate(
      format === 'json' ? '{{json .}}' : format.replace(/\\t/g, '\t').replace(/\\n/g, '\n'),
    );
    try {
      ctx.out(`${executeTemplate(template, { Client: clientInfo, Server: server ?? null })}\n`);
    } catch (err) {
      // As in docker, the daemon's error wins over a template that needed the server's part.
      throw serverError ?? err;
    }
  } else {
    let text =
      'Client:\n' +
      ` Version:\t${BERTH_VERSION}\n` +
      ` API version:\t${apiVersion}${apiVersion !== API_VERSION ? ` (downgraded from ${API_VERSION})` : ''}\n` +
      ` Node.js version:\t${process.version}\n` +
      ` OS/Arch:\tlinux/${clientArch()}\n` +
      ' Context:\tdefault\n';
    if (server) {
      text += `\nServer:${server.Platform?.Name ? ` ${server.Platform.Name}` : ''}\n`;
      for (const component of server.Components ?? []) {
        const details = component.Details ?? {};
        text += ` ${component.Name}:\n`;
        if (component.Name === 'Engine') {
          text +=
            `  Version:\t${component.Version}\n` +
            `  API version:\t${details.ApiVersion ?? ''} (minimum version ${details.MinAPIVersion ?? ''})\n` +
            `  Go version:\t${details.GoVersion ?? ''}\n` +
            `  Git commit:\t${details.GitCommit ?? ''}\n` +
            `  Built:\t${details.BuildTime ?? ''}\n` +
            `  OS/Arch:\t${details.Os ?? ''}/${details.Arch ?? ''}\n` +
            `  Experimental:\t${details.Experimental ?? ''}\n`;
        } else {
          text += `  Version:\t${component.Version}\n`;
          for (const key of Object.keys(details).sort()) text += `  ${key}:\t${details[key]}\n`;
        }
      }
    }
    ctx.out(tabwrite(text, { minWidth: 20, padding: 1 }));
  }
  if (serverError) throw serverError;
  return 0;
}

interface Info extends Record<string, unknown> {
  Containers?: number;
  ContainersRunning?: number;
  ContainersPaused?: number;
  ContainersStopped?: number;
  Images?: number;
  ServerVersion?: string;
  Driver?: string;
  DriverStatus?: Array<[string, string]> | null;
  SystemStatus?: Array<[string, string]> | null;
  LoggingDriver?: string;
  CgroupDriver?: string;
  CgroupVersion?: string;
  Plugins?: {
    Volume?: string[] | null;
    Network?: string[] | null;
    Authorization?: string[] | null;
    Log?: string[] | null;
  };
  CDISpecDirs?: string[] | null;
  Swarm?: { LocalNodeState?: string };
  Runtimes?: Record<string, unknown> | null;
  DefaultRuntime?: string;
  InitBinary?: string;
  ContainerdCommit?: { ID?: string };
  RuncCommit?: { ID?: string };
  InitCommit?: { ID?: string };
  SecurityOptions?: string[] | null;
  OSType?: string;
  KernelVersion?: string;
  OperatingSystem?: string;
  Architecture?: string;
  NCPU?: number;
  MemTotal?: number;
  Name?: string;
  ID?: string;
  DockerRootDir?: string;
  Debug?: boolean;
  NFd?: number;
  NGoroutines?: number;
  SystemTime?: string;
  NEventsListener?: number;
  HttpProxy?: string;
  HttpsProxy?: string;
  NoProxy?: string;
  Labels?: string[] | null;
  ExperimentalBuild?: boolean;
  RegistryConfig?: {
    InsecureRegistryCIDRs?: string[] | null;
    IndexConfigs?: Record<string, { Name: string; Secure: boolean }> | null;
    Mirrors?: string[] | null;
  } | null;
  LiveRestoreEnabled?: boolean;
  DefaultAddressPools?: Array<{ Base: string; Size: number }> | null;
  Warnings?: string[] | null;
}

function serverInfoText(info: Info, debug: boolean): string {
  const lines: string[] = [];
  const line = (...parts: unknown[]): void => void lines.push(parts.map((p) => String(p)).join(' '));
  const nonEmpty = (label: string, value: string | undefined): void => {
    if (value) line(label, value);
  };
  line(' Containers:', info.Containers ?? 0);
  line('  Running:', info.ContainersRunning ?? 0);
  line('  Paused:', info.ContainersPaused ?? 0);
  line('  Stopped:', info.ContainersStopped ?? 0);
  line(' Images:', info.Images ?? 0);
  nonEmpty(' Server Version:', info.ServerVersion);
  nonEmpty(' Storage Driver:', info.Driver);
  for (const [k, v] of info.DriverStatus ?? []) lines.push(`  ${k}: ${v}`);
  for (const [k, v] of info.SystemStatus ?? []) lines.push(` ${k}: ${v}`);
  nonEmpty(' Logging Driver:', info.LoggingDriver);
  nonEmpty(' Cgroup Driver:', info.CgroupDriver);
  nonEmpty(' Cgroup Version:', info.CgroupVersion);
  line(' Plugins:');
  line('  Volume:', (info.Plugins?.Volume ?? []).join(' '));
  line('  Network:', (info.Plugins?.Network ?? []).join(' '));
  if ((info.Plugins?.Authorization ?? []).length > 0)
    line('  Authorization:', (info.Plugins?.Authorization ?? []).join(' '));
  line('  Log:', (info.Plugins?.Log ?? []).join(' '));
  if ((info.CDISpecDirs ?? []).length > 0) {
    line(' CDI spec directories:');
    for (const dir of info.CDISpecDirs ?? []) lines.push(`  ${dir}`);
  }
  line(' Swarm:', info.Swarm?.LocalNodeState ?? 'inactive');
  const runtimes = Object.keys(info.Runtimes ?? {});
  if (runtimes.length > 0) {
    line(' Runtimes:', runtimes.join(' '));
    line(' Default Runtime:', info.DefaultRuntime ?? '');
  }
  if (info.OSType === 'linux') {
    line(' Init Binary:', info.InitBinary ?? '');
    line(' containerd version:', info.ContainerdCommit?.ID ?? '');
    line(' runc version:', info.RuncCommit?.ID ?? '');
    line(' init version:', info.InitCommit?.ID ?? '');
    if ((info.SecurityOptions ?? []).length > 0) {
      line(' Security Options:');
      for (const option of info.SecurityOptions ?? []) {
        const fields = Object.fromEntries(
          option.split(',').map((kv) => {
            const eq = kv.indexOf('=');
            return eq === -1 ? ['name', kv] : [kv.slice(0, eq), kv.slice(eq + 1)];
          }),
        );
        lines.push(`  ${fields.name ?? option}`);
        if (fields.profile !== undefined) line('   Profile:', fields.profile);
      }
    }
  }
  nonEmpty(' Kernel Version:', info.KernelVersion);
  nonEmpty(' Operating System:', info.OperatingSystem);
  nonEmpty(' OSType:', info.OSType);
  nonEmpty(' Architecture:', info.Architecture);
  line(' CPUs:', info.NCPU ?? 0);
  line(' Total Memory:', bytesSize(info.MemTotal ?? 0));
  nonEmpty(' Name:', info.Name);
  nonEmpty(' ID:', info.ID);
  line(' Docker Root Dir:', info.DockerRootDir ?? '');
  line(' Debug Mode:', info.Debug === true);
  if (info.Debug || debug) {
    line('  File Descriptors:', info.NFd ?? 0);
    line('  Goroutines:', info.NGoroutines ?? 0);
    line('  System Time:', info.SystemTime ?? '');
    line('  EventsListeners:', info.NEventsListener ?? 0);
  }
  nonEmpty(' HTTP Proxy:', info.HttpProxy);
  nonEmpty(' HTTPS Proxy:', info.HttpsProxy);
  nonEmpty(' No Proxy:', info.NoProxy);
  if ((info.Labels ?? []).length > 0) {
    line(' Labels:');
    for (const label of info.Labels ?? []) lines.push(`  ${label}`);
  }
  line(' Experimental:', info.ExperimentalBuild === true);
  const registry = info.RegistryConfig;
  const insecureIndexes = Object.values(registry?.IndexConfigs ?? {}).filter((r) => !r.Secure);
  if (
    registry &&
    ((registry.InsecureRegistryCIDRs ?? []).length > 0 || Object.keys(registry.IndexConfigs ?? {}).length > 0)
  ) {
    line(' Insecure Registries:');
    for (const index of insecureIndexes) lines.push(`  ${index.Name}`);
    for (const cidr of registry.InsecureRegistryCIDRs ?? []) lines.push(`  ${cidr}`);
  }
  if ((registry?.Mirrors ?? []).length > 0) {
    line(' Registry Mirrors:');
    for (const mirror of registry?.Mirrors ?? []) lines.push(`  ${mirror}`);
  }
  line(' Live Restore Enabled:', info.LiveRestoreEnabled === true);
  if ((info.DefaultAddressPools ?? []).length > 0) {
    line(' Default Address Pools:');
    for (const pool of info.DefaultAddressPools ?? [])
      lines.push(`   Base: ${pool.Base}, Size: ${pool.Size}`);
  }
  return lines.join('\n') + '\n\n';
}

async function info(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const clientInfo = {
    Debug: ctx.options.debug,
    Context: 'default',
    Version: BERTH_VERSION,
    Plugins: [],
    Warnings: null,
  };
  const format = flagValue(args, 'format');
  if (format !== undefined && format !== '') {
    const data = await ctx.client().json<Info>('GET', '/info');
    const template = parseTemplate(
      format === 'json' ? '{{json .}}' : format.replace(/\\t/g, '\t').replace(/\\n/g, '\n'),
    );
    ctx.out(`${executeTemplate(template, { ...data, ClientInfo: clientInfo, ClientErrors: null })}\n`);
    return 0;
  }
  ctx.out(
    `Client:\n Version:    ${BERTH_VERSION}\n Context:    default\n Debug Mode: ${ctx.options.debug}\n\nServer:\n`,
  );
  const data = await ctx.client().json<Info>('GET', '/info');
  ctx.out(serverInfoText(data, ctx.options.debug));
  for (const warning of data.Warnings ?? []) ctx.err(`${warning}\n`);
  return 0;
}

interface DiskUsage {
  LayersSize?: number;
  Images?: ImageSummary[] | null;
  Containers?: ContainerSummary[] | null;
  Volumes?: Array<{ Name: string; UsageData?: { Size?: number; RefCount?: number } | null }> | null;
  BuildCache?: Array<{
    ID: string;
    Type?: string;
    InUse?: boolean;
    Shared?: boolean;
    Size?: number;
    CreatedAt?: string;
    LastUsedAt?: string | null;
    UsageCount?: number;
  }> | null;
}

const percent = (part: number, total: number): string =>
  total > 0 ? ` (${Math.trunc((part * 100) / total)}%)` : '';
const isActive = (state: string): boolean => /running|paused|restarting/.test(state);

async function df(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const usage = await ctx.client().json<DiskUsage>('GET', '/system/df');
  const images = usage.Images ?? [];
  const containers = usage.Containers ?? [];
  const volumes = usage.Volumes ?? [];
  const cache = usage.BuildCache ?? [];
  const now = Date.now();
  if (flagBool(args, 'verbose')) {
    let text = 'Images space usage:\n\n';
    text += renderList(
      {
        format:
          'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}',
        defaultTable: '',
        headers: IMAGE_DF_HEADERS,
      },
      imageRows(images, false, true, now),
    );
    text += '\nContainers space usage:\n\n';
    text += renderList(
      {
        format:
          'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}',
        defaultTable: '',
        headers: CONTAINER_HEADERS,
      },
      containers.map((c) => containerContext({ ...c, SizeRootFs: 0 }, true, now)),
    );
    text += '\nLocal Volumes space usage:\n\n';
    text += renderList(
      {
        format: 'table {{.Name}}\t{{.Links}}\t{{.Size}}',
        defaultTable: '',
        headers: { Name: 'VOLUME NAME', Links: 'LINKS', Size: 'SIZE' },
      },
      volumes.map((v) =>
        structContext({
          Links: v.UsageData ? String(v.UsageData.RefCount ?? -1) : 'N/A',
          Name: v.Name,
          Size: v.UsageData ? humanSize(v.UsageData.Size ?? -1) : 'N/A',
        }),
      ),
    );
    const cacheSize = cache.filter((b) => !b.Shared).reduce((sum, b) => sum + (b.Size ?? 0), 0);
    text += `\nBuild cache usage: ${humanSize(cacheSize)}\n\n`;
    text += renderList(
      {
        format:
          'table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}',
        defaultTable: '',
        headers: {
          ID: 'CACHE ID',
          CacheType: 'CACHE TYPE',
          Size: 'SIZE',
          CreatedSince: 'CREATED',
          LastUsedSince: 'LAST USED',
          UsageCount: 'USAGE',
          Shared: 'SHARED',
        },
      },
      cache.map((b) => {
        const created = parseRfc3339(b.CreatedAt ?? '');
        const used = b.LastUsedAt ? parseRfc3339(b.LastUsedAt) : undefined;
        return structContext({
          CacheType: b.Type ?? '',
          CreatedSince: created ? timeAgo(created.seconds, now) : '',
          ID: b.ID.length > 12 ? b.ID.slice(0, 12) : b.ID,
          LastUsedSince: used ? timeAgo(used.seconds, now) : '',
          Shared: String(b.Shared === true),
          Size: humanSizeWithPrecision(b.Size ?? 0, 3),
          UsageCount: String(b.UsageCount ?? 0),
        });
      }),
    );
    ctx.out(text);
    return 0;
  }
  const layers = usage.LayersSize ?? 0;
  let usedByImages = 0;
  for (const image of images) {
    if ((image.Containers ?? 0) !== 0 && image.Size !== -1 && image.SharedSize !== -1) {
      usedByImages += (image.Size ?? 0) - (image.SharedSize ?? 0);
    }
  }
  const containerSize = containers.reduce((sum, c) => sum + (c.SizeRw ?? 0), 0);
  const containerFree = containers
    .filter((c) => !isActive(c.State ?? ''))
    .reduce((sum, c) => sum + (c.SizeRw ?? 0), 0);
  const volumeSize = volumes.reduce(
    (sum, v) => sum + ((v.UsageData?.Size ?? -1) === -1 ? 0 : (v.UsageData?.Size ?? 0)),
    0,
  );
  const volumeFree = volumes
    .filter((v) => (v.UsageData?.RefCount ?? 0) === 0 && (v.UsageData?.Size ?? -1) !== -1)
    .reduce((sum, v) => sum + (v.UsageData?.Size ?? 0), 0);
  const cacheSize = cache.filter((b) => !b.Shared).reduce((sum, b) => sum + (b.Size ?? 0), 0);
  const cacheFree = cache.filter((b) => !b.Shared && !b.InUse).reduce((sum, b) => sum + (b.Size ?? 0), 0);
  const row = (type: string, total: number, active: number, size: number, reclaimable: string) =>
    structContext({
      Active: String(active),
      Reclaimable: reclaimable,
      Size: humanSize(size),
      TotalCount: String(total),
      Type: type,
    });
  const imageFree = layers - usedByImages;
  const rows = [
    row(
      'Images',
      images.length,
      images.filter((i) => (i.Containers ?? 0) > 0).length,
      layers,
      humanSize(imageFree) + percent(imageFree, layers),
    ),
    row(
      'Containers',
      containers.length,
      containers.filter((c) => isActive(c.State ?? '')).length,
      containerSize,
      humanSize(containerFree) + percent(containerFree, containerSize),
    ),
    row(
      'Local Volumes',
      volumes.length,
      volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length,
      volumeSize,
      humanSize(volumeFree) + percent(volumeFree, volumeSize),
    ),
    row('Build Cache', cache.length, cache.filter((b) => b.InUse).length, cacheSize, humanSize(cacheFree)),
  ];
  ctx.out(
    renderList(
      {
        format: flagValue(args, 'format'),
        defaultTable: 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
        headers: {
          Type: 'TYPE',
          TotalCount: 'TOTAL',
          Active: 'ACTIVE',
          Size: 'SIZE',
          Reclaimable: 'RECLAIMABLE',
        },
      },
      rows,
    ),
  );
  return 0;
}

const IMAGE_DF_HEADERS: Record<string, string> = {
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  ID: 'IMAGE ID',
  CreatedSince: 'CREATED',
  Size: 'SIZE',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
  Containers: 'CONTAINERS',
};

interface EventMessage {
  Type?: string;
  Action?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> | null };
  time?: number;
}

/** jsonmessage.RFC3339NanoFixed in the local zone, from nanoseconds given as decimal text (exact). */
function rfc3339NanoFixed(nsText: string): string {
  const ns = BigInt(nsText);
  const seconds = Number(ns / 1_000_000_000n);
  const date = new Date(seconds * 1000);
  const offsetMinutes = -date.getTimezoneOffset();
  const local = new Date(date.getTime() + offsetMinutes * 60_000);
  const nanos = String(ns % 1_000_000_000n).padStart(9, '0');
  const abs = Math.abs(offsetMinutes);
  const zone =
    offsetMinutes === 0
      ? 'Z'
      : `${offsetMinutes < 0 ? '-' : '+'}${String(Math.trunc(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${local.toISOString().slice(0, 19)}.${nanos}${zone}`;
}

async function events(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const now = Date.now();
  const since = flagValue(args, 'since');
  const until = flagValue(args, 'until');
  const format = flagValue(args, 'format') ?? '';
  const template =
    format === ''
      ? undefined
      : parseTemplate(format === 'json' ? '{{json .}}' : format.replace(/\\t/g, '\t').replace(/\\n/g, '\n'));
  const res = await ctx.client().request('GET', '/events', {
    query: {
      filters: filtersJson(flagValues(args, 'filter')),
      since: since === undefined ? undefined : getTimestamp(since, now),
      until: until === undefined ? undefined : getTimestamp(until, now),
    },
  });
  for await (const text of readJsonTexts(res)) {
    const event = JSON.parse(text) as EventMessage;
    // timeNano exceeds a double's precision: take its digits from the text.
    const timeNano = /"timeNano"\s*:\s*(\d+)/.exec(text)?.[1];
    if (template) {
      ctx.out(`${executeTemplate(template, event)}\n`);
      continue;
    }
    let line = '';
    if (timeNano !== undefined && timeNano !== '0') line += `${rfc3339NanoFixed(timeNano)} `;
    else if (event.time) line += `${rfc3339NanoFixed(`${event.time}000000000`)} `;
    line += `${event.Type ?? ''} ${event.Action ?? ''} ${event.Actor?.ID ?? ''}`;
    const attributes = event.Actor?.Attributes ?? {};
    const keys = Object.keys(attributes).sort();
    if (keys.length > 0) line += ` (${keys.map((k) => `${k}=${attributes[k]}`).join(', ')})`;
    ctx.out(`${line}\n`);
  }
  return 0;
}

async function systemPrune(ctx: CliContext, args: ParsedArgs): Promise<number> {
  const all = flagBool(args, 'all');
  const volumes = flagBool(args, 'volumes');
  const filters = flagValues(args, 'filter');
  if (!flagBool(args, 'force')) {
    let warning =
      'WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n';
    if (volumes) warning += '  - all anonymous volumes not used by at least one container\n';
    warning += all
      ? '  - all images without at least one container associated to them\n'
      : '  - all dangling images\n';
    warning += all ? '  - all build cache\n' : '  - unused build cache\n';
    if (!(await confirm(ctx, `${warning}\nAre you sure you want to continue?`))) return 0;
  }
  const client = ctx.client();
  let reclaimed = 0;
  const section = (title: string, items: string[]): void => {
    if (items.length > 0) ctx.out(`${title}:\n${items.map((i) => `${i}\n`).join('')}\n`);
  };
  const containers = await client.json<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>(
    'POST',
    '/containers/prune',
    { query: { filters: filtersJson(filters) } },
  );
  section('Deleted Containers', containers.ContainersDeleted ?? []);
  if ((containers.ContainersDeleted ?? []).length > 0) reclaimed += containers.SpaceReclaimed ?? 0;
  const networks = await client.json<{ NetworksDeleted?: string[] | null }>('POST', '/networks/prune', {
    query: { filters: filtersJson(filters) },
  });
  section('Deleted Networks', networks.NetworksDeleted ?? []);
  if (volumes) {
    const report = await client.json<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>(
      'POST',
      '/volumes/prune',
      {
        query: { filters: filtersJson(filters) },
      },
    );
    section('Deleted Volumes', report.VolumesDeleted ?? []);
    if ((report.VolumesDeleted ?? []).length > 0) reclaimed += report.SpaceReclaimed ?? 0;
  }
  const images = await client.json<{
    ImagesDeleted?: Array<{ Untagged?: string; Deleted?: string }> | null;
    SpaceReclaimed?: number;
  }>('POST', '/images/prune', {
    query: { filters: filtersJson([...filters, `dangling=${all ? 'false' : 'true'}`]) },
  });
  const deletedImages = images.ImagesDeleted ?? [];
  if (deletedImages.length > 0) {
    let text = 'Deleted Images:\n';
    for (const item of deletedImages)
      text += item.Untagged ? `untagged: ${item.Untagged}\n` : `deleted: ${item.Deleted ?? ''}\n`;
    ctx.out(`${text}\n`);
    reclaimed += images.SpaceReclaimed ?? 0;
  }
  try {
    const cache = await client.json<{ CachesDeleted?: string[] | null; SpaceReclaimed?: number }>(
      'POST',
      '/build/prune',
      {
        query: { all: all ? '1' : undefined, filters: filtersJson(filters) ?? '' },
      },
    );
    section('Deleted build cache objects', cache.CachesDeleted ?? []);
    reclaimed += cache.SpaceReclaimed ?? 0;
  } catch (err) {
    // berthd has no build cache until builds arrive: nothing to prune then.
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  ctx.out(`Total reclaimed space: ${humanSize(reclaimed)}\n`);
  return 0;
}

export const commands: Record<string, CommandDef> = {
  version: {
    usage: '[OPTIONS]',
    description: 'Show the berth version information',
    args: { max: 0 },
    flags: [
      {
        ...FORMAT_FLAG,
        short: 'f',
        description: "Format output using a custom template: 'json' or a Go template",
      },
    ],
    run: version,
  },
  info: {
    usage: '[OPTIONS]',
    description: 'Display system-wide information',
    aliases: ['berth system info', 'berth info'],
    args: { max: 0 },
    flags: [
      {
        ...FORMAT_FLAG,
        short: 'f',
        description: "Format output using a custom template: 'json' or a Go template",
      },
    ],
    run: info,
  },
  df: {
    usage: '[OPTIONS]',
    description: 'Show berth disk usage',
    args: { max: 0 },
    flags: [
      FORMAT_FLAG,
      { name: 'verbose', short: 'v', type: 'bool', description: 'Show detailed information on space usage' },
    ],
    run: df,
  },
  events: {
    usage: '[OPTIONS]',
    description: 'Get real time events from the server',
    aliases: ['berth system events', 'berth events'],
    args: { max: 0 },
    flags: [
      FILTER_FLAG,
      FORMAT_FLAG,
      { name: 'since', type: 'string', description: 'Show all events created since timestamp' },
      { name: 'until', type: 'string', description: 'Stream events until this timestamp' },
    ],
    run: events,
  },
  'system prune': {
    usage: '[OPTIONS]',
    description: 'Remove unused data',
    args: { max: 0 },
    flags: [
      {
        name: 'all',
        short: 'a',
        type: 'bool',
        description: 'Remove all unused images not just dangling ones',
      },
      { ...FILTER_FLAG, short: undefined, description: 'Provide filter values (e.g. "label=<key>=<value>")' },
      { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
      { name: 'volumes', type: 'bool', description: 'Prune anonymous volumes' },
    ],
    run: systemPrune,
  },
};
