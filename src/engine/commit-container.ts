/**
 * `docker commit`: a new image from a container's image plus one layer, the container's changes
 * (its overlay upper directory, whiteouts included), with the container's config, a config from
 * the request, and Dockerfile `changes` applied, as moby's CreateImageFromContainer does. The
 * container is paused while its changes are read unless the request says otherwise.
 */
import { invalidArgument } from '../common/errors.js';
import { diffOverlayUpper } from '../archive/diff.js';
import { cleanEntryPath } from '../archive/tree-view.js';
import { commitImage } from '../image/commit.js';
import { parseReference } from '../image/reference.js';
import { applyChanges } from '../image/store/changes.js';
import type { ContainerConfig as ImageContainerConfig } from '../oci/image-spec.js';
import { mergeImageConfig } from './container-config.js';
import { mountPoints, rewriteTar, toEntry } from './container-fs.js';
import { isLive, type ContainerRecord } from './container-record.js';
import type { ContainerConfig } from './docker-types.js';
import type { Engine } from './engine.js';
import type { IdMap } from './userns.js';
import { idShift, shiftEntry } from '../snapshot/shift-ids.js';

export interface CommitContainerRequest {
  container: string;
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  /** Pause a running container while its changes are read (Docker's default: true). */
  pause: boolean;
  /** Dockerfile instructions (CMD, ENV, ...) applied to the config. */
  changes: string[];
  /** The request body: a config that takes precedence over the container's. */
  config?: ContainerConfig;
}

const nonEmpty = <T>(list: T[] | null | undefined): list is T[] =>
  list !== undefined && list !== null && list.length > 0;

/** The image-spec part of a container config; `Entrypoint: [""]` (none) becomes null. */
export function imageConfigOf(config: ContainerConfig): ImageContainerConfig {
  const noEntrypoint = config.Entrypoint?.length === 1 && config.Entrypoint[0] === '';
  const result: ImageContainerConfig = {};
  if (config.User) result.User = config.User;
  if (config.ExposedPorts && Object.keys(config.ExposedPorts).length > 0)
    result.ExposedPorts = config.ExposedPorts;
  if (nonEmpty(config.Env)) result.Env = [...config.Env];
  if (nonEmpty(config.Entrypoint) && !noEntrypoint) result.Entrypoint = [...config.Entrypoint];
  if (nonEmpty(config.Cmd)) result.Cmd = [...config.Cmd];
  if (config.Volumes && Object.keys(config.Volumes).length > 0) result.Volumes = config.Volumes;
  if (config.WorkingDir) result.WorkingDir = config.WorkingDir;
  if (config.Labels && Object.keys(config.Labels).length > 0) result.Labels = { ...config.Labels };
  if (config.StopSignal) result.StopSignal = config.StopSignal;
  if (config.Healthcheck) {
    const { Test, ...timings } = config.Healthcheck;
    result.Healthcheck = { ...timings, ...(Test ? { Test } : {}) };
  }
  if (nonEmpty(config.OnBuild)) result.OnBuild = [...config.OnBuild];
  if (nonEmpty(config.Shell)) result.Shell = [...config.Shell];
  return result;
}

/** The new image's config: the request's (or the container's) with the changes, completed from the container's. */
export function commitConfig(
  container: ContainerConfig,
  requested: ContainerConfig | undefined,
  changes: string[],
): ImageContainerConfig {
  const base = requested && Object.keys(requested).length > 0 ? requested : container;
  const changed = applyChanges(imageConfigOf(base), changes);
  return imageConfigOf(mergeImageConfig(changed as ContainerConfig, imageConfigOf(container)));
}

function referenceOf(repo: string | undefined, tag: string | undefined): string | undefined {
  if (repo === undefined || repo === '') {
    if (tag) throw invalidArgument('tag is specified without a repository');
    return undefined;
  }
  const reference = `${repo}:${tag || 'latest'}`;
  parseReference(reference);
  return reference;
}

/**
 * The container's layer without the mount points the engine created in it (Docker keeps those in
 * an init layer). A remapped container's upper directory holds host ids: the layer gets the
 * container's (ids outside its range as the overflow id, as the container sees them).
 */
function containerLayer(
  upper: string,
  record: ContainerRecord,
  map: IdMap | undefined,
): AsyncGenerator<Buffer> {
  const skip = mountPoints(record);
  const diff = diffOverlayUpper(
    upper,
    map ? { mapEntry: shiftEntry(idShift(map, 'to-container'), 'overflow') } : {},
  );
  return rewriteTar(diff, async (header) =>
    skip.has(`/${cleanEntryPath(header.path).join('/')}`) ? undefined : toEntry(header),
  );
}

/** The tar stream, or undefined when it holds no entry (its first bytes are the end-of-archive blocks). */
async function unlessEmpty(tar: AsyncGenerator<Buffer>): Promise<AsyncIterable<Buffer> | undefined> {
  const first = await tar.next();
  if (first.done === true || first.value.every((byte) => byte === 0)) return undefined;
  const head = first.value;
  return (async function* () {
    yield head;
    yield* tar;
  })();
}

export async function commitContainer(
  engine: Engine,
  request: CommitContainerRequest,
): Promise<{ Id: string }> {
  const record = engine.containers.get(request.container);
  const reference = referenceOf(request.repo, request.tag);
  const config = commitConfig(record.config, request.config, request.changes);
  const { images, runtime, snapshotter, events } = engine.services;
  const target = await snapshotter.layerTarget(record.snapshotKey);
  if (target.mode !== 'overlay')
    throw invalidArgument(`commit needs the overlayfs snapshotter; this daemon uses ${snapshotter.driver}`);

  const thaw = request.pause && isLive(record.state) && !record.state.Paused;
  if (thaw) await runtime.pause(record.id);
  const tar = containerLayer(target.root, record, engine.idMapOf(record));
  let result;
  try {
    const layer = await unlessEmpty(tar);
    result = await commitImage(images, {
      parent: record.image,
      ...(layer ? { layer } : {}),
      config,
      history: {
        created_by: (record.config.Cmd ?? []).join(' '),
        ...(request.comment ? { comment: request.comment } : {}),
        ...(request.author ? { author: request.author } : {}),
      },
      ...(request.author ? { author: request.author } : {}),
      ...(request.comment ? { comment: request.comment } : {}),
      references: reference ? [reference] : [],
      snapshotter,
    });
  } finally {
    // Ends the diff (and its helper process) also when the layer was not read to its end.
    await tar.return(undefined);
    if (thaw && !record.state.Paused) await runtime.resume(record.id).catch(() => undefined);
  }
  events.publish({
    Type: 'container',
    Action: 'commit',
    Actor: {
      ID: record.id,
      Attributes: {
        ...(record.config.Labels ?? {}),
        comment: request.comment ?? '',
        imageID: result.id,
        imageRef: reference ?? '',
        name: record.name,
      },
    },
  });
  return { Id: result.id };
}
