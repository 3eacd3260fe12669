/** `--cap-add`, `--cap-drop` and `--privileged` applied to Docker's default set (moby caps.TweakCapabilities). */
import { invalidArgument } from '../common/errors.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES, normalizeCapability } from '../linux/capabilities.js';
import type { Capabilities } from '../oci/runtime-spec.js';

const ALL = 'ALL';

/** Canonical names (`CAP_X`) or `ALL`; Docker's error for an unknown name. */
function normalize(names: string[]): string[] {
  return names.map((name) => {
    const upper = name.toUpperCase();
    if (upper === ALL) return ALL;
    const canonical = normalizeCapability(upper);
    if (canonical === undefined)
      throw invalidArgument(
        `unknown capability: ${JSON.stringify(upper.startsWith('CAP_') ? upper : `CAP_${upper}`)}`,
      );
    return canonical;
  });
}

/**
 * The container's capability set. `available` is every capability the engine can grant (what
 * `--privileged` and `--cap-add ALL` give); Docker uses every capability the kernel knows.
 */
export function containerCapabilities(
  add: string[] | null | undefined,
  drop: string[] | null | undefined,
  privileged: boolean,
  available: readonly string[] = ALL_CAPABILITIES,
): string[] {
  if (privileged) return [...available];
  const adds = normalize(add ?? []);
  const drops = normalize(drop ?? []);
  let caps: string[];
  if (adds.includes(ALL)) caps = available.filter((cap) => !drops.includes(cap));
  else if (drops.includes(ALL)) caps = adds;
  else caps = [...DEFAULT_CAPABILITIES.filter((cap) => !drops.includes(cap)), ...adds];
  return [...new Set(caps)];
}

/**
 * The process capability sets, as Docker's SetCapabilities: root gets the set as bounding,
 * effective and permitted; another user gets only the bounding set, like execve would leave it.
 * No inheritable or ambient capabilities.
 */
export function processCapabilities(caps: string[], uid: number): Capabilities {
  if (uid === 0) return { bounding: [...caps], effective: [...caps], permitted: [...caps] };
  return { bounding: [...caps] };
}
