/**
 * Unpack an image layer into a committed snapshot named by its chain ID, reusing the snapshot
 * when that chain was unpacked before: chainID(1) = diffID(1),
 * chainID(n) = sha256(chainID(n-1) + " " + diffID(n)) (OCI image spec, config.md).
 */
import { createHash, randomBytes } from 'node:crypto';
import { applyTar, type ApplyOptions, type LayerFile } from '../archive/apply.js';
import { BerthError, invalidArgument } from '../common/errors.js';
import type { Snapshotter } from './snapshotter.js';

export function chainId(parentChainId: string | undefined, diffId: string): string {
  if (parentChainId === undefined) return diffId;
  return `sha256:${createHash('sha256').update(`${parentChainId} ${diffId}`).digest('hex')}`;
}

export interface ApplyLayerOptions extends Omit<ApplyOptions, 'mode' | 'lowers'> {
  /** The layer's diff ID from the image config: lets an unpacked chain be reused unread, and is verified. */
  diffId?: string;
}

export interface AppliedLayer {
  chainId: string;
  diffId: string;
  /** True when the snapshot existed already and the layer was not unpacked again. */
  reused: boolean;
  /** Uncompressed size of the layer, when it was read (not when the snapshot was reused unread). */
  size?: number;
}

async function exists(snapshotter: Snapshotter, name: string): Promise<boolean> {
  try {
    return (await snapshotter.stat(name)).kind === 'committed';
  } catch (err) {
    if (err instanceof BerthError && err.kind === 'not-found') return false;
    throw err;
  }
}

/** Stop reading a layer stream we do not need (a Node.js stream is destroyed). */
function discard(layer: AsyncIterable<Uint8Array> | LayerFile): void {
  const stream = layer as { destroy?: () => void };
  if (typeof stream.destroy === 'function') stream.destroy();
}

/**
 * Apply `layer` on top of the committed snapshot `parentChainId` (none for a base layer): in
 * overlay mode into the new upper directory for overlayfs, in flat mode for the copy driver.
 */
export async function applyLayer(
  snapshotter: Snapshotter,
  layer: AsyncIterable<Uint8Array> | LayerFile,
  parentChainId: string | undefined,
  options: ApplyLayerOptions = {},
): Promise<AppliedLayer> {
  if (options.diffId !== undefined) {
    const known = chainId(parentChainId, options.diffId);
    if (await exists(snapshotter, known)) {
      discard(layer);
      return { chainId: known, diffId: options.diffId, reused: true };
    }
  }
  const key = `extract-${randomBytes(8).toString('hex')}`;
  await snapshotter.prepare(key, parentChainId);
  try {
    const target = await snapshotter.layerTarget(key);
    const { diffId: expected, ...applyOptions } = options;
    const result = await applyTar(layer, target.root, {
      ...applyOptions,
      mode: target.mode,
      lowers: target.lowers,
    });
    if (expected !== undefined && result.diffId !== expected)
      throw invalidArgument(
        `layer content has diff ID ${result.diffId}, but the image config says ${expected}`,
      );
    const name = chainId(parentChainId, result.diffId);
    if (await exists(snapshotter, name)) {
      await snapshotter.remove(key);
      return { chainId: name, diffId: result.diffId, reused: true, size: result.size };
    }
    await snapshotter.commit(name, key);
    return { chainId: name, diffId: result.diffId, reused: false, size: result.size };
  } catch (err) {
    await snapshotter.remove(key).catch(() => undefined);
    // Another apply of the same chain committed first: use its snapshot.
    if (err instanceof BerthError && err.kind === 'conflict' && options.diffId !== undefined) {
      const name = chainId(parentChainId, options.diffId);
      if (await exists(snapshotter, name)) return { chainId: name, diffId: options.diffId, reused: true };
    }
    throw err;
  }
}
