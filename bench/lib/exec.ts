/**
 * Run a client program bounded in time. Unlike test/helpers/exec.ts it kills with SIGKILL on
 * time-out: `docker run` relays SIGTERM to the container and keeps waiting for it.
 */
import { execFile } from 'node:child_process';
import type { ExecResult } from '../../test/helpers/exec.js';

export function execClient(
  file: string,
  args: string[],
  options: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 256 * 1024 * 1024,
        env: options.env,
        cwd: options.cwd,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(
            error.killed
              ? new Error(`${file} ${args.join(' ')} timed out after ${options.timeoutMs} ms`)
              : error,
          );
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    child.stdin?.end();
  });
}
