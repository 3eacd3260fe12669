/** Turning registry error responses into BerthErrors with the registry's own words. */
import { BerthError, invalidArgument, notFound, unavailable } from '../../common/errors.js';
import type { HttpResponse } from './transport.js';

/** The registry refused our credentials (or has none for us). The API can map it to 401. */
export class UnauthorizedError extends BerthError {
  constructor(message: string) {
    super('invalid-argument', message);
    this.name = 'UnauthorizedError';
  }
}

interface ErrorBody {
  errors?: Array<{ code?: string; message?: string; detail?: unknown }>;
}

/** `MANIFEST_UNKNOWN: manifest unknown` from a distribution error body, or the start of any other body. */
export function registryMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as ErrorBody;
    if (Array.isArray(parsed.errors) && parsed.errors.length > 0) {
      return parsed.errors
        .map((e) => [e.code?.toLowerCase().replace(/_/g, ' '), e.message].filter(Boolean).join(': '))
        .join('; ');
    }
  } catch {
    // not JSON
  }
  return body.trim().slice(0, 200);
}

/** Read the body of a failed response and make the error a caller sees. `what` says what was asked. */
export async function responseError(response: HttpResponse, what: string): Promise<BerthError> {
  const body = await response.text(64 * 1024).catch(() => '');
  const detail = registryMessage(body);
  const message = `${what}: ${response.status}${detail ? ` ${detail}` : ''}`;
  switch (response.status) {
    case 401:
    case 403:
      return new UnauthorizedError(message);
    case 404:
      return notFound(message);
    case 400:
    case 405:
    case 413:
      return invalidArgument(message);
    default:
      return unavailable(message);
  }
}
