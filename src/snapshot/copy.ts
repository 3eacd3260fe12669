/**
 * The copy snapshotter, for filesystems without overlayfs: an active snapshot's fs/ is a full
 * copy of its parent's tree (cp -a: owners, modes, times, hardlinks, devices and xattrs kept,
 * reflinks where the filesystem has them); layers are unpacked onto it in flat mode. Committed
 * snapshots never change, so a view is a read-only bind mount of its parent's tree.
 */
import { execFile } from 'node:child_process';
import { internal } from '../common/errors.js';
import { BaseSnapshotter, type SnapshotRecord } from './base.js';
import type { LayerTarget, Mount } from './snapshotter.js';

const COPY_TIMEOUT_MS = 30 * 60_000;

/** `cp -a` of the tree `from` onto `to`: into an existing directory, or as a new one. */
export function copyTree(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // -T: `to` itself becomes the copy of `from` (its contents, when `to` exists already).
    execFile(
      'cp',
      ['-a', '--preserve=all', '--reflink=auto', '-T', '--', from, to],
      { timeout: COPY_TIMEOUT_MS, maxBuffer: 1024 * 1024 },
      (error, _stdout, stderr) => {
        if (error === null) resolve();
        else
          reject(
            internal(`copying ${from} to ${to} failed: ${String(stderr).trim() || error.message}`, error),
          );
      },
    );
  });
}

export class CopySnapshotter extends BaseSnapshotter {
  readonly driver = 'copy';

  private constructor(root: string) {
    super(root);
  }

  /** Open (or create) the copy snapshots under `<root>/snapshots`. */
  static async open(root: string): Promise<CopySnapshotter> {
    const snapshotter = new CopySnapshotter(root);
    await snapshotter.load();
    return snapshotter;
  }

  protected async populate(record: SnapshotRecord, ancestors: SnapshotRecord[]): Promise<void> {
    const [parent] = ancestors;
    if (record.kind === 'active' && parent !== undefined)
      await copyTree(this.fsOf(parent.id), this.fsOf(record.id));
  }

  protected mountsOf(record: SnapshotRecord, ancestors: SnapshotRecord[]): Mount[] {
    if (record.kind === 'active')
      return [{ type: 'bind', source: this.fsOf(record.id), options: ['rbind', 'rw'] }];
    const [parent] = ancestors;
    return [{ type: 'bind', source: this.fsOf((parent ?? record).id), options: ['rbind', 'ro'] }];
  }

  protected async committing(record: SnapshotRecord): Promise<SnapshotRecord> {
    return record;
  }

  protected async removing(): Promise<void> {}

  async layerTarget(key: string): Promise<LayerTarget> {
    return { mode: 'flat', root: this.fsOf(this.activeRecord(key).id), lowers: [] };
  }
}
