/**
 * What both snapshot drivers share: the records and their life cycle.
 *
 * Layout: <root>/snapshots/<id>/info.json (the record, written atomically), <id>/fs (the
 * snapshot's tree: the overlay upper directory, or a full copy), <id>/work (overlayfs's work
 * directory). A snapshot exists exactly when its info.json does: prepare writes it last, remove
 * deletes it first, so a crash leaves at most a directory without a record, which the next
 * open() deletes. Only committed records are fsynced (see save()). Records are kept in memory;
 * one process owns a root at a time.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic, syncDir } from '../common/atomic-file.js';
import { conflict, errnoCode, invalidArgument, notFound } from '../common/errors.js';
import { diskUsage } from './usage.js';
import { spreadSubdirectories } from '../linux/spread-dirs.js';
import type {
  LayerTarget,
  Mount,
  SnapshotDriverName,
  SnapshotInfo,
  SnapshotKind,
  Snapshotter,
  Usage,
} from './snapshotter.js';

export interface SnapshotRecord {
  id: string;
  /** Key (active, view) or name (committed). */
  name: string;
  kind: SnapshotKind;
  driver: SnapshotDriverName;
  /** Id of the committed parent. */
  parent?: string;
  created: string;
  updated: string;
  /** Overlay driver, committed snapshots: the short link name under snapshots/l/. */
  link?: string;
}

const RECORD = 'info.json';
const ID_PATTERN = /^[0-9a-f]{16}$/;

const unescape = (text: string): string =>
  text.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));

/**
 * Mounts that use the snapshot directory `dir`, from /proc/self/mountinfo: mount points below
 * it, bind mounts of a tree below it (their root field, when it lies on the same filesystem as
 * the path names it), and overlays with their upper directory in it.
 */
async function mountsUsing(dir: string): Promise<string[]> {
  const under = (path: string): boolean => path === dir || path.startsWith(dir + '/');
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const root = unescape(fields[3] ?? '');
    const point = unescape(fields[4] ?? '');
    const superOptions = unescape(fields[fields.indexOf('-') + 3] ?? '');
    const upper = superOptions
      .split(',')
      .find((option) => option.startsWith('upperdir='))
      ?.slice('upperdir='.length);
    if (under(point) || under(root) || (upper !== undefined && under(upper))) found.push(point);
  }
  return found;
}

export abstract class BaseSnapshotter implements Snapshotter {
  abstract readonly driver: SnapshotDriverName;
  protected readonly snapshotsDir: string;
  private readonly byName = new Map<string, SnapshotRecord>();
  private readonly byId = new Map<string, SnapshotRecord>();
  private queue: Promise<unknown> = Promise.resolve();

  protected constructor(readonly root: string) {
    if (/[,:]/.test(root))
      throw invalidArgument(
        `snapshot root ${JSON.stringify(root)} must not contain ',' or ':' (overlay options)`,
      );
    this.snapshotsDir = join(root, 'snapshots');
  }

