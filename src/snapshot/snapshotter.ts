/**
 * The snapshotter interface, after containerd's: a snapshot is committed (an immutable layer,
 * keyed by its name — for image layers the chain ID), active (writable, from prepare) or a view
 * (read-only, from view). Mounts are data; mountAll() in mount.ts performs them.
 */

export type SnapshotKind = 'committed' | 'active' | 'view';
export type SnapshotDriverName = 'overlayfs' | 'copy';

/** One mount, as mount(8) takes it: `mount -t <type> -o <options> <source> <target>`. */
export interface Mount {
  type: string;
  source: string;
  options: string[];
}

export interface SnapshotInfo {
  /** The key of an active snapshot or view, the name of a committed one. */
  name: string;
  kind: SnapshotKind;
  /** Name of the committed parent, if any. */
  parent?: string;
  /** ISO 8601 times. */
  created: string;
  updated: string;
}

export interface Usage {
  /** Bytes allocated on disk (st_blocks * 512), each inode counted once. */
  size: number;
  inodes: number;
}

/** Where and how a layer is unpacked into an active snapshot (archive/apply.ts modes). */
export interface LayerTarget {
  mode: 'overlay' | 'flat';
  /** The directory written to: the overlay upper directory, or the full tree. */
  root: string;
  /** Overlay mode: the parents' directories, topmost first. */
  lowers: string[];
}

export interface Snapshotter {
  readonly driver: SnapshotDriverName;
  /** A writable snapshot on top of the committed `parent`. */
  prepare(key: string, parent?: string): Promise<Mount[]>;
  /** A read-only snapshot of the committed `parent`. */
  view(key: string, parent?: string): Promise<Mount[]>;
  /** Turn the active snapshot `key` into the committed snapshot `name`. */
  commit(name: string, key: string): Promise<void>;
  /** Delete a snapshot that no other snapshot has as parent; it must not be mounted. */
  remove(key: string): Promise<void>;
  /** The mounts of an active snapshot or view. */
  mounts(key: string): Promise<Mount[]>;
  usage(key: string): Promise<Usage>;
  stat(key: string): Promise<SnapshotInfo>;
  walk(fn: (info: SnapshotInfo) => void | Promise<void>): Promise<void>;
  /** Where to unpack a layer into the active snapshot `key`. */
  layerTarget(key: string): Promise<LayerTarget>;
}
