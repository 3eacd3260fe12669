/** What applying a layer takes and returns; plain data, so it crosses to the apply worker. */
import type { LayerCompression, LayerStreamOptions } from './layer-format.js';

export type ApplyMode = 'flat' | 'overlay';

/** Archive ids [containerID, containerID + size) are written as [hostID, hostID + size). */
export interface IdRange {
  containerID: number;
  hostID: number;
  size: number;
}

/** Owner mapping for user namespaces; an id no range covers becomes 65534 (the overflow id). */
export interface IdMap {
  uids: IdRange[];
  gids: IdRange[];
}

export interface ApplyOptions extends LayerStreamOptions {
  mode: ApplyMode;
  /** Overlay mode: the lower layers' directories, topmost first (for lookups and hardlink copy-up). */
  lowers?: string[];
  /** Create character and block devices (default false: they are refused). */
  allowDevices?: boolean;
  /** What a refused entry does: fail the apply (default) or be skipped and reported. */
  onRefused?: 'error' | 'skip';
  /** Map archive owners to host owners (user namespaces). */
  idMap?: IdMap;
  /** lchown entries to their owners (default: when running as root). */
  preserveOwnership?: boolean;
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar stream: the layer's diff ID. */
  diffId: string;
  /** Uncompressed size in bytes. */
  size: number;
  compression: LayerCompression;
  entries: number;
  skipped: Array<{ path: string; reason: string }>;
}
