/** OCI bundles for runtime tests: the busybox root filesystem and berth's default config. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Spec } from '../../src/oci/runtime-spec.js';
import { defaultSpec } from '../../src/oci/defaults.js';
import { busyboxEntries } from '../../fixtures/busybox.js';
import { materialize } from '../../fixtures/tree.js';
import type { Sandbox } from './sandbox.js';
import type { ExecResult } from './exec.js';
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';

export const RUNTIME_BIN = fileURLToPath(new URL('../../../bin/berth-runtime.js', import.meta.url));

export interface Bundle {
  dir: string;
  rootfs: string;
  spec: Spec;
  write(): Promise<void>;
}

let bundleCounter = 0;
let outputCounter = 0;

/**
 * A bundle in the sandbox with the busybox rootfs and the default spec running `args`, its cgroup
 * under the sandbox's cgroup parent so cleanup finds it.
 */
export async function makeBundle(
  sandbox: Sandbox,
  args: string[],
  name = `b${bundleCounter++}`,
): Promise<Bundle> {
  const dir = join(sandbox.root, 'bundles', name);
  const rootfs = join(dir, 'rootfs');
  await mkdir(rootfs, { recursive: true });
  await materialize(await busyboxEntries(), rootfs);
  const spec = defaultSpec({ terminal: false, args });
  spec.linux!.cgroupsPath = `/${sandbox.cgroupParent}/${name}`;
  const bundle: Bundle = {
    dir,
    rootfs,
    spec,
    write: () => writeFile(join(dir, 'config.json'), JSON.stringify(bundle.spec, null, 2)),
  };
  await bundle.write();
  return bundle;
}

/**
 * Run berth-runtime with the sandbox's state root. Its stdout and stderr go to files, not pipes:
 * a detached container inherits them, and a pipe would stay open as long as the container runs.
 */
export async function runtime(
  sandbox: Sandbox,
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ExecResult & { stdoutPath: string }> {
  const id = outputCounter++;
  const outPath = join(sandbox.root, `runtime-${id}.out`);
  const errPath = join(sandbox.root, `runtime-${id}.err`);
  const out = openSync(outPath, 'w');
  const err = openSync(errPath, 'w');
  try {
    const child = spawn(
      process.execPath,
      [RUNTIME_BIN, '--root', join(sandbox.runRoot, 'runtime'), ...args],
      {
        stdio: [options.input === undefined ? 'ignore' : 'pipe', out, err],
        env: options.env ?? process.env,
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    const timeoutMs = options.timeoutMs ?? 30_000;
    const code = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`berth-runtime ${args.join(' ')} did not finish within ${timeoutMs} ms`));
      }, timeoutMs);
      child.once('error', reject);
      child.once('exit', (status, signal) => {
        clearTimeout(timer);
        resolve(status ?? 128 + (signal ? osConstants.signals[signal] : 0));
      });
    });
    return {
      code,
      stdout: await readFile(outPath, 'utf8'),
      stderr: await readFile(errPath, 'utf8'),
      stdoutPath: outPath,
    };
  } finally {
    closeSync(out);
    closeSync(err);
  }
}

/** Like runtime(), but a non-zero exit fails with the command's stderr. */
export async function runtimeOk(sandbox: Sandbox, args: string[]): Promise<string> {
  const result = await runtime(sandbox, args);
  if (result.code !== 0)
    throw new Error(`berth-runtime ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  return result.stdout;
}
