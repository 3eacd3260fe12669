/** The Docker Engine API's /networks routes. */
import type { Router } from '../api/router.js';
import { Reply } from '../api/router.js';
import { invalidArgument } from '../common/errors.js';
import type { NetworkCreateRequest } from '../network/manager.js';
import { isPredefined, networkJson, type NetworkRecord } from '../network/network-record.js';
import type { EndpointSettings } from './docker-types.js';
import type { Engine } from './engine.js';

const labelMatches = (labels: Record<string, string>, filter: string): boolean => {
  const at = filter.indexOf('=');
  return at < 0 ? filter in labels : labels[filter.slice(0, at)] === filter.slice(at + 1);
};

/** Docker's `until` filter: a Unix timestamp or an RFC 3339 time. */
function untilTime(value: string): number {
  const seconds = Number(value);
  const time = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value);
  if (Number.isNaN(time)) throw invalidArgument(`invalid until filter: ${value}`);
  return time;
}

export function registerNetworkRoutes(router: Router, engine: Engine): void {
  const manager = engine.networking.manager;
  const containersOf = (network: NetworkRecord): Record<string, object> =>
    engine.networking.containersOn(network, engine.containers.list());

  router.get('/networks', (ctx) => {
    const filters = ctx.query.filters(['name', 'id', 'driver', 'label', 'type', 'scope', 'dangling']);
    const any = (key: string, test: (value: string) => boolean): boolean => {
      const values = filters.get(key);
      return values.length === 0 || values.some(test);
    };
    return manager
      .list()
      .filter(
        (n) =>
          any('name', (v) => n.name.includes(v)) &&
          any('id', (v) => n.id.startsWith(v)) &&
          any('driver', (v) => n.driver === v) &&
          any('scope', (v) => v === 'local') &&
          any('type', (v) => (v === 'builtin') === isPredefined(n.name)) &&
          any(
            'dangling',
            (v) =>
              (v === 'true' || v === '1') ===
              (!isPredefined(n.name) && engine.networkUsers(n.name).length === 0),
          ) &&
          filters.get('label').every((label) => labelMatches(n.labels, label)),
      )
      .map((n) => networkJson(n, containersOf(n)));
  });

  router.get('/networks/{id}', (ctx) => {
    const network = manager.get(ctx.params.id);
    return networkJson(network, containersOf(network));
  });

  router.post('/networks/create', async (ctx) => {
    const body = await ctx.json<NetworkCreateRequest>();
    if (!body || typeof body.Name !== 'string' || body.Name === '')
      throw invalidArgument('network name is required');
    const network = await manager.create(body);
    engine.publishNetwork(network.id, network.name, network.driver, 'create');
    return Reply.json(201, { Id: network.id, Warning: '' });
  });

  router.delete('/networks/{id}', async (ctx) => {
    const network = manager.get(ctx.params.id);
    await manager.remove(network.id, engine.networkUsers(network.name));
    engine.publishNetwork(network.id, network.name, network.driver, 'destroy');
    return Reply.empty(204);
  });

  router.post('/networks/{id}/connect', async (ctx) => {
    const body = await ctx.json<{ Container?: string; EndpointConfig?: EndpointSettings | null }>();
    if (!body?.Container) throw invalidArgument('Container is required');
    await engine.connectNetwork(body.Container, ctx.params.id, body.EndpointConfig ?? {});
    return Reply.empty(200);
  });

  router.post('/networks/{id}/disconnect', async (ctx) => {
    const body = await ctx.json<{ Container?: string; Force?: boolean }>();
    if (!body?.Container) throw invalidArgument('Container is required');
    await engine.disconnectNetwork(body.Container, ctx.params.id, body.Force === true);
    return Reply.empty(200);
  });

  router.post('/networks/prune', async (ctx) => {
    const filters = ctx.query.filters(['until', 'label', 'label!']);
    const until = filters.get('until').map(untilTime);
    const deleted: string[] = [];
    for (const network of manager.list()) {
      if (isPredefined(network.name) || engine.networkUsers(network.name).length > 0) continue;
      if (until.some((time) => Date.parse(network.created) >= time)) continue;
      if (!filters.get('label').every((label) => labelMatches(network.labels, label))) continue;
      if (filters.get('label!').some((label) => labelMatches(network.labels, label))) continue;
      await manager.remove(network.id, []);
      engine.publishNetwork(network.id, network.name, network.driver, 'destroy');
      deleted.push(network.name);
    }
    return { NetworksDeleted: deleted };
  });
}
