/**
 * How berth's commands fail, mapped to the docker CLI's exit codes and wording:
 * - a usage error (bad flag, wrong number of arguments) prints the message, the usage line and a
 *   hint, with 125 for a flag error and 1 for an argument-count error;
 * - an error from the daemon is `Error response from daemon: <message>` (exit 1, or 125 for run
 *   and create);
 * - `StatusError` carries the exit code of a container (run, start -a, exec) or a code alone.
 */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** docker prefixes argument-count errors with the program name ("docker: ..."). */
    readonly prefixed: boolean,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** An error body from the daemon: `{"message": ...}` with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly daemonMessage: string,
  ) {
    super(`Error response from daemon: ${daemonMessage}`);
    this.name = 'ApiError';
  }
}

/** The daemon cannot be reached at all. */
export class ConnectError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'ConnectError';
  }
}

/** Exit with a code; a message, when there is one, is printed to stderr first. */
export class StatusError extends Error {
  constructor(
    readonly exitCode: number,
    message = '',
  ) {
    super(message);
    this.name = 'StatusError';
  }
}

/** A plain command failure with docker's exit code 1 and one line to stderr. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.status === 404;