  /** Load the records on disk, deleting what a crash left half made. */
  protected async load(): Promise<void> {
    await mkdir(this.snapshotsDir, { recursive: true });
    await spreadSubdirectories(this.snapshotsDir);
    for (const name of await readdir(this.snapshotsDir)) {
      if (!ID_PATTERN.test(name)) continue;
      let record: SnapshotRecord;
      try {
        record = JSON.parse(await readFile(join(this.snapshotsDir, name, RECORD), 'utf8')) as SnapshotRecord;
      } catch (err) {
        // A torn record can only be a non-durable one (see save()): as good as none.
        if (errnoCode(err) !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
        if ((await mountsUsing(join(this.snapshotsDir, name))).length === 0)
          await rm(join(this.snapshotsDir, name), { recursive: true, force: true });
        continue;
      }
      if (record.driver !== this.driver)
        throw invalidArgument(
          `${this.snapshotsDir} holds ${record.driver} snapshots; it cannot be opened with the ${this.driver} driver`,
        );
      this.byName.set(record.name, record);
      this.byId.set(record.id, record);
    }
  }

  /** Run mutations one at a time so two calls never claim the same name. */
  protected serialize<T>(action: () => Promise<T>): Promise<T> {
    const result = this.queue.then(action, action);
    this.queue = result.catch(() => undefined);
    return result;
  }

  protected dirOf(id: string): string {
    return join(this.snapshotsDir, id);
  }

  protected fsOf(id: string): string {
    return join(this.snapshotsDir, id, 'fs');
  }

  protected records(): SnapshotRecord[] {
    return [...this.byName.values()];
  }

  protected get(name: string): SnapshotRecord {
    const record = this.byName.get(name);
    if (record === undefined) throw notFound(`snapshot ${JSON.stringify(name)} does not exist`);
    return record;
  }

  /** The record's committed ancestors, nearest first. */
  protected ancestors(record: SnapshotRecord): SnapshotRecord[] {
    const chain: SnapshotRecord[] = [];
    for (let id = record.parent; id !== undefined;) {
      const parent = this.byId.get(id);
      if (parent === undefined) throw notFound(`snapshot ${record.name} has a missing parent (${id})`);
      chain.push(parent);
      id = parent.parent;
    }
    return chain;
  }

  private async save(record: SnapshotRecord): Promise<void> {
    // Committed snapshots (image layers) are durable. An active snapshot or view is scratch
    // space whose files are not synced either (Docker's overlay2 does not sync a container's
    // layer records): skipping two fsyncs is most of what prepare costs. After a power loss its
    // record may be gone or torn, and load() then treats it as never made.
    await writeJsonAtomic(join(this.dirOf(record.id), RECORD), record, {
      durable: record.kind === 'committed',
    });
    this.byName.set(record.name, record);
    this.byId.set(record.id, record);
  }

  private info(record: SnapshotRecord): SnapshotInfo {
    const parent = record.parent === undefined ? undefined : this.byId.get(record.parent)?.name;
    return {
      name: record.name,
      kind: record.kind,
      ...(parent === undefined ? {} : { parent }),
      created: record.created,
      updated: record.updated,
    };
  }

  /** Driver hook: fill a new snapshot's directory (fs exists and is empty). */
  protected abstract populate(record: SnapshotRecord, ancestors: SnapshotRecord[]): Promise<void>;
  /** Driver hook: the mounts of an active snapshot or view. */
  protected abstract mountsOf(record: SnapshotRecord, ancestors: SnapshotRecord[]): Mount[];
  /** Driver hook: prepare the record of a snapshot being committed. */
  protected abstract committing(record: SnapshotRecord): Promise<SnapshotRecord>;
  /** Driver hook: release what the driver keeps for a snapshot being removed. */
  protected abstract removing(record: SnapshotRecord): Promise<void>;
  abstract layerTarget(key: string): Promise<LayerTarget>;

  private create(kind: 'active' | 'view', key: string, parentName?: string): Promise<Mount[]> {
    return this.serialize(async () => {
      if (key === '') throw invalidArgument('snapshot key must not be empty');
      if (this.byName.has(key)) throw conflict(`snapshot ${JSON.stringify(key)} already exists`);
      let parent: SnapshotRecord | undefined;
      if (parentName !== undefined) {
        parent = this.get(parentName);
        if (parent.kind !== 'committed')
          throw invalidArgument(
            `parent snapshot ${JSON.stringify(parentName)} is ${parent.kind}, not committed`,
          );
      }
      const now = new Date().toISOString();
      const record: SnapshotRecord = {
        id: randomBytes(8).toString('hex'),
        name: key,
        kind,
        driver: this.driver,
        ...(parent === undefined ? {} : { parent: parent.id }),
        created: now,
        updated: now,
      };
      const ancestors = parent === undefined ? [] : [parent, ...this.ancestors(parent)];
      try {
        // Two directories: made in this thread, as the record is (see save()).
        mkdirSync(this.dirOf(record.id));
        mkdirSync(this.fsOf(record.id));
        await this.populate(record, ancestors);
        await this.save(record);
      } catch (err) {
        this.byName.delete(key);
        this.byId.delete(record.id);
        await rm(this.dirOf(record.id), { recursive: true, force: true });
        throw err;
      }
      return this.mountsOf(record, ancestors);
    });
  }

  prepare(key: string, parent?: string): Promise<Mount[]> {
    return this.create('active', key, parent);
  }

  view(key: string, parent?: string): Promise<Mount[]> {
    return this.create('view', key, parent);
  }

  commit(name: string, key: string): Promise<void> {
    return this.serialize(async () => {
      const record = this.get(key);
      if (record.kind !== 'active')
        throw invalidArgument(`snapshot ${JSON.stringify(key)} is ${record.kind}, not active`);
      if (this.byName.has(name)) throw conflict(`snapshot ${JSON.stringify(name)} already exists`);
      const committed = await this.committing({
        ...record,
        name,
        kind: 'committed',
        updated: new Date().toISOString(),
      });
      await this.save(committed);
      this.byName.delete(key);
    });
  }

  async remove(key: string): Promise<void> {
    // Once its record is gone the directory is a leftover (open() deletes those): the tree is
    // deleted outside the queue, so prepares and removals behind this one do not wait for it.
    const dir = await this.serialize(async () => {
      const record = this.get(key);
      const child = this.records().find((other) => other.parent === record.id);
      if (child !== undefined)
        throw conflict(`snapshot ${JSON.stringify(key)} is the parent of ${JSON.stringify(child.name)}`);
      const dir = this.dirOf(record.id);
      const mounted = await mountsUsing(dir);
      if (mounted.length > 0)
        throw conflict(`snapshot ${JSON.stringify(key)} is still mounted at ${mounted.join(', ')}`);
      await this.removing(record);
      await unlink(join(dir, RECORD));
      // As in save(): only a committed snapshot's record is durable, so only its removal is.
      if (record.kind === 'committed') await syncDir(dir);
      this.byName.delete(key);
      this.byId.delete(record.id);
      return dir;
    });
    await rm(dir, { recursive: true, force: true });
  }

  async mounts(key: string): Promise<Mount[]> {
    const record = this.get(key);
    if (record.kind === 'committed')
      throw invalidArgument(`snapshot ${JSON.stringify(key)} is committed: prepare or view it to mount it`);
    return this.mountsOf(record, this.ancestors(record));
  }

  async usage(key: string): Promise<Usage> {
    return diskUsage(this.fsOf(this.get(key).id));
  }

  async stat(key: string): Promise<SnapshotInfo> {
    return this.info(this.get(key));
  }

  async walk(fn: (info: SnapshotInfo) => void | Promise<void>): Promise<void> {
    for (const record of this.records()) await fn(this.info(record));
  }

  protected activeRecord(key: string): SnapshotRecord {
    const record = this.get(key);
    if (record.kind !== 'active')
      throw invalidArgument(`snapshot ${JSON.stringify(key)} is ${record.kind}, not active`);
    return record;
  }
}
