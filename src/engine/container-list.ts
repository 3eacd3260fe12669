/**
 * `GET /containers/json` (docker ps) as dockerd answers it: its filters with dockerd's matching
 * rules (daemon/list.go) and the summary's Command and Mounts.
 */
import { invalidArgument, notFound } from '../common/errors.js';
import type { Filters } from '../api/filters.js';
import { statusText, type ContainerRecord } from './container-record.js';
import type { Engine } from './engine.js';
import { portsSummary } from './container-network.js';
import { mountPoints } from './inspect.js';

export const CONTAINER_LIST_FILTERS = [
  'ancestor',
  'before',
  'exited',
  'expose',
  'health',
  'id',
  'is-task',
  'isolation',
  'label',
  'name',
  'network',
  'publish',
  'since',
  'status',
  'volume',
];

const STATUSES = new Set(['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead']);
const HEALTH = new Set(['starting', 'healthy', 'unhealthy', 'none']);

const invalidFilter = (key: string, value: string): Error =>
  invalidArgument(`invalid filter '${key}=${value}'`);

/** dockerd's Command column: the path and the arguments, those with a space in single quotes. */
export function commandOf(record: Pick<ContainerRecord, 'path' | 'args'>): string {
  if (record.args.length === 0) return record.path;
  const args = record.args.map((arg) => (arg.includes(' ') ? `'${arg}'` : arg));
  return `${record.path} ${args.join(' ')}`;
}

/** Go's filters.Match: the key absent, a value equal to `source`, or a value that is a regexp matching it. */
function matchRegexp(filters: Filters, key: string, source: string): boolean {
  const values = filters.get(key);
  if (values.length === 0) return true;
  return values.some((value) => {
    if (value === source) return true;
    try {
      return new RegExp(value).test(source);
    } catch {
      return false;
    }
  });
}

/** A `publish`/`expose` value: `80`, `80/udp`, `8000-8080/tcp`. */
function portRange(key: string, value: string): { first: number; last: number; proto: string } {
  const match = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(value);
  if (!match) throw invalidFilter(key, value);
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (last < first || last > 65535) throw invalidFilter(key, value);
  return { first, last, proto: match[3] ?? 'tcp' };
}

/** The values of the filters that need checking once per request, not per container. */
export interface ListContext {
  filters: Filters;
  /** Creation times (ms) of the `before`/`since` containers. */
  before?: number;
  since?: number;
}

/** Checks the filter values and resolves `before`/`since` (unknown containers are a 404, as in dockerd). */
export function listContext(
  filters: Filters,
  find: (ref: string) => ContainerRecord | undefined,
): ListContext {
  for (const value of filters.get('status')) if (!STATUSES.has(value)) throw invalidFilter('status', value);
  for (const value of filters.get('health')) if (!HEALTH.has(value)) throw invalidFilter('health', value);
  for (const value of filters.get('exited')) if (!/^-?\d+$/.test(value)) throw invalidFilter('exited', value);
  for (const value of filters.get('is-task'))
    if (value !== 'true' && value !== 'false') throw invalidFilter('is-task', value);
  for (const key of ['publish', 'expose']) for (const value of filters.get(key)) portRange(key, value);
  const createdOf = (ref: string): number => {
    const record = find(ref);
    if (!record) throw notFound(`No such container: ${ref}`);
    return Date.parse(record.created);
  };
  const context: ListContext = { filters };
  for (const ref of filters.get('before')) context.before = createdOf(ref);
  for (const ref of filters.get('since')) context.since = createdOf(ref);
  return context;
}

export function matchesListFilters(record: ContainerRecord, context: ListContext): boolean {
  const { filters } = context;
  const any = (key: string, test: (value: string) => boolean): boolean => {
    const values = filters.get(key);
    return values.length === 0 || values.some(test);
  };
  const created = Date.parse(record.created);
  if (context.before !== undefined && created >= context.before) return false;
  if (context.since !== undefined && created <= context.since) return false;
  const ports = portsSummary(record);
  const inRange = (key: string, port: number | undefined, proto: string, value: string): boolean => {
    const range = portRange(key, value);
    return port !== undefined && proto === range.proto && port >= range.first && port <= range.last;
  };
  return (
    any('status', (v) => v === record.state.Status) &&
    // Names are matched with and without their leading slash; ids by prefix.
    (matchRegexp(filters, 'name', `/${record.name}`) || matchRegexp(filters, 'name', record.name)) &&
    filters.fuzzyMatch('id', record.id) &&
    any(
      'ancestor',
      (v) => record.imageRef === v || record.image.startsWith(v) || record.image === `sha256:${v}`,
    ) &&
    // Only a container that ran has an exit code to match.
    any(
      'exited',
      (v) => !record.state.Running && record.everStarted === true && record.state.ExitCode === Number(v),
    ) &&
    any('health', (v) => (record.state.Health?.Status ?? 'none') === v) &&
    any(
      'network',
      (v) =>
        v in (record.networks ?? {}) ||
        Object.values(record.endpoints ?? {}).some(
          (e) => e.networkId === v || (v.length >= 12 && e.networkId.startsWith(v)),
        ),
    ) &&
    any('volume', (v) =>
      mountPoints(record, '').some((m) => (m.Name ?? m.Source) === v || m.Destination === v),
    ) &&
    any('publish', (v) => ports.some((p) => inRange('publish', p.PublicPort, p.Type, v))) &&
    any('expose', (v) => ports.some((p) => inRange('expose', p.PrivatePort, p.Type, v))) &&
    any('is-task', (v) => v === 'false') &&
    any('isolation', (v) => v === (record.hostConfig.Isolation || 'default')) &&
    filters.matchKVList('label', record.config.Labels ?? {})
  );
}

const unix = (iso: string): number => Math.floor(Date.parse(iso) / 1000);

/** One entry of `GET /containers/json` (and of system df's Containers). */
export function summarizeContainer(engine: Engine, record: ContainerRecord): Record<string, unknown> {
  return {
    Id: record.id,
    Names: [`/${record.name}`],
    Image: record.imageRef,
    ImageID: record.image,
    Command: commandOf(record),
    Created: unix(record.created),
    Ports: portsSummary(record),
    Labels: record.config.Labels ?? {},
    State: record.state.Status,
    Status: statusText(record.state),
    HostConfig: { NetworkMode: record.hostConfig.NetworkMode ?? 'default' },
    NetworkSettings: { Networks: engine.networking.summaryNetworks(record) },
    Mounts: mountPoints(record, engine.volumesRoot),
  };
}
