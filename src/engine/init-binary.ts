/** Where berth-init (native/init), the PID 1 of `--init` containers, is found on the host. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let found: string | undefined;

/**
 * $BERTH_INIT, else native/build/berth-init of the checkout this code runs from; undefined when
 * it is not built (the spec builder then refuses --init with a clear message).
 */
export function initBinaryPath(): string | undefined {
  if (process.env.BERTH_INIT) return process.env.BERTH_INIT;
  if (found) return found;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 6; depth++) {
    const candidate = join(dir, 'native', 'build', 'berth-init');
    if (existsSync(candidate)) return (found = candidate);
    dir = dirname(dir);
  }
  return undefined;
}
