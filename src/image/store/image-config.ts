/**
 * What an image config says about running it, in one normalised shape (absent fields become
 * empty values), and its history in the form `docker history` shows.
 */
import type { HealthConfig, HistoryEntry, ImageConfig } from '../../oci/image-spec.js';

export interface ImageRunConfig {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  user: string;
  workingDir: string;
  /** `80/tcp`, `53/udp`, sorted. */
  exposedPorts: string[];
  /** Mount points, sorted. */
  volumes: string[];
  labels: Record<string, string>;
  healthcheck?: HealthConfig;
  stopSignal?: string;
  onBuild: string[];
  shell?: string[];
}

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];

const keys = (value: unknown): string[] =>
  typeof value === 'object' && value !== null ? Object.keys(value).sort() : [];

export function runConfigOf(image: ImageConfig): ImageRunConfig {
  const config = image.config ?? {};
  const labels: Record<string, string> = {};
  for (const [key, value] of Object.entries(config.Labels ?? {})) {
    if (typeof value === 'string') labels[key] = value;
  }
  const result: ImageRunConfig = {
    entrypoint: strings(config.Entrypoint),
    cmd: strings(config.Cmd),
    env: strings(config.Env),
    user: typeof config.User === 'string' ? config.User : '',
    workingDir: typeof config.WorkingDir === 'string' ? config.WorkingDir : '',
    exposedPorts: keys(config.ExposedPorts),
    volumes: keys(config.Volumes),
    labels,
    onBuild: strings(config.OnBuild),
  };
  if (config.Healthcheck && typeof config.Healthcheck === 'object') result.healthcheck = config.Healthcheck;
  if (typeof config.StopSignal === 'string' && config.StopSignal !== '')
    result.stopSignal = config.StopSignal;
  if (Array.isArray(config.Shell)) result.shell = strings(config.Shell);
  return result;
}

export interface HistoryItem {
  /** The image ID on the newest entry, `<missing>` on the others (as Docker shows them). */
  id: string;
  /** Seconds since the epoch, when the entry has a time. */
  created?: number;
  createdBy: string;
  /** The image's tags, on the newest entry. */
  tags: string[];
  /** Size of the entry's layer (0 for an empty layer). */
  size: number;
  comment: string;
  emptyLayer: boolean;
}

/**
 * History newest first. Each entry that is not an empty layer owns the next layer, whose size
 * `layerSizes` gives; an image without history gets one entry per layer.
 */
export function historyOf(
  imageId: string,
  image: ImageConfig,
  layerSizes: number[],
  tags: string[],
): HistoryItem[] {
  const entries: HistoryEntry[] =
    image.history && image.history.length > 0
      ? image.history
      : layerSizes.map(() => (image.created !== undefined ? { created: image.created } : {}));
  let layer = 0;
  // Configs are checked when stored (blobs.ts parseImageConfig); a stray entry still never throws here.
  const items: HistoryItem[] = entries.map((raw) => {
    const entry: HistoryEntry = typeof raw === 'object' && raw !== null ? raw : {};
    const empty = entry.empty_layer === true;
    const size = empty ? 0 : (layerSizes[layer++] ?? 0);
    const time = entry.created !== undefined ? Date.parse(entry.created) : NaN;
    const item: HistoryItem = {
      id: '<missing>',
      createdBy: entry.created_by ?? '',
      tags: [],
      size,
      comment: entry.comment ?? '',
      emptyLayer: empty,
    };
    if (Number.isFinite(time)) item.created = Math.floor(time / 1000);
    return item;
  });
  items.reverse();
  const newest = items[0];
  if (newest) {
    newest.id = imageId;
    newest.tags = tags;
  }
  return items;
}
