/**
 * How errors become HTTP responses: a BerthError's kind picks the status (common/errors.ts), an
 * ApiError carries a status of its own for the few cases no kind describes (413, 501); anything
 * else is a 500. The body is Docker's `{"message": ...}`; a stack trace never reaches a client.
 */
import { BerthError, describeError, httpStatusOf } from '../common/errors.js';

export class ApiError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
    this.name = 'ApiError';
  }
}

export function statusOf(err: unknown): number {
  if (err instanceof ApiError) return err.status;
  if (err instanceof BerthError) return httpStatusOf[err.kind];
  return 500;
}

/** The JSON body Docker sends with an error, newline-terminated like Go's json.Encoder. */
export function errorBody(err: unknown): string {
  return JSON.stringify({ message: describeError(err) }) + '\n';
}
