import { spawn } from 'node:child_process';
import type { Hook, State } from '../oci/runtime-spec.js';
import { BerthError } from '../common/errors.js';

/** A hook failed, could not run or timed out (the message names it). */
export class HookError extends BerthError {
  constructor(message: string) {
    super('internal', message);
  }
}

/**
 * Run OCI hooks in order, each with the container's state JSON on stdin. A hook that fails or
 * outlives its timeout (seconds) fails the whole step, naming the hook.
 */
export async function runHooks(kind: string, hooks: Hook[] | undefined, state: State): Promise<void> {
  for (const hook of hooks ?? []) await runHook(kind, hook, state);
}

function runHook(kind: string, hook: Hook, state: State): Promise<void> {
  return new Promise((resolve, reject) => {
    const [argv0, ...rest] = hook.args ?? [hook.path];
    const child = spawn(hook.path, rest, {
      argv0: argv0 ?? hook.path,
      env: Object.fromEntries(
        (hook.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
      ),
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(JSON.stringify(state));
    let timedOut = false;
    const timer =
      hook.timeout !== undefined && hook.timeout > 0
        ? setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
          }, hook.timeout * 1000)
        : undefined;
    child.once('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(new HookError(`${kind} hook ${hook.path} could not run: ${err.message}`));
    });
    child.once('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (timedOut)
        return reject(new HookError(`${kind} hook ${hook.path} timed out after ${hook.timeout} s`));
      if (code === 0) return resolve();
      const how = signal ? `was killed by ${signal}` : `exited with ${code}`;
      reject(new HookError(`${kind} hook ${hook.path} ${how}${stderr.trim() ? `: ${stderr.trim()}` : ''}`));
    });
  });
}
