/**
 * Ids across the boundary of a remapped container's user namespace (docs/userns.md): container
 * ids <-> host ids through its uid and gid mappings, for file owners and for the root id a
 * namespaced (version 3) file capability carries. Used wherever files cross between the host's
 * ids and the container's: the tars of commit, export and cp, `docker diff`, and the shifted
 * copies of image layers (shift-copy.ts).
 */
import { invalidArgument } from '../common/errors.js';
import type { TarEntry } from '../archive/tar-writer.js';
import type { IdMapping } from '../oci/runtime-spec.js';

/** Container ids -> host ids, as the OCI spec's uidMappings and gidMappings. */
export interface IdMaps {
  uids: readonly IdMapping[];
  gids: readonly IdMapping[];
}

/** The kernel's overflow id: what an id without a mapping shows as. */
export const OVERFLOW_ID = 65534;

export const CAPABILITY_XATTR = 'security.capability';

/** A container id's host id, or undefined when it is not mapped. */
export function toHostId(mappings: readonly IdMapping[], id: number): number | undefined {
  const m = mappings.find((m) => id >= m.containerID && id < m.containerID + m.size);
  return m === undefined ? undefined : m.hostID + (id - m.containerID);
}

/** A host id's container id, or undefined when it is not mapped (it shows as the overflow id, 65534). */
export function toContainerId(mappings: readonly IdMapping[], id: number): number | undefined {
  const m = mappings.find((m) => id >= m.hostID && id < m.hostID + m.size);
  return m === undefined ? undefined : m.containerID + (id - m.hostID);
}

export type Direction = 'to-host' | 'to-container';

/** One direction of a container's mappings; undefined for an id that has no mapping. */
export interface IdShift {
  direction: Direction;
  uid(id: number): number | undefined;
  gid(id: number): number | undefined;
}

export function idShift(maps: IdMaps, direction: Direction): IdShift {
  const map = direction === 'to-host' ? toHostId : toContainerId;
  return { direction, uid: (id) => map(maps.uids, id), gid: (id) => map(maps.gids, id) };
}

// struct vfs_ns_cap_data (linux/capability.h): magic_etc, {permitted, inheritable} x 2, rootid
// (version 3 only), little-endian. Version 2 has no root id: it applies to the root of the
// filesystem's user namespace (the host's) and of every namespace below it.
const REVISION_MASK = 0xff000000;
const REVISION_2 = 0x02000000;
const REVISION_3 = 0x03000000;
const SIZE_2 = 20;
const SIZE_3 = 24;

/**
 * A security.capability value with its root id carried across, or undefined when it must be
 * dropped. To the host: a version 2 capability becomes version 3 for the container's root (the
 * file then grants its capabilities to that root only, as through an idmapped mount) and a
 * version 3 root id is mapped. To the container: a version 3 root id is mapped, and one that
 * becomes 0 is written as version 2, as the kernel does. A root id without a mapping belongs to
 * nobody the container can be, so the capability is dropped. Anything else is kept as it is.
 */
export function shiftCapability(value: Uint8Array, shift: IdShift): Buffer | undefined {
  const input = Buffer.from(value);
  if (input.length < 4) return input;
  const revision = (input.readUInt32LE(0) & REVISION_MASK) >>> 0;
  const flags = input.readUInt32LE(0) & ~REVISION_MASK;
  const withRoot = (root: number): Buffer => {
    const out = Buffer.alloc(SIZE_3);
    input.copy(out, 0, 0, SIZE_2);
    out.writeUInt32LE((REVISION_3 | flags) >>> 0, 0);
    out.writeUInt32LE(root, SIZE_2);
    return out;
  };
  if (revision === REVISION_2 && input.length === SIZE_2) {
    if (shift.direction === 'to-container') return input;
    const root = shift.uid(0);
    return root === undefined ? undefined : withRoot(root);
  }
  if (revision === REVISION_3 && input.length === SIZE_3) {
    const root = shift.uid(input.readUInt32LE(SIZE_2));
    if (root === undefined) return undefined;
    if (root !== 0) return withRoot(root);
    const out = Buffer.from(input.subarray(0, SIZE_2));
    out.writeUInt32LE((REVISION_2 | flags) >>> 0, 0);
    return out;
  }
  return input;
}

/** What an id without a mapping becomes: the overflow id (as the kernel shows it), or an error. */
export type Unmapped = 'overflow' | 'refuse';

/**
 * A tar entry's owner and file capability in the other id space: what commit, export and cp
 * apply at the tar boundary of a remapped container.
 */
export function shiftEntry(shift: IdShift, unmapped: Unmapped): (entry: TarEntry) => TarEntry {
  const id = (kind: 'uid' | 'gid', value: number, path: string): number => {
    const mapped = shift[kind](value);
    if (mapped !== undefined) return mapped;
    if (unmapped === 'overflow') return OVERFLOW_ID;
    throw invalidArgument(`${path}: ${kind} ${value} has no mapping in the container's user namespace`);
  };
  return (entry) => {
    const shifted: TarEntry = {
      ...entry,
      uid: id('uid', entry.uid ?? 0, entry.path),
      gid: id('gid', entry.gid ?? 0, entry.path),
    };
    // Names would describe the host's accounts, not the container's.
    delete shifted.uname;
    delete shifted.gname;
    const capability = entry.xattrs?.[CAPABILITY_XATTR];
    if (capability !== undefined) {
      const xattrs = { ...entry.xattrs };
      const value = shiftCapability(
        typeof capability === 'string' ? Buffer.from(capability) : capability,
        shift,
      );
      if (value === undefined) delete xattrs[CAPABILITY_XATTR];
      else xattrs[CAPABILITY_XATTR] = value;
      shifted.xattrs = xattrs;
    }
    return shifted;
  };
}
