/** The Docker Engine API's /volumes routes. */
import type { Router } from '../api/router.js';
import { Reply } from '../api/router.js';
import { invalidArgument } from '../common/errors.js';
import type { VolumeRecord, VolumeStore } from '../volume/local.js';
import type { Engine } from './engine.js';
import { volumeEvent } from './lifecycle-events.js';

/** A volume as dockerd shows it: no labels or options is null, not {}. */
export const volumeJson = ({
  anonymous: _anonymous,
  ...volume
}: VolumeRecord): Omit<VolumeRecord, 'anonymous' | 'Labels' | 'Options'> & {
  Labels: Record<string, string> | null;
  Options: Record<string, string> | null;
} => ({
  ...volume,
  Labels: Object.keys(volume.Labels).length > 0 ? volume.Labels : null,
  Options: Object.keys(volume.Options).length > 0 ? volume.Options : null,
});

export function registerVolumeRoutes(router: Router, volumes: VolumeStore, engine: Engine): void {
  router.get('/volumes', (ctx) => {
    const filters = ctx.query.filters(['name', 'label', 'dangling', 'driver']);
    const list = volumes.list().filter((v) => {
      const names = filters.get('name');
      if (names.length > 0 && !names.some((n) => v.Name.includes(n))) return false;
      const dangling = filters.get('dangling');
      if (dangling.length > 0) {
        const unused = engine.volumeUsers(v.Name).length === 0;
        if (!dangling.some((d) => (d === 'true' || d === '1') === unused)) return false;
      }
      const labels = filters.get('label');
      return labels.every((label) => {
        const [key = '', value] = label.split('=');
        return value === undefined ? key in v.Labels : v.Labels[key] === value;
      });
    });
    return { Volumes: list.map(volumeJson), Warnings: [] };
  });

  router.post('/volumes/create', async (ctx) => {
    const body =
      (await ctx.json<{
        Name?: string;
        Driver?: string;
        DriverOpts?: Record<string, string>;
        Labels?: Record<string, string>;
      }>()) ?? {};
    for (const [field, value] of Object.entries({ Name: body.Name, Driver: body.Driver }))
      if (value !== undefined && value !== null && typeof value !== 'string')
        throw invalidArgument(
          `json: cannot unmarshal ${typeof value} into Go struct field CreateOptions.${field} of type string`,
        );
    for (const [field, value] of Object.entries({ DriverOpts: body.DriverOpts, Labels: body.Labels }))
      if (
        value !== undefined &&
        value !== null &&
        (typeof value !== 'object' ||
          Array.isArray(value) ||
          Object.values(value).some((v) => typeof v !== 'string'))
      )
        throw invalidArgument(
          `json: cannot unmarshal into Go struct field CreateOptions.${field} of type map[string]string`,
        );
    const existed = body.Name ? volumes.find(body.Name) !== undefined : false;
    const volume = await volumes.create(body.Name || undefined, {
      ...(body.Labels ? { labels: body.Labels } : {}),
      ...(body.Driver ? { driver: body.Driver } : {}),
      ...(body.DriverOpts ? { driverOpts: body.DriverOpts } : {}),
    });
    if (!existed) engine.services.events.publish(volumeEvent('create', volume.Name));
    return Reply.json(201, volumeJson(volume));
  });

  router.get('/volumes/{name}', (ctx) => volumeJson(volumes.get(ctx.params.name)));

  router.delete('/volumes/{name}', async (ctx) => {
    const name = volumes.get(ctx.params.name).Name;
    await volumes.remove(name, engine.volumeUsers(name), ctx.query.bool('force'));
    engine.services.events.publish(volumeEvent('destroy', name));
    return Reply.empty(204);
  });

  router.post('/volumes/prune', async (ctx) => {
    const all = ctx.query
      .filters(['all', 'label'])
      .get('all')
      .some((v) => v === 'true' || v === '1');
    const deleted: string[] = [];
    for (const volume of volumes.list()) {
      if (engine.volumeUsers(volume.Name).length > 0) continue;
      // Like Docker 23+: only anonymous volumes unless all=true.
      if (!all && !volume.anonymous) continue;
      await volumes.remove(volume.Name, []);
      engine.services.events.publish(volumeEvent('destroy', volume.Name));
      deleted.push(volume.Name);
    }
    return { VolumesDeleted: deleted, SpaceReclaimed: 0 };
  });
}
