/**
 * Mount a snapshot for a container in a remapped user namespace: the image's layers appear with
 * their ownership shifted into the container's host id range, without copying them.
 *
 * overlayfs refuses an idmapping on the overlay mount itself, but (since Linux 5.19) takes
 * idmapped mounts as its lower layers. So each lower directory gets an idmapped bind mount
 * (berth-idmap, native/idmap) under a scratch directory, the overlay is mounted over those, and
 * the idmapped mounts are detached again right away (overlayfs keeps private clones of its
 * layers). The upper directory cannot be idmapped (overlayfs then mounts read-only): it holds
 * the container's host ids, like Docker's remapped layers do, and its top directory is handed to
 * the remapped root so `/` belongs to the container's root.
 */
import { nativeBinary } from '../common/native-binary.js';
import { execFile } from 'node:child_process';
import { chown, mkdir, readdir, rmdir, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { errnoCode, internal, invalidArgument, unavailable } from '../common/errors.js';
import type { IdMapping } from '../oci/runtime-spec.js';
import { mountAll, unmount } from './mount.js';
import type { Mount } from './snapshotter.js';

const HELPER_TIMEOUT_MS = 30_000;

export interface IdmapOptions {
  uids: readonly IdMapping[];
  gids: readonly IdMapping[];
  /** An empty directory (created and removed here) for the idmapped lower mounts. */
  scratch: string;
  /** The berth-idmap program; default idmapBinaryPath(). */
  helper?: string;
}

/** The idmapped bind mounts to make and the mounts to perform over them. */
export interface IdmappedPlan {
  /** [host directory, mount point] pairs for berth-idmap. */
  idmapped: Array<[string, string]>;
  mounts: Mount[];
  /** Writable directories whose top directory the remapped root must own. */
  owned: string[];
}

/** $BERTH_IDMAP, else native/build/berth-idmap of the checkout this code runs from. */
export function idmapBinaryPath(): string | undefined {
  return nativeBinary('berth-idmap', 'BERTH_IDMAP');
}

/** Mappings as berth-idmap takes them: `container:host:size[,...]`. */
export function mapArgument(mappings: readonly IdMapping[]): string {
  if (mappings.length === 0) throw invalidArgument('an idmapped mount needs at least one id mapping');
  return mappings.map((m) => `${m.containerID}:${m.hostID}:${m.size}`).join(',');
}

/** Rewrite a snapshot's mounts so that every read-only layer is reached through an idmapped mount. */
export function planIdmappedMounts(mounts: readonly Mount[], scratch: string, target: string): IdmappedPlan {
  const plan: IdmappedPlan = { idmapped: [], mounts: [], owned: [] };
  const layer = (source: string): string => {
    const point = join(scratch, String(plan.idmapped.length));
    plan.idmapped.push([source, point]);
    return point;
  };
  for (const mount of mounts) {
    if (mount.type === 'overlay') {
      const options = mount.options.map((option) => {
        if (option.startsWith('lowerdir='))
          return `lowerdir=${option.slice('lowerdir='.length).split(':').map(layer).join(':')}`;
        if (option.startsWith('upperdir=')) plan.owned.push(option.slice('upperdir='.length));
        return option;
      });
      plan.mounts.push({ ...mount, options });
    } else if (mount.type === 'bind' && mount.options.includes('ro')) {
      // A single read-only layer: its idmapped mount goes straight onto the target.
      plan.idmapped.push([mount.source, target]);
    } else if (mount.type === 'bind') {
      plan.owned.push(mount.source);
      plan.mounts.push(mount);
    } else {
      throw invalidArgument(`cannot idmap a ${mount.type} snapshot mount`);
    }
  }
  return plan;
}

function run(program: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(program, args, { timeout: HELPER_TIMEOUT_MS }, (error, _stdout, stderr) => {
      if (error === null) resolve();
      else reject(internal(`idmapped mount failed: ${String(stderr).trim() || error.message}`, error));
    });
  });
}

/** Detach what may be mounted on the scratch entries and remove them; rmdir never deletes layer content. */
async function clearScratch(scratch: string): Promise<void> {
  const entries = await readdir(scratch).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  });
  if (entries === undefined) return;
  for (const entry of entries) {
    await run('umount', ['--lazy', '--', join(scratch, entry)]).catch(() => undefined);
    await rmdir(join(scratch, entry));
  }
  await rmdir(scratch);
}

/** Hand a writable layer's top directory, still the host root's, to the container's root. */
export async function ownTop(path: string, uid: number, gid: number): Promise<void> {
  const info = await stat(path);
  if (info.uid === 0 && info.gid === 0) await chown(path, uid, gid);
}

/** Mount a snapshot's `mounts` on `target` with its layers idmapped by `options.uids`/`gids`. */
export async function mountIdmapped(
  mounts: readonly Mount[],
  target: string,
  options: IdmapOptions,
): Promise<void> {
  if (!isAbsolute(target) || !isAbsolute(options.scratch))
    throw invalidArgument('idmapped mounts need absolute target and scratch paths');
  const helper = options.helper ?? idmapBinaryPath();
  if (helper === undefined)
    throw unavailable('user namespace remapping needs berth-idmap (native/idmap), which is not built');
  const rootUid = options.uids.find((m) => m.containerID === 0)?.hostID;
  const rootGid = options.gids.find((m) => m.containerID === 0)?.hostID;
  if (rootUid === undefined || rootGid === undefined)
    throw invalidArgument('idmapped mounts need a mapping for container id 0');
  const plan = planIdmappedMounts(mounts, options.scratch, target);
  for (const dir of plan.owned) await ownTop(dir, rootUid, rootGid);
  // A crash between the steps below can leave the scratch directory behind.
  await clearScratch(options.scratch);
  const points = plan.idmapped.map(([, point]) => point).filter((point) => point !== target);
  if (points.length > 0) await mkdir(options.scratch, { recursive: true, mode: 0o700 });
  for (const point of points) await mkdir(point);
  try {
    if (plan.idmapped.length > 0)
      await run(helper, [mapArgument(options.uids), mapArgument(options.gids), ...plan.idmapped.flat()]);
    if (plan.mounts.length > 0) {
      try {
        await mountAll(plan.mounts, target);
      } catch (err) {
        if (plan.idmapped.some(([, point]) => point === target)) await unmount(target).catch(() => undefined);
        throw err;
      }
    }
  } finally {
    await clearScratch(options.scratch);
  }
}
