/** Dockerfile errors name the file, line and column: `Dockerfile:3:1: unknown instruction: FOO`. */
import { BerthError, invalidArgument } from '../../common/errors.js';

export function dockerfileError(file: string, line: number, column: number, message: string): BerthError {
  return invalidArgument(`${file}:${line}:${column}: ${message}`);
}

/** Restate an error from expansion or argument parsing at an instruction's position. */
export function atPosition(file: string, line: number, column: number, err: unknown): unknown {
  if (!(err instanceof BerthError) || err.kind !== 'invalid-argument') return err;
  if (/^[^:\s]+:\d+:\d+: /.test(err.message)) return err;
  return dockerfileError(file, line, column, err.message);
}
