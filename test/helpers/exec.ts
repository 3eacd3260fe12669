import { execFile } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a program with an argument array (never a shell), bounded in time; never throws on exit code. */
export function execProgram(
  file: string,
  args: string[],
  options: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        timeout: options.timeoutMs ?? 60_000,
        // A hung client (docker run waiting for a removal) may ignore SIGTERM.
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        env: options.env,
        cwd: options.cwd,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          if (error.killed) reject(new Error(`${file} ${args.join(' ')} timed out`));
          else reject(error);
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

/** Like execProgram, but an exit code other than 0 is an error that quotes stderr. */
export async function execOk(
  file: string,
  args: string[],
  options: Parameters<typeof execProgram>[2] = {},
): Promise<string> {
  const result = await execProgram(file, args, options);
  if (result.code !== 0) {
    throw new Error(`${file} ${args.join(' ')} exited with ${result.code}: ${result.stderr.trim()}`);
  }
  return result.stdout;
}
