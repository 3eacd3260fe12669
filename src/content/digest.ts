/** Content digests (`algorithm:hex`), as in the OCI image spec and go-digest. */
import { createHash } from 'node:crypto';
import { invalidArgument } from '../common/errors.js';

/** Hex length of each algorithm the OCI image spec registers. */
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

const ALGORITHM = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*$/;

export interface ParsedDigest {
  algorithm: string;
  hex: string;
}

/**
 * Validate a digest and split it. `what` names the value in the error ("digest", "layer digest").
 * Only registered algorithms are accepted, with exactly their length of lowercase hex.
 */
export function parseDigest(digest: string, what = 'digest'): ParsedDigest {
  const colon = digest.indexOf(':');
  if (colon <= 0) throw invalidArgument(`invalid ${what} "${digest}": expected algorithm:hex`);
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (!ALGORITHM.test(algorithm)) throw invalidArgument(`invalid ${what} "${digest}": malformed algorithm`);
  const length = HEX_LENGTH[algorithm];
  if (length === undefined) {
    throw invalidArgument(`invalid ${what} "${digest}": unsupported digest algorithm "${algorithm}"`);
  }
  if (!/^[0-9a-f]*$/.test(hex)) {
    throw invalidArgument(`invalid ${what} "${digest}": the hex part must be lowercase hexadecimal`);
  }
  if (hex.length !== length) {
    throw invalidArgument(
      `invalid ${what} "${digest}": ${algorithm} needs ${length} hex characters, got ${hex.length}`,
    );
  }
  return { algorithm, hex };
}

/** Validate a digest that the content store can hold (sha256 only) and return its hex part. */
export function sha256Hex(digest: string, what = 'digest'): string {
  const parsed = parseDigest(digest, what);
  if (parsed.algorithm !== 'sha256') {
    throw invalidArgument(`invalid ${what} "${digest}": only sha256 content is supported`);
  }
  return parsed.hex;
}

export const sha256Of = (data: Uint8Array | string): string =>
  `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** The 12-character id Docker shows for a layer in progress output. */
export const shortDigest = (digest: string): string => digest.slice(digest.indexOf(':') + 1).slice(0, 12);
