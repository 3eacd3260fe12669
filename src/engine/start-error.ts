/**
 * What a failed container start leaves in State and answers, after dockerd's containerStart and
 * translateContainerdStartErr: a program that cannot be executed is the client's error (HTTP 400)
 * with the shell's exit code (127 not found, 126 cannot run); any other failure keeps its own kind
 * and, when nothing set one, exit code 128.
 */
import { invalidArgument } from '../common/errors.js';
import { ExecFailedError } from '../runtime/shim-process.js';

/** dockerd's exitUnknown: a start failed and nothing said why in an exit code. */
const EXIT_UNKNOWN = 128;

export interface StartFailure {
  error: unknown;
  exitCode: number;
}

/** dockerd's message: its prefix, then runc's. */
export function execFailureMessage(prefix: string, err: ExecFailedError): string {
  const message = `${prefix}${err.message}`;
  // dockerd adds this since Go 1.20 reports a directory as EISDIR: clients look for EACCES's text.
  return /is a directory$/.test(message) ? `${message}: permission denied` : message;
}

export function startFailure(err: unknown, previousExitCode: number): StartFailure {
  if (!(err instanceof ExecFailedError))
    return { error: err, exitCode: previousExitCode === 0 ? EXIT_UNKNOWN : previousExitCode };
  const message = execFailureMessage('failed to create task for container: OCI runtime create failed: ', err);
  return { error: invalidArgument(message), exitCode: err.exitCode };
}
