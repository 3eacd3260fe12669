/**
 * Image references in Docker's grammar (distribution/reference), with Docker's normalisation:
 * `busybox` is `docker.io/library/busybox:latest`.
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component ( "/" path-component )*
 */
import { invalidArgument } from '../common/errors.js';
import { parseDigest } from '../content/digest.js';

export const DEFAULT_DOMAIN = 'docker.io';
export const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
export const OFFICIAL_REPO_PREFIX = 'library/';
export const DEFAULT_TAG = 'latest';
/** distribution's limit on the whole name (domain and path). */
export const NAME_TOTAL_LENGTH_MAX = 255;

export interface ImageReference {
  /** Registry host with optional port: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  domain: string;
  /** Repository path inside the registry: `library/busybox`. */
  path: string;
  tag?: string;
  digest?: string;
}

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = '\\[[a-fA-F0-9:]+\\]';
const DOMAIN = new RegExp(`^(?:${DOMAIN_NAME}|${IPV6})(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const IDENTIFIER = /^[a-f0-9]{64}$/;

function fail(input: string, reason: string): never {
  throw invalidArgument(`invalid reference "${input}": ${reason}`);
}

/** Split `name` into domain and path the way Docker does: the first component is a domain only
 * if it has a dot or a port, is `localhost`, or has uppercase letters. */
function splitDomain(name: string): { domain: string; path: string } {
  const slash = name.indexOf('/');
  const first = name.slice(0, slash);
  let domain: string;
  let path: string;
  if (slash === -1 || (!/[.:]/.test(first) && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    path = name;
  } else {
    domain = first;
    path = name.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  return { domain, path };
}

export interface ParseOptions {
  /** Add `:latest` when the reference has neither tag nor digest (default true). */
  defaultTag?: boolean;
}

/** Parse and normalise a reference as the docker CLI does; throws invalidArgument naming the bad part. */
export function parseReference(input: string, options: ParseOptions = {}): ImageReference {
  if (input === '') fail(input, 'the reference is empty');
  if (IDENTIFIER.test(input)) {
    fail(input, 'a 64-character hexadecimal string is an image ID, not a repository name');
  }
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      parseDigest(digest);
    } catch (err) {
      fail(input, (err as Error).message);
    }
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      fail(
        input,
        `tag "${tag}" must be 1 to 128 characters of letters, digits, "_", "." and "-", not starting with "." or "-"`,
      );
    }
  }
  if (rest === '') fail(input, 'the repository name is empty');
  const { domain, path } = splitDomain(rest);
  // Like distribution's ParseNormalizedNamed, the limit is on the normalised name
  // (`docker.io/library/...`), so every name accepted here can be written out and read back.
  if (domain.length + 1 + path.length > NAME_TOTAL_LENGTH_MAX) {
    fail(input, `the repository name is longer than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  if (!DOMAIN.test(domain)) fail(input, `"${domain}" is not a valid registry host`);
  if (path.toLowerCase() !== path) fail(input, `repository name "${path}" must be lowercase`);
  for (const component of path.split('/')) {
    if (!PATH_COMPONENT.test(component)) {
      fail(
        input,
        component === ''
          ? 'the repository name has an empty path component'
          : `path component "${component}" must be lowercase letters and digits separated by ".", "_", "__" or "-"`,
      );
    }
  }
  if (tag === undefined && digest === undefined && options.defaultTag !== false) tag = DEFAULT_TAG;
  const reference: ImageReference = { domain, path };
  if (tag !== undefined) reference.tag = tag;
  if (digest !== undefined) reference.digest = digest;
  return reference;
}

/** `docker.io/library/busybox` */
export const repositoryName = (ref: ImageReference): string => `${ref.domain}/${ref.path}`;

/** The short name Docker displays: `busybox`, `user/repo`, `localhost:5000/a/b`. */
export function familiarName(ref: ImageReference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return repositoryName(ref);
  const path = ref.path;
  if (path.startsWith(OFFICIAL_REPO_PREFIX) && !path.slice(OFFICIAL_REPO_PREFIX.length).includes('/')) {
    return path.slice(OFFICIAL_REPO_PREFIX.length);
  }
  return path;
}

const suffix = (ref: ImageReference): string =>
  (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');

/** The fully qualified form: `docker.io/library/busybox:latest`. */
export const formatReference = (ref: ImageReference): string => repositoryName(ref) + suffix(ref);

/** The familiar form: `busybox:latest`. */
export const familiarReference = (ref: ImageReference): string => familiarName(ref) + suffix(ref);

/** What to ask the registry for: the digest when there is one (it pins content), else the tag. */
export function manifestIdentifier(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? DEFAULT_TAG;
}
