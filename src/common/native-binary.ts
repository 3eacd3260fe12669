/**
 * Where berth's native programs (native/build/, docs/ARCHITECTURE.md "Programs") are: the path in
 * their environment variable, else native/build/<name> of the checkout this code runs from
 * (searched upward from this module, which works for dist/ and for the bundles alike).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const found = new Map<string, string>();

/** $`envVar`, else the built `name`; undefined when it is not built. */
export function nativeBinary(name: string, envVar: string): string | undefined {
  const override = process.env[envVar];
  if (override) return override;
  const known = found.get(name);
  if (known) return known;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 6; depth++) {
    const candidate = join(dir, 'native', 'build', name);
    if (existsSync(candidate)) {
      found.set(name, candidate);
      return candidate;
    }
    dir = dirname(dir);
  }
  return undefined;
}
