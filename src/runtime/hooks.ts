import { spawn } from 'node:child_process';
import type { Hook, State } from '../oci/runtime-spec.js';
import { BerthError } from '../common/errors.js';

/** A hook failed, could not run or timed out (the message names it). */
export class HookError extends BerthError {
  constructor(message: string) {
    super('internal', message);
  }
}

/** The end of a hook's stdout and stderr kept for the error message (as the shim's HOOK op keeps). */
const OUTPUT_KEPT = 400;
/** How long output is still read after the hook has exited (a child it left may hold the pipes). */
const OUTPUT_GRACE_MS = 1000;

/**
 * Run OCI hooks in order (prestart, createRuntime, poststart, poststop: those that run in the
 * runtime's namespaces), each with the container's state JSON on stdin. A hook that fails or
 * outlives its timeout (seconds) fails the whole step, naming the hook and its last output.
 */
export async function runHooks(kind: string, hooks: Hook[] | undefined, state: State): Promise<void> {
  for (const hook of hooks ?? []) await runHook(kind, hook, state);
}

/** `K=V` strings as an environment object; an entry without `=` is a name with an empty value. */
export function hookEnv(env: string[] | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of env ?? []) {
    const at = entry.indexOf('=');
    if (at < 0) result[entry] = '';
    else result[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return result;
}

/** The kept output as one line: control characters become spaces, the ends are trimmed. */
export function outputLine(output: Buffer): string {
  const bytes = Buffer.from(output);
  for (let i = 0; i < bytes.length; i++) if ((bytes[i] ?? 0) < 0x20 || bytes[i] === 0x7f) bytes[i] = 0x20;
  return bytes.toString('utf8').trim();
}

function runHook(kind: string, hook: Hook, state: State): Promise<void> {
  return new Promise((resolve, reject) => {
    // args[0] is argv[0] (it may differ from path); no args: the path alone.
    const [argv0, ...rest] = hook.args?.length ? hook.args : [hook.path];
    const child = spawn(hook.path, rest, {
      argv0: argv0 ?? hook.path,
      // Exactly the hook's env, nothing of ours.
      env: hookEnv(hook.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = Buffer.alloc(0);
    const keep = (chunk: Buffer): void => {
      output = Buffer.concat([output, chunk]);
      if (output.length > OUTPUT_KEPT) output = output.subarray(output.length - OUTPUT_KEPT);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
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
    let settled = false;
    let grace: NodeJS.Timeout | undefined;
    const settle = (error?: HookError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      child.stdout?.destroy();
      child.stderr?.destroy();
      if (error) reject(error);
      else resolve();
    };
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (timedOut)
        return settle(new HookError(`${kind} hook ${hook.path} timed out after ${hook.timeout} s`));
      if (code === 0) return settle();
      const how = signal ? `was killed by signal ${signal}` : `exited with ${code}`;
      const text = outputLine(output);
      settle(new HookError(`${kind} hook ${hook.path} ${how}${text ? `: ${text}` : ''}`));
    };
    child.once('error', (err) =>
      settle(new HookError(`${kind} hook ${hook.path} could not run: ${err.message}`)),
    );
    // 'close' comes once the output is read to its end; a process the hook left behind may hold
    // the pipes open, so after the hook's exit its output is waited for only briefly.
    child.once('close', finish);
    child.once('exit', (code, signal) => {
      grace = setTimeout(() => finish(code, signal), OUTPUT_GRACE_MS);
    });
  });
}
