/**
 * Running one plugin executable as the CNI protocol says: parameters in CNI_* environment
 * variables, the configuration on stdin, a result (or an error object) on stdout. The process
 * gets an argument array, never a shell, and is killed when it outlives its timeout.
 */
import { spawn } from 'node:child_process';
import { BerthError } from '../../common/errors.js';
import type { ErrorKind } from '../../common/errors.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION';

/** Output beyond this is not a CNI result; stop the plugin rather than buffer it. */
const MAX_STDOUT = 4 * 1024 * 1024;
/** Only the end of stderr is kept: it is for the error message. */
const MAX_STDERR = 16 * 1024;

/** A plugin reported an error ({code, msg, details} on stdout with a non-zero exit). */
export class CniPluginError extends BerthError {
  /** The CNI error code: 1-99 are the spec's, 100 and up the plugin's own. */
  readonly cniCode: number;
  readonly plugin: string;
  readonly msg: string;
  readonly details: string | undefined;
  readonly stderr: string;

  constructor(
    kind: ErrorKind,
    message: string,
    fields: { cniCode: number; plugin: string; msg: string; details?: string; stderr: string },
  ) {
    super(kind, message);
    this.name = 'CniPluginError';
    this.cniCode = fields.cniCode;
    this.plugin = fields.plugin;
    this.msg = fields.msg;
    this.details = fields.details;
    this.stderr = fields.stderr;
  }
}

/** The error kind for a CNI error code (the spec's well-known codes). */
export function kindOfCniCode(code: number): ErrorKind {
  switch (code) {
    case 1: // incompatible CNI version
    case 2: // unsupported field in network configuration
    case 4: // invalid necessary environment variables
    case 6: // failed to decode content
    case 7: // invalid network config
      return 'invalid-argument';
    case 3: // container unknown or does not exist
      return 'not-found';
    case 11: // try again later
      return 'unavailable';
    default:
      return 'internal';
  }
}

export interface PluginInvocation {
  /** Absolute path of the plugin executable. */
  path: string;
  /** What the messages call it: the plugin type and, when known, the network. */
  label: string;
  command: CniCommand;
  env: NodeJS.ProcessEnv;
  stdin: string;
  timeoutMs: number;
  /** Run inside this network namespace (nsenter) instead of the caller's. */
  netns?: string;
}

function lastLines(text: string): string {
  const trimmed = text.trim();
  return trimmed.length > 2000 ? `...${trimmed.slice(-2000)}` : trimmed;
}

/** The plugin's error object, when its stdout holds one. */
function pluginError(stdout: string): { code: number; msg: string; details?: string } | undefined {
  let value: unknown;
  try {
    value = JSON.parse(stdout);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { code, msg, details } = value as Record<string, unknown>;
  if (typeof code !== 'number' || typeof msg !== 'string') return undefined;
  return { code, msg, ...(typeof details === 'string' && details !== '' ? { details } : {}) };
}

/** Run the plugin; resolves with its stdout when it exits 0, throws a BerthError otherwise. */
export function invokePlugin(call: PluginInvocation): Promise<string> {
  const [file, args] =
    call.netns === undefined ? [call.path, []] : ['nsenter', [`--net=${call.netns}`, '--', call.path]];
  const what = `CNI plugin ${call.label} ${call.command}`;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: call.env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    let stdoutSize = 0;
    let stderr = '';
    let stopped = false;
    // Settle at once: a grandchild holding stdout open would otherwise delay 'close' forever.
    const stop = (err: BerthError): void => {
      if (stopped) return;
      stopped = true;
      child.kill('SIGKILL');
      child.stdout.destroy();
      child.stderr.destroy();
      clearTimeout(timer);
      reject(err);
    };
    const timer = setTimeout(
      () => stop(new BerthError('unavailable', `${what} did not finish within ${call.timeoutMs} ms`)),
      call.timeoutMs,
    );
    child.stdout.on('data', (chunk: Buffer) => {
      stdoutSize += chunk.length;
      if (stdoutSize > MAX_STDOUT)
        stop(new BerthError('internal', `${what} printed more than ${MAX_STDOUT} bytes`));
      else stdout.push(chunk);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-MAX_STDERR);
    });
    // A plugin may exit without reading its configuration; its exit status tells what happened.
    child.stdin.on('error', () => undefined);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new BerthError('internal', `${what} could not be started: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const out = Buffer.concat(stdout).toString('utf8');
      if (stopped) return;
      if (code === 0) return resolve(out);
      const reported = pluginError(out);
      if (reported !== undefined) {
        const details = reported.details === undefined ? '' : ` (${reported.details})`;
        return reject(
          new CniPluginError(kindOfCniCode(reported.code), `${what} failed: ${reported.msg}${details}`, {
            cniCode: reported.code,
            plugin: call.label,
            msg: reported.msg,
            ...(reported.details === undefined ? {} : { details: reported.details }),
            stderr,
          }),
        );
      }
      const status = signal === null ? `exit status ${code}` : `signal ${signal}`;
      const said = lastLines(stderr) || lastLines(out);
      reject(new BerthError('internal', `${what} failed with ${status}${said === '' ? '' : `: ${said}`}`));
    });
    child.stdin.end(call.stdin);
  });
}
