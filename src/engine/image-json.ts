/**
 * `GET /images/json` and `GET /images/{name}/json` as dockerd shapes them: the list's filters
 * (dangling, label, reference, before, since, until), fields that older API versions still carry
 * and null where dockerd has a nil list or map.
 */
import { invalidArgument } from '../common/errors.js';
import type { Filters } from '../api/filters.js';
import { versionAtLeast } from '../api/versions.js';
import type { ImageDetails, ImageSummary } from '../image/store/image-store.js';
import type { DeleteItem } from '../image/store/removal.js';

export const IMAGE_LIST_FILTERS = ['dangling', 'label', 'reference', 'before', 'since', 'until'];

const unix = (iso: string | undefined): number => (iso ? Math.floor(Date.parse(iso) / 1000) : 0);

/** Go's path.Match as a regular expression: `*` and `?` stop at `/`, `[...]` is a class. */
function globRegExp(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] ?? '';
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw invalidArgument(`invalid reference filter: ${pattern}`);
      const body = pattern.slice(i + 1, end).replace(/^\^/, '!');
      source += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) source += `\\${pattern[++i] ?? ''}`;
    else source += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/** The repository part of `name:tag` (a registry port is not a tag). */
function repositoryOf(tagged: string): string {
  const colon = tagged.lastIndexOf(':');
  return colon > tagged.lastIndexOf('/') ? tagged.slice(0, colon) : tagged;
}

/**
 * Docker's reference.FamiliarMatch: the pattern against `name:tag` and, when the pattern names
 * no tag, against the repository alone.
 */
export function referenceMatches(pattern: string, tagged: string): boolean {
  const glob = globRegExp(pattern);
  return glob.test(tagged) || glob.test(repositoryOf(tagged));
}

/** What the list filters compare with: the creation time of the `before`/`since` images. */
export interface ImageListBounds {
  before?: number;
  since?: number;
  /** `until`: a Unix time in seconds. */
  until?: number;
}

/** Docker's `until` values: Unix seconds (with a fraction), RFC 3339 times or Go durations back from now. */
export function parseTimestamp(value: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const duration = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/.exec(value);
  if (duration) {
    const scale: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
    return now / 1000 - Number(duration[1]) * (scale[duration[2] ?? 's'] ?? 1);
  }
  const time = Date.parse(value);
  if (Number.isNaN(time)) throw invalidArgument(`failed to parse value as time or duration: "${value}"`);
  return time / 1000;
}

/** The image as the list shows it under `filters`, or undefined when the filters leave it out. */
export function filterImage(
  image: ImageSummary,
  filters: Filters,
  bounds: ImageListBounds,
): ImageSummary | undefined {
  const dangling = image.repoTags.length === 0;
  if (filters.contains('dangling') && filters.boolOrDefault('dangling', false) !== dangling) return undefined;
  if (!filters.matchKVList('label', image.labels)) return undefined;
  const created = unix(image.created);
  if (bounds.before !== undefined && created >= bounds.before) return undefined;
  if (bounds.since !== undefined && created <= bounds.since) return undefined;
  if (bounds.until !== undefined && created > bounds.until) return undefined;
  const patterns = filters.get('reference');
  if (patterns.length === 0) return image;
  // Like dockerd, only the names that match stay in the answer.
  const matches = (name: string): boolean =>
    patterns.some((pattern) => referenceMatches(pattern, name.replace(/@sha256:[0-9a-f]+$/, '')));
  const repoTags = image.repoTags.filter(matches);
  const repoDigests = image.repoDigests.filter(matches);
  if (repoTags.length === 0 && repoDigests.length === 0) return undefined;
  return { ...image, repoTags, repoDigests };
}

/** One entry of `GET /images/json`. */
export function imageSummaryJson(image: ImageSummary, apiVersion: string): object {
  const size = image.unpackedSize ?? image.size;
  return {
    Id: image.id,
    ParentId: '',
    RepoTags: image.repoTags.length > 0 ? image.repoTags : null,
    RepoDigests: image.repoDigests.length > 0 ? image.repoDigests : null,
    Created: unix(image.created),
    Size: size,
    SharedSize: -1,
    // Removed in API 1.44.
    ...(versionAtLeast(apiVersion, '1.44') ? {} : { VirtualSize: size }),
    Labels: Object.keys(image.labels).length > 0 ? image.labels : null,
    Containers: -1,
  };
}

/** The fields of a container Config that dockerd shows, zero-valued, in an image's Config. */
const CONFIG_ZERO = {
  Hostname: '',
  Domainname: '',
  User: '',
  AttachStdin: false,
  AttachStdout: false,
  AttachStderr: false,
  Tty: false,
  OpenStdin: false,
  StdinOnce: false,
  Env: null,
  Cmd: null,
  Image: '',
  Volumes: null,
  WorkingDir: '',
  Entrypoint: null,
  OnBuild: null,
  Labels: null,
};

/** `GET /images/{name}/json`. */
export function imageInspectJson(image: ImageDetails, apiVersion: string): object {
  const size = image.unpackedSize ?? image.size;
  // Docker 28 (API 1.50) still fills the empty fields; Docker 29 dropped them.
  const config = { ...CONFIG_ZERO, ...(image.imageConfig.config ?? {}) };
  return {
    Id: image.id,
    RepoTags: image.repoTags,
    RepoDigests: image.repoDigests,
    Parent: '',
    Comment: image.comment ?? '',
    Created: image.created ?? '',
    // Removed in API 1.45.
    ...(versionAtLeast(apiVersion, '1.45') ? {} : { Container: '', ContainerConfig: { ...CONFIG_ZERO } }),
    DockerVersion: '',
    Author: image.author ?? '',
    Config: config,
    Architecture: image.architecture,
    ...(image.variant ? { Variant: image.variant } : {}),
    Os: image.os,
    Size: size,
    ...(versionAtLeast(apiVersion, '1.44') ? {} : { VirtualSize: size }),
    GraphDriver: { Name: 'overlayfs', Data: null },
    RootFS: { Type: 'layers', Layers: image.diffIds },
    Metadata: { LastTagTime: image.lastTagged ?? '0001-01-01T00:00:00Z' },
  };
}

/** An entry of `DELETE /images/{name}` and of image prune's ImagesDeleted: Docker's capitalised keys. */
export function deleteItemJson(item: DeleteItem): { Untagged: string } | { Deleted: string } {
  return 'untagged' in item ? { Untagged: item.untagged } : { Deleted: item.deleted };
}
