/** Platforms (`os/arch[/variant]`) and choosing one manifest from a manifest list or OCI index. */
import { invalidArgument, notFound } from '../../common/errors.js';
import type { Descriptor, Platform } from '../../oci/image-spec.js';

/** Node's process.arch -> GOARCH names used by images. */
const NODE_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips: 'mips',
  mipsel: 'mipsle',
  loong64: 'loong64',
};

const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  i386: '386',
};

/** Normalise names and default variants so `linux/aarch64` equals `linux/arm64/v8`. */
export function normalizePlatform(platform: Platform): Platform {
  const os = platform.os.toLowerCase();
  let architecture = platform.architecture.toLowerCase();
  let variant = platform.variant?.toLowerCase();
  const original = architecture;
  architecture = ARCH_ALIASES[architecture] ?? architecture;
  if (original === 'armhf') variant ??= 'v7';
  if (original === 'armel') variant ??= 'v6';
  if (architecture === 'arm64') variant = variant === undefined || variant === '8' ? 'v8' : variant;
  if (architecture === 'arm')
    variant = variant === undefined ? 'v7' : /^\d$/.test(variant) ? `v${variant}` : variant;
  if (architecture === 'amd64' && (variant === 'v1' || variant === '')) variant = undefined;
  const normalized: Platform = { os, architecture };
  if (variant !== undefined && variant !== '') normalized.variant = variant;
  return normalized;
}

/** The platform berth runs on; images are always Linux. */
export function hostPlatform(arch: string = process.arch): Platform {
  return normalizePlatform({ os: 'linux', architecture: NODE_ARCH[arch] ?? arch });
}

/** Parse a `--platform` value: `linux`, `linux/amd64`, `linux/arm/v7`. */
export function parsePlatform(value: string): Platform {
  const parts = value.split('/');
  const valid = /^[A-Za-z0-9_.-]+$/;
  if (parts.length > 3 || parts.some((part) => !valid.test(part))) {
    throw invalidArgument(`invalid platform "${value}": expected os[/arch[/variant]]`);
  }
  const [os, architecture, variant] = parts as [string, string | undefined, string | undefined];
  const platform: Platform = { os, architecture: architecture ?? hostPlatform().architecture };
  if (variant !== undefined) platform.variant = variant;
  else if (architecture === undefined && hostPlatform().variant !== undefined) {
    platform.variant = hostPlatform().variant;
  }
  return normalizePlatform(platform);
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant]
    .filter((part) => part !== undefined)
    .join('/');
}

/**
 * How well `candidate` serves `wanted`: 0 is exact, higher is a worse but compatible fallback
 * (an arm/v7 host runs arm/v6 and arm/v5), undefined is unusable.
 */
function rank(wanted: Platform, candidate: Platform): number | undefined {
  const want = normalizePlatform(wanted);
  const have = normalizePlatform(candidate);
  if (want.os !== have.os || want.architecture !== have.architecture) return undefined;
  if (want.variant === have.variant) return 0;
  if (want.architecture === 'arm' && want.variant && have.variant) {
    const w = Number(want.variant.slice(1));
    const h = Number(have.variant.slice(1));
    if (Number.isInteger(w) && Number.isInteger(h) && h < w) return w - h;
  }
  return undefined;
}

/**
 * Pick the manifest for `wanted` from an index's entries: the exact platform, else the nearest
 * compatible variant; entries without a platform (attestations) are never chosen.
 */
export function selectManifest(manifests: Descriptor[], wanted: Platform): Descriptor {
  let best: { descriptor: Descriptor; rank: number } | undefined;
  for (const descriptor of manifests) {
    if (!descriptor.platform) continue;
    const score = rank(wanted, descriptor.platform);
    if (score !== undefined && (best === undefined || score < best.rank)) best = { descriptor, rank: score };
  }
  if (!best) {
    const available = manifests
      .filter((m) => m.platform)
      .map((m) => formatPlatform(normalizePlatform(m.platform as Platform)));
    throw notFound(
      `no matching manifest for ${formatPlatform(normalizePlatform(wanted))} in the manifest list entries` +
        (available.length > 0 ? ` (available: ${available.join(', ')})` : ''),
    );
  }
  return best.descriptor;
}
