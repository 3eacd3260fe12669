/**
 * What removing an image or one of its names does, with Docker's rules (daemon/images/image_delete.go):
 * - by name: the name goes; a tag takes the digest names of its repository with it when it was
 *   the repository's last tag; the image goes with its last name. A container using the image
 *   blocks removing its only reference unless forced, and a running one keeps the image.
 * - by ID: every name goes with the image; refused without force when the names span
 *   repositories or a stopped container uses it, and always while a running container does.
 */
import { conflict } from '../../common/errors.js';
import { isDigestName, repositoryOf, shortId } from './names.js';

export interface ContainerUse {
  /** The container's ID. */
  id: string;
  running: boolean;
}

/** Tells whether a container uses an image (by image ID); supplied by the container engine. */
export type ContainerUsage = (imageId: string) => ContainerUse | undefined;

export type DeleteItem = { untagged: string } | { deleted: string };

export interface RemovalRequest {
  imageId: string;
  /** Every name of the image. */
  names: string[];
  /** The name the caller gave, when it was a name rather than an ID. */
  matchedName?: string;
  /** What the caller typed, for messages. */
  input: string;
  force: boolean;
  usedBy?: ContainerUse;
}

export interface RemovalPlan {
  untag: string[];
  deleteImage: boolean;
}

/** At most one tag, and every name in one repository (Docker's isSingleReference). */
export function isSingleReference(names: string[]): boolean {
  if (names.length <= 1) return names.length === 1;
  const tags = names.filter((name) => !isDigestName(name));
  if (tags.length > 1) return false;
  return new Set(names.map(repositoryOf)).size === 1;
}

export function planRemoval(request: RemovalRequest): RemovalPlan {
  const { imageId, names, matchedName, usedBy, force } = request;
  const image = shortId(imageId);
  if (matchedName !== undefined) {
    if (!force && usedBy && isSingleReference(names)) {
      throw conflict(
        `unable to remove repository reference "${request.input}" (must force) - container ${shortId(usedBy.id)} is using its referenced image ${image}`,
      );
    }
    const untag = [matchedName];
    let remaining = names.filter((name) => name !== matchedName);
    if (!isDigestName(matchedName)) {
      const repository = repositoryOf(matchedName);
      const sameRepository = (name: string): boolean => repositoryOf(name) === repository;
      if (!remaining.some((name) => !isDigestName(name) && sameRepository(name))) {
        const digests = remaining.filter((name) => isDigestName(name) && sameRepository(name));
        untag.push(...digests);
        remaining = remaining.filter((name) => !digests.includes(name));
      }
    }
    // The image goes with its last name, unless a running container holds on to it.
    return { untag, deleteImage: remaining.length === 0 && usedBy?.running !== true };
  }
  if (usedBy?.running) {
    throw conflict(
      `unable to delete ${image} (cannot be forced) - image is being used by running container ${shortId(usedBy.id)}`,
    );
  }
  if (!force && usedBy) {
    throw conflict(
      `unable to delete ${image} (must be forced) - image is being used by stopped container ${shortId(usedBy.id)}`,
    );
  }
  if (!force && names.length > 1 && !isSingleReference(names)) {
    throw conflict(
      `unable to delete ${image} (must be forced) - image is referenced in multiple repositories`,
    );
  }
  return { untag: [...names], deleteImage: true };
}
