/**
 * Dropping layer snapshots no image uses: committed snapshots named by a chain ID that is not in
 * use and is not an ancestor of a snapshot that stays (a container's writable layer, a view,
 * or a snapshot that is not an image layer). Children go before their parents.
 */
import { BerthError } from '../../common/errors.js';
import type { SnapshotInfo, Snapshotter } from '../../snapshot/snapshotter.js';

const CHAIN_ID = /^sha256:[0-9a-f]{64}$/;

/**
 * `among` limits the removal to those chain IDs (a removed image's layers): a layer another
 * operation committed and has not recorded yet is then never looked at, and a candidate such a
 * layer is built on stays (its removal is refused while it has children).
 */
export async function removeUnusedSnapshots(
  snapshotter: Snapshotter,
  inUse: Set<string>,
  among?: Set<string>,
): Promise<string[]> {
  const all: SnapshotInfo[] = [];
  await snapshotter.walk((info) => {
    all.push(info);
  });
  const byName = new Map(all.map((info) => [info.name, info]));
  const keep = new Set<string>();
  const hold = (name: string | undefined): void => {
    // Bounded by the number of snapshots, even if records were to form a cycle.
    for (let steps = 0; name !== undefined && !keep.has(name) && steps <= all.length; steps++) {
      keep.add(name);
      name = byName.get(name)?.parent;
    }
  };
  for (const name of inUse) if (byName.has(name)) hold(name);
  for (const info of all) if (info.kind !== 'committed' || !CHAIN_ID.test(info.name)) hold(info.name);

  const depth = (info: SnapshotInfo): number => {
    let n = 0;
    for (let parent = info.parent; parent !== undefined && n <= all.length; n++)
      parent = byName.get(parent)?.parent;
    return n;
  };
  const removable = all
    .filter((info) => !keep.has(info.name) && (among === undefined || among.has(info.name)))
    .sort((a, b) => depth(b) - depth(a));
  const removed: string[] = [];
  for (const info of removable) {
    try {
      await snapshotter.remove(info.name);
      removed.push(info.name);
    } catch (err) {
      if (among === undefined || !(err instanceof BerthError && err.kind === 'conflict')) throw err;
    }
  }
  return removed;
}
