/**
 * Where the checkout is, so the compiled suite finds bin/, .cache/fixtures and bench/results
 * whether it runs from dist/bench or from another output directory: $BERTH_REPO, else the first
 * directory above this file holding bin/berthd.js, else the current directory.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepo(): string {
  if (process.env.BERTH_REPO) return resolve(process.env.BERTH_REPO);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 6; depth++) {
    if (existsSync(join(dir, 'bin', 'berthd.js')) && existsSync(join(dir, 'package.json'))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

export const REPO = findRepo();
export const BERTHD_BIN = join(REPO, 'bin', 'berthd.js');
export const BERTH_BIN = join(REPO, 'bin', 'berth.js');
export const RUNTIME_BIN = join(REPO, 'bin', 'berth-runtime.js');
export const RESULTS_DIR = join(REPO, 'bench', 'results');

// The fixtures module and the in-process runtime find their files relative to their own
// compiled location; pin them to the checkout.
process.env.BERTH_FIXTURES_DIR ??= join(REPO, '.cache', 'fixtures');
process.env.BERTH_SHIM ??= join(REPO, 'native', 'build', 'berth-shim');
process.env.BERTH_INIT ??= join(REPO, 'native', 'build', 'berth-init');
process.env.BERTH_NETLINK ??= join(REPO, 'native', 'build', 'berth-netlink');
