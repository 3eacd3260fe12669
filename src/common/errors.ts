/**
 * Errors that cross a layer boundary carry a kind. The API maps kinds to HTTP status codes and the
 * CLI maps them to exit codes; the message is what a user sees, so it must be one clear sentence.
 */
export type ErrorKind =
  'not-found' | 'conflict' | 'invalid-argument' | 'forbidden' | 'unavailable' | 'internal';

export class BerthError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = 'BerthError';
  }
}

export const notFound = (message: string): BerthError => new BerthError('not-found', message);
export const conflict = (message: string): BerthError => new BerthError('conflict', message);
export const invalidArgument = (message: string): BerthError => new BerthError('invalid-argument', message);
/** An operation the object does not allow (removing a predefined network, one in use). */
export const forbidden = (message: string): BerthError => new BerthError('forbidden', message);
export const unavailable = (message: string): BerthError => new BerthError('unavailable', message);
export const internal = (message: string, cause?: unknown): BerthError =>
  new BerthError('internal', message, { cause });

/** HTTP status codes used by the Docker Engine API for each kind. */
export const httpStatusOf: Record<ErrorKind, number> = {
  'not-found': 404,
  conflict: 409,
  'invalid-argument': 400,
  forbidden: 403,
  unavailable: 503,
  internal: 500,
};

/** Returns the message a user should see for any thrown value, without a stack trace. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The errno code of a Node.js system error, if the value is one. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
