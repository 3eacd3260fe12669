import { invalidArgument } from '../common/errors.js';
import { CopySnapshotter } from './copy.js';
import { OverlaySnapshotter } from './overlay.js';
import type { SnapshotDriverName, Snapshotter } from './snapshotter.js';

/** Open the snapshots under `<root>/snapshots` with the named driver (default overlayfs). */
export function openSnapshotter(
  root: string,
  driver: SnapshotDriverName = 'overlayfs',
): Promise<Snapshotter> {
  switch (driver) {
    case 'overlayfs':
      return OverlaySnapshotter.open(root);
    case 'copy':
      return CopySnapshotter.open(root);
    default:
      throw invalidArgument(`unknown snapshot driver ${JSON.stringify(driver)} (overlayfs or copy)`);
  }
}
