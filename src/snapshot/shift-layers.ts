/**
 * How a remapped container's image layers get the container's host ids (docs/userns.md):
 * idmapped lower layers (idmap.ts) where the kernel and the filesystem allow them, else shifted
 * copies of the layers, one per layer and id range (shift-cache.ts). Which one is decided once,
 * when berthd starts, by mounting a small overlay over an idmapped directory on the data root's
 * filesystem; `idmap: 'off'` skips the probe and uses copies.
 */
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, internal, invalidArgument } from '../common/errors.js';
import { mountIdmapped, ownTop } from './idmap.js';
import { isMountPoint, mountAll, unmount } from './mount.js';
import { OVERLAY_OPTIONS } from './overlay.js';
import { ShiftCache, type LayerSource } from './shift-cache.js';
import { toHostId, type IdMaps } from './shift-ids.js';
import type { Mount, Snapshotter } from './snapshotter.js';

export type LayerStrategy = 'idmap' | 'shift';

export interface RemappedLayersOptions {
  maps: IdMaps;
  snapshotter: Snapshotter;
  /** The per-range root: shifted copies go to `<root>/layers`, the probe runs in `<root>`. */
  root: string;
  /** Where idmapped mounts are made for a moment: `<scratch>/<name>`. */
  scratch: string;
  /** `off`: shifted copies without probing (BERTH_USERNS_IDMAP=off); `auto` (default): probe. */
  idmap?: 'auto' | 'off';
  /** The berth-idmap program (default: idmap.ts finds it). */
  helper?: string;
}

/** Deepest chain of layers followed (Docker's limit is 125; this only bounds the walk). */
const MAX_LAYERS = 4096;

/** The committed snapshots below the active snapshot `key`, nearest first (its mounts' lowerdir order). */
export async function snapshotChain(snapshotter: Snapshotter, key: string): Promise<string[]> {
  const chain: string[] = [];
  for (let parent = (await snapshotter.stat(key)).parent; parent !== undefined;) {
    if (chain.length >= MAX_LAYERS) throw internal(`snapshot ${key} has more than ${MAX_LAYERS} layers`);
    chain.push(parent);
    parent = (await snapshotter.stat(parent)).parent;
  }
  return chain;
}

/** The lower directories of a writable snapshot's mounts, topmost first. */
export function lowerDirsOf(mounts: readonly Mount[]): string[] {
  return mounts.flatMap((mount) =>
    mount.type === 'overlay'
      ? mount.options
          .filter((option) => option.startsWith('lowerdir='))
          .flatMap((option) => option.slice('lowerdir='.length).split(':'))
      : [],
  );
}

/**
 * A writable snapshot's mounts with its lower directories replaced by `copies` (in the same
 * order), and the writable directories whose top the container's root must own.
 */
export function planShiftedMounts(
  mounts: readonly Mount[],
  copies: readonly string[],
): { mounts: Mount[]; owned: string[] } {
  const owned: string[] = [];
  let next = 0;
  const planned = mounts.map((mount) => {
    if (mount.type === 'bind' && !mount.options.includes('ro')) {
      owned.push(mount.source);
      return mount;
    }
    if (mount.type !== 'overlay')
      throw invalidArgument(`cannot mount a ${mount.type} snapshot mount on shifted layers`);
    const options = mount.options.map((option) => {
      if (option.startsWith('upperdir=')) owned.push(option.slice('upperdir='.length));
      if (!option.startsWith('lowerdir=')) return option;
      const count = option.slice('lowerdir='.length).split(':').length;
      const replaced = copies.slice(next, next + count);
      next += count;
      return `lowerdir=${replaced.join(':')}`;
    });
    return { ...mount, options };
  });
  if (next !== copies.length)
    throw internal(`the snapshot has ${next} lower layers, ${copies.length} shifted copies were given`);
  return { mounts: planned, owned };
}

/**
 * Whether overlayfs takes an idmapped lower layer on the filesystem of `root` here: a one-file
 * overlay over an idmapped directory must show the file owned by the range. Throws why not.
 */
