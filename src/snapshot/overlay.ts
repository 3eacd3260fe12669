/**
 * The overlayfs snapshotter (default). Each snapshot's fs/ is one layer: committed snapshots are
 * the lower directories of their children, an active snapshot's fs/ is the upper directory of
 * one overlay mount. Callers key committed image layers by chain ID, so images sharing a chain
 * of layers share its snapshots.
 *
 * Lower directories are named in mount options through short links, <root>/snapshots/l/<10
 * characters> -> ../<id>/fs (Docker's overlay2 does the same), so that mountAll() can shorten
 * a long lowerdir list to relative names and fit deep chains (130+ layers) into the kernel's
 * one-page limit on mount options.
 *
 * Mounts use redirect_dir=off and metacopy=off so the upper directory always holds whole files
 * and real directories: the layer diff (archive/diff.ts) reads it as it is; index=off because
 * lower directories are shared between many overlays.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { mkdir, readdir, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, internal } from '../common/errors.js';
import { BaseSnapshotter, type SnapshotRecord } from './base.js';
import type { LayerTarget, Mount } from './snapshotter.js';

const LINK_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const LINK_LENGTH = 10;
export const OVERLAY_OPTIONS = ['index=off', 'redirect_dir=off', 'metacopy=off'];

function newLinkName(): string {
  return [...randomBytes(LINK_LENGTH)].map((byte) => LINK_ALPHABET[byte % 32]).join('');
}

export class OverlaySnapshotter extends BaseSnapshotter {
  readonly driver = 'overlayfs';
  private readonly linksDir: string;

  private constructor(root: string) {
    super(root);
    this.linksDir = join(this.snapshotsDir, 'l');
  }

  /** Open (or create) the overlay snapshots under `<root>/snapshots`. */
  static async open(root: string): Promise<OverlaySnapshotter> {
    const snapshotter = new OverlaySnapshotter(root);
    await snapshotter.load();
    await mkdir(snapshotter.linksDir, { recursive: true });
    // Links whose snapshot is gone (a crash between the two steps of commit or remove).
    const used = new Set(snapshotter.records().map((record) => record.link));
    for (const name of await readdir(snapshotter.linksDir))
      if (!used.has(name)) await unlink(join(snapshotter.linksDir, name));
    return snapshotter;
  }

  private workOf(id: string): string {
    return join(this.dirOf(id), 'work');
  }

  private linkOf(record: SnapshotRecord): string {
    if (record.link === undefined) throw internal(`committed snapshot ${record.name} has no lower link`);
    return join(this.linksDir, record.link);
  }

  protected async populate(record: SnapshotRecord): Promise<void> {
    if (record.kind === 'active') mkdirSync(this.workOf(record.id));
  }

  protected mountsOf(record: SnapshotRecord, ancestors: SnapshotRecord[]): Mount[] {
    const fs = this.fsOf(record.id);
    if (record.kind === 'active') {
      if (ancestors.length === 0) return [{ type: 'bind', source: fs, options: ['rbind', 'rw'] }];
      return [
        {
          type: 'overlay',
          source: 'overlay',
          options: [
            ...OVERLAY_OPTIONS,
            `lowerdir=${ancestors.map((ancestor) => this.linkOf(ancestor)).join(':')}`,
            `upperdir=${fs}`,
            `workdir=${this.workOf(record.id)}`,
          ],
        },
      ];
    }
    const [only] = ancestors;
    if (ancestors.length <= 1)
      return [
        { type: 'bind', source: only === undefined ? fs : this.fsOf(only.id), options: ['rbind', 'ro'] },
      ];
    // Without an upper directory overlayfs is read-only.
    return [
      {
        type: 'overlay',
        source: 'overlay',
        options: [
          ...OVERLAY_OPTIONS,
          `lowerdir=${ancestors.map((ancestor) => this.linkOf(ancestor)).join(':')}`,
        ],
      },
    ];
  }

  protected async committing(record: SnapshotRecord): Promise<SnapshotRecord> {
    for (let attempt = 0; ; attempt++) {
      const link = newLinkName();
      try {
        await symlink(`../${record.id}/fs`, join(this.linksDir, link));
        return { ...record, link };
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST' || attempt >= 5) throw err;
      }
    }
  }

  protected async removing(record: SnapshotRecord): Promise<void> {
    if (record.link === undefined) return;
    await unlink(join(this.linksDir, record.link)).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw err;
    });
  }

  async layerTarget(key: string): Promise<LayerTarget> {
    const record = this.activeRecord(key);
    return {
      mode: 'overlay',
      root: this.fsOf(record.id),
      lowers: this.ancestors(record).map((ancestor) => this.fsOf(ancestor.id)),
    };
  }
}
