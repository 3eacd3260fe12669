/**
 * The cgroup layer: `cgroupManager()` picks the driver for the host. On a hybrid host the v1
 * hierarchies carry the controllers, so the v1 driver does the resource control there.
 */
import { shimDeviceAttacher } from './device-attach.js';
import { detectCgroupLayout } from './layout.js';
import type { CgroupLayout } from './layout.js';
import { parseCgroupsPath } from './paths.js';
import type { CgroupManager } from './types.js';
import { V1Manager } from './v1.js';
import { V2Manager } from './v2.js';

export type { CgroupEntry, CgroupManager, CgroupStats, FreezerState } from './types.js';
export type { CgroupLayout, CgroupMode } from './layout.js';
export { detectCgroupLayout } from './layout.js';

export interface CgroupManagerOptions {
  /** linux.cgroupsPath is systemd's "slice:prefix:name" (still managed through cgroupfs). */
  systemd?: boolean;
  /** The host's cgroup layout; detected from /proc/self when absent. */
  layout?: CgroupLayout;
  /** berth-shim, which attaches cgroup v2 device programs; default "berth-shim" on PATH. */
  shimPath?: string;
  /** v2 only: controllers to enable in the ancestors (default: all the kernel offers). */
  controllers?: readonly string[];
}

/** The manager for a container's cgroup, from linux.cgroupsPath (see paths.ts for its meaning). */
export async function cgroupManager(
  cgroupsPath: string | undefined,
  containerId: string,
  options: CgroupManagerOptions = {},
): Promise<CgroupManager> {
  const cgroupPath = parseCgroupsPath(cgroupsPath, containerId, options);
  const layout = options.layout ?? (await detectCgroupLayout());
  if (layout.mode === 'unified' && layout.unified !== undefined) {
    return new V2Manager({
      mount: layout.unified,
      cgroupPath,
      own: layout.own[''],
      attachDevices: shimDeviceAttacher(options.shimPath ?? 'berth-shim'),
      ...(options.controllers === undefined ? {} : { controllers: options.controllers }),
    });
  }
  return new V1Manager(layout, cgroupPath);
}
