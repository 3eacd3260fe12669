/**
 * The shifted copies of image layers for one id range (docs/userns.md), shared by every
 * remapped container of that range.
 *
 * Layout, in the per-range root: `layers/<name>/` is the shifted copy of the layer directory
 * an overlay mount names `.../<name>` (the overlay snapshotter's short link, so deep chains
 * still fit the kernel's limit on mount options), and `layers/<name>.json` records the layer
 * (chain ID and source directory). A copy is made under `layers/.tmp-*` and renamed into place
 * when complete, so `layers/<name>/` always is a whole copy; leftovers of a crash are removed by
 * the next sweep. Copies and sweeps run one at a time.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { writeJsonAtomic } from '../common/atomic-file.js';
import { errnoCode, internal } from '../common/errors.js';
import { shiftedCopy } from './shift-copy.js';
import { idShift, type IdMaps } from './shift-ids.js';

/** A layer directory to shift, and the chain ID of the committed snapshot it is. */
export interface LayerSource {
  chainId: string;
  dir: string;
}

interface CopyRecord {
  chainId: string;
  source: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const TEMP_PREFIX = '.tmp-';

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
    throw err;
  }
}

export class ShiftCache {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly maps: IdMaps,
  ) {}

  /** The copies under `<rangeRoot>/layers` for the range `maps`. */
  static async open(rangeRoot: string, maps: IdMaps): Promise<ShiftCache> {
    const dir = join(rangeRoot, 'layers');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return new ShiftCache(dir, maps);
  }

  private serialize<T>(action: () => Promise<T>): Promise<T> {
    const result = this.queue.then(action, action);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async readRecord(name: string): Promise<CopyRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, `${name}.json`), 'utf8')) as CopyRecord;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || err instanceof SyntaxError) return undefined;
      throw err;
    }
  }

  private async drop(name: string): Promise<void> {
    await rm(join(this.dir, name), { recursive: true, force: true });
    await rm(join(this.dir, `${name}.json`), { force: true });
  }

  private async ensure(layer: LayerSource): Promise<string> {
    const name = basename(layer.dir);
    if (!NAME.test(name))
      throw internal(`cannot name a shifted copy of ${layer.dir}: its base name is not a short layer link`);
    const copy = join(this.dir, name);
    const record = await this.readRecord(name);
    if (record?.chainId === layer.chainId && record.source === layer.dir && (await exists(copy))) return copy;
    await this.drop(name);
    const temp = join(this.dir, `${TEMP_PREFIX}${name}-${randomBytes(4).toString('hex')}`);
    try {
      await shiftedCopy(layer.dir, temp, idShift(this.maps, 'to-host'));
      await writeJsonAtomic(join(this.dir, `${name}.json`), { chainId: layer.chainId, source: layer.dir });
      await rename(temp, copy);
    } catch (err) {
      await rm(temp, { recursive: true, force: true });
      throw err;
    }
    return copy;
  }

  /** The shifted copy of each layer, in order; missing ones are made first. */
  acquire(layers: readonly LayerSource[]): Promise<string[]> {
    return this.serialize(async () => {
      const copies: string[] = [];
      for (const layer of layers) copies.push(await this.ensure(layer));
      return copies;
    });
  }

  /**
   * Remove the copies of layers not in `keep` (chain IDs) or whose source directory is gone,
   * and whatever a crash left half made. Returns the chain IDs whose copies were removed.
   */
  sweep(keep: ReadonlySet<string>): Promise<string[]> {
    return this.serialize(async () => {
      const removed: string[] = [];
      const entries = await readdir(this.dir);
      const names = new Set(entries.filter((entry) => !entry.endsWith('.json')));
      for (const entry of entries) {
        if (!entry.endsWith('.json')) continue;
        const name = entry.slice(0, -'.json'.length);
        const record = await this.readRecord(name);
        if (
          record !== undefined &&
          names.has(name) &&
          keep.has(record.chainId) &&
          (await exists(record.source))
        ) {
          names.delete(name);
          continue;
        }
        await this.drop(name);
        names.delete(name);
        if (record !== undefined) removed.push(record.chainId);
      }
      // Copies without a record, and temporary ones.
      for (const name of names) await rm(join(this.dir, name), { recursive: true, force: true });
      return removed;
    });
  }
}
