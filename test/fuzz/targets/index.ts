/** The fuzz targets, by name; each is `./<name>.js` exporting `target`. */
import type { FuzzTarget } from '../target.js';

export const TARGET_NAMES = [
  'reference',
  'dockerfile',
  'daemon-json',
  'create-body',
  'query',
  'manifest',
  'image-config',
  'tar',
  'cp-archive',
] as const;

/** URL of the module that exports the target `name`. */
export function targetModule(name: string): string {
  if (!(TARGET_NAMES as readonly string[]).includes(name))
    throw new Error(`unknown fuzz target ${JSON.stringify(name)} (known: ${TARGET_NAMES.join(', ')})`);
  return new URL(`./${name}.js`, import.meta.url).href;
}

export async function loadTarget(name: string): Promise<FuzzTarget> {
  return ((await import(targetModule(name))) as { target: FuzzTarget }).target;
}