async function probeIdmappedLayers(options: RemappedLayersOptions): Promise<void> {
  const dir = join(options.root, '.idmap-probe');
  const lower = join(dir, 'lower');
  const upper = join(dir, 'upper');
  const work = join(dir, 'work');
  const merged = join(dir, 'merged');
  const rootUid = toHostId(options.maps.uids, 0);
  // What a berthd killed during the probe left.
  if (await isMountPoint(merged)) await unmount(merged);
  await rm(dir, { recursive: true, force: true });
  try {
    for (const path of [lower, upper, work, merged]) await mkdir(path, { recursive: true });
    await writeFile(join(lower, 'probe'), '');
    await mountIdmapped(
      [
        {
          type: 'overlay',
          source: 'overlay',
          options: [...OVERLAY_OPTIONS, `lowerdir=${lower}`, `upperdir=${upper}`, `workdir=${work}`],
        },
      ],
      merged,
      {
        ...options.maps,
        scratch: join(options.scratch, 'probe'),
        ...(options.helper !== undefined ? { helper: options.helper } : {}),
      },
    );
    try {
      const owner = (await stat(join(merged, 'probe'))).uid;
      if (owner !== rootUid)
        throw internal(`an idmapped lower layer showed uid ${owner} where ${rootUid} was expected`);
    } finally {
      await unmount(merged);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Mounts remapped containers' snapshots with their layers in the container's host id range. */
export class RemappedLayers {
  private constructor(
    private readonly options: RemappedLayersOptions,
    readonly strategy: LayerStrategy,
    /** Why idmapped mounts are not used, with the shift strategy. */
    readonly reason: string | undefined,
    private readonly cache: ShiftCache | undefined,
  ) {}

  /** Decide the strategy (probing unless told `idmap: 'off'`). */
  static async open(options: RemappedLayersOptions): Promise<RemappedLayers> {
    let reason: string | undefined;
    if (options.idmap === 'off') reason = 'idmapped layers are switched off (BERTH_USERNS_IDMAP=off)';
    else
      reason = await probeIdmappedLayers(options).then(
        () => undefined,
        (err: unknown) => describeError(err),
      );
    if (reason === undefined) return new RemappedLayers(options, 'idmap', undefined, undefined);
    return new RemappedLayers(options, 'shift', reason, await ShiftCache.open(options.root, options.maps));
  }

  /** Mount the active snapshot `key` on `target`; `name` (unique among concurrent mounts) names its scratch directory. */
  async mount(key: string, target: string, name: string): Promise<void> {
    const { snapshotter, maps } = this.options;
    const mounts = await snapshotter.mounts(key);
    if (this.cache === undefined) {
      await mountIdmapped(mounts, target, {
        ...maps,
        scratch: join(this.options.scratch, name),
        ...(this.options.helper !== undefined ? { helper: this.options.helper } : {}),
      });
      return;
    }
    const lowers = lowerDirsOf(mounts);
    const chain = await snapshotChain(snapshotter, key);
    if (chain.length !== lowers.length)
      throw internal(`snapshot ${key} has ${chain.length} layers but its mounts name ${lowers.length}`);
    const layers: LayerSource[] = lowers.map((dir, i) => ({ dir, chainId: chain[i] as string }));
    const plan = planShiftedMounts(mounts, await this.cache.acquire(layers));
    const rootUid = toHostId(maps.uids, 0);
    const rootGid = toHostId(maps.gids, 0);
    if (rootUid === undefined || rootGid === undefined)
      throw invalidArgument('remapped layers need a mapping for container id 0');
    for (const dir of plan.owned) await ownTop(dir, rootUid, rootGid);
    await mountAll(plan.mounts, target);
  }

  /**
   * Remove the shifted copies of layers not in `keep` (chain IDs of the layers images and
   * containers still use); nothing to do with idmapped layers. Returns the chain IDs removed.
   */
  async sweep(keep: ReadonlySet<string>): Promise<string[]> {
    return this.cache === undefined ? [] : this.cache.sweep(keep);
  }
}
