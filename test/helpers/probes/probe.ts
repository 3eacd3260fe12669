/**
 * The confinement probe (probe.c), compiled statically with gcc into a directory of the test so
 * that it runs in any container image; bind it read-only into a container and call
 * `/probe <attempt> [args]`: it prints `ok` or the errno name of the failure.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execOk } from '../exec.js';

const SOURCE = fileURLToPath(new URL('../../../../test/helpers/probes/probe.c', import.meta.url));

/** Compiles the probe into `dir/probe` and returns its path. */
export async function buildProbe(dir: string): Promise<string> {
  const output = join(dir, 'probe');
  await execOk('gcc', ['-static', '-O1', '-Wall', '-Wextra', '-Werror', '-o', output, SOURCE], {
    timeoutMs: 60_000,
  });
  return output;
}
