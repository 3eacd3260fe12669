/**
 * `GET /system/df` in Docker's shape: LayersSize, Images (Size, SharedSize, Containers),
 * Containers (SizeRw, SizeRootFs), Volumes (UsageData) and BuildCache (the builder's records,
 * build/cache-usage.ts). Sizes are disk usage
 * (allocated blocks): an image's size is that of its layer snapshots, so Size - SharedSize (the
 * CLI's unique size) and LayersSize agree with each other.
 */
import type { Router } from '../api/router.js';
import { versionAtLeast } from '../api/versions.js';
import type { Builder } from '../build/builder.js';
import { dockerRecord } from '../build/cache-usage.js';
import { invalidArgument } from '../common/errors.js';
import { diskUsage } from '../snapshot/usage.js';
import type { VolumeRecord } from '../volume/local.js';
import type { ContainerRecord } from './container-record.js';
import { summarizeContainer } from './container-list.js';
import { volumeJson } from './volume-routes.js';
import type { Engine } from './engine.js';

export type DfType = 'container' | 'image' | 'volume' | 'build-cache';
const DF_TYPES: readonly DfType[] = ['container', 'image', 'volume', 'build-cache'];

export interface DfImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  created?: string;
  labels: Record<string, string>;
  /** Chain IDs of its layers: the snapshots they are unpacked to. */
  chainIds: string[];
}

/** Where the report's numbers come from; the engine's in berthd, fakes in unit tests. */
export interface DfSources {
  containers(): ContainerRecord[];
  /** The container as `GET /containers/json` shows it; df adds its sizes. */
  summary(record: ContainerRecord): Record<string, unknown>;
  images(): Promise<DfImage[]>;
  /** Disk usage of a snapshot (a layer's chain ID, a container's writable layer). */
  snapshotSize(key: string): Promise<number>;
  volumes(): VolumeRecord[];
  volumeUsers(name: string): string[];
  /** Disk usage of a directory. */
  directorySize(path: string): Promise<number>;
  /** The build cache's records in the API's shape (`Parent` instead of `Parents` before 1.42). */
  buildCache?(legacyParent: boolean): Promise<Array<Record<string, unknown>>>;
}

const unix = (iso: string | undefined): number => (iso ? Math.floor(Date.parse(iso) / 1000) : 0);

/** Sizes of each distinct layer, asked once each; an unreadable snapshot counts 0. */
async function layerSizes(sources: DfSources, images: DfImage[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  for (const chainId of new Set(images.flatMap((image) => image.chainIds)))
    sizes.set(chainId, await sources.snapshotSize(chainId).catch(() => 0));
  return sizes;
}

export async function diskUsageReport(
  sources: DfSources,
  types: ReadonlySet<DfType> = new Set(DF_TYPES),
  legacyParent = false,
): Promise<Record<string, unknown>> {
  const report: Record<string, unknown> = {};
  const containers = sources.containers();
  const needImages = types.has('image') || types.has('container');
  const images = needImages ? await sources.images() : [];
  const sizes = await layerSizes(sources, images);
  const imageSize = (image: DfImage): number =>
    image.chainIds.reduce((sum, chainId) => sum + (sizes.get(chainId) ?? 0), 0);

  if (types.has('image')) {
    const users = new Map<string, number>();
    for (const chainId of images.flatMap((image) => [...new Set(image.chainIds)]))
      users.set(chainId, (users.get(chainId) ?? 0) + 1);
    report.LayersSize = [...sizes.values()].reduce((sum, size) => sum + size, 0);
    report.Images = images.map((image) => {
      const size = imageSize(image);
      return {
        Id: image.id,
        ParentId: '',
        RepoTags: image.repoTags,
        RepoDigests: image.repoDigests.length > 0 ? image.repoDigests : null,
        Created: unix(image.created),
        Size: size,
        SharedSize: [...new Set(image.chainIds)]
          .filter((chainId) => (users.get(chainId) ?? 0) > 1)
          .reduce((sum, chainId) => sum + (sizes.get(chainId) ?? 0), 0),
        VirtualSize: size,
        Labels: Object.keys(image.labels).length > 0 ? image.labels : null,
        Containers: containers.filter((c) => c.image === image.id).length,
      };
    });
  }

  if (types.has('container')) {
    const byId = new Map(images.map((image) => [image.id, image]));
    report.Containers = await Promise.all(
      containers.map(async (record) => {
        const sizeRw = await sources.snapshotSize(record.snapshotKey).catch(() => 0);
        const image = byId.get(record.image);
        return {
          ...sources.summary(record),
          SizeRw: sizeRw,
          SizeRootFs: sizeRw + (image ? imageSize(image) : 0),
        };
      }),
    );
  }

  if (types.has('volume')) {
    report.Volumes = await Promise.all(
      sources.volumes().map(async (volume) => ({
        ...volumeJson(volume),
        UsageData: {
          Size: await sources.directorySize(volume.Mountpoint).catch(() => -1),
          RefCount: sources.volumeUsers(volume.Name).length,
        },
      })),
    );
  }

  if (types.has('build-cache')) {
    const records = (await sources.buildCache?.(legacyParent)) ?? [];
    report.BuildCache = records;
    // API 1.41 still had the total; later ones leave the sum to the client.
    if (legacyParent)
      report.BuilderSize = records.reduce((sum, r) => sum + (typeof r.Size === 'number' ? r.Size : 0), 0);
  }
  return report;
}

/** The `type` query (API 1.42+): which parts to compute; all of them when absent. */
export function parseDfTypes(values: string[]): Set<DfType> {
  if (values.length === 0) return new Set(DF_TYPES);
  for (const value of values) {
    if (!(DF_TYPES as readonly string[]).includes(value))
      throw invalidArgument(`unknown object type '${value}': expected one of ${DF_TYPES.join(', ')}`);
  }
  return new Set(values as DfType[]);
}

export function engineDfSources(engine: Engine, builder?: Builder): DfSources {
  const { images, snapshotter, volumes } = engine.services;
  return {
    ...(builder
      ? {
          buildCache: async (legacyParent: boolean) =>
            (await builder.usage()).map((record) => dockerRecord(record, legacyParent)),
        }
      : {}),
    containers: () => engine.containers.list(),
    summary: (record) => summarizeContainer(engine, record),
    images: async () => {
      const found: DfImage[] = [];
      for (const summary of await images.list()) {
        const details = await images.inspect(summary.id).catch(() => undefined);
        found.push({
          id: summary.id,
          repoTags: summary.repoTags,
          repoDigests: summary.repoDigests,
          ...(summary.created !== undefined ? { created: summary.created } : {}),
          labels: summary.labels,
          chainIds: details?.chainIds ?? [],
        });
      }
      return found;
    },
    snapshotSize: async (key) => (await snapshotter.usage(key)).size,
    volumes: () => volumes.list(),
    volumeUsers: (name) => engine.volumeUsers(name),
    directorySize: async (path) => (await diskUsage(path)).size,
  };
}

export function registerSystemDfRoute(router: Router, engine: Engine, builder?: Builder): void {
  const sources = engineDfSources(engine, builder);
  router.get('/system/df', async (ctx) =>
    diskUsageReport(
      sources,
      parseDfTypes(ctx.query.strings('type')),
      !versionAtLeast(ctx.apiVersion, '1.42'),
    ),
  );
}
