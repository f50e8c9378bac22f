import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { ForbiddenError, IdempotencyConflictError, NotFoundError, UnauthorizedError, UnavailableError, ValidationError } from '../errors.ts';
import type { Logger } from '../logger.ts';

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** The one place domain errors become HTTP answers. Anything unmapped is a bug: 500, logged. */
export function handleError(logger: Logger) {
  return (err: Error, c: Context) => {
    const [status, body] = describe(err);
    if (status >= 500) {
      logger.error({ err, method: c.req.method, path: c.req.path }, 'request failed');
    }
    if (status === 503) c.header('Retry-After', '1');
    if (status === 401) c.header('WWW-Authenticate', 'Bearer');
    return c.json(body, status);
  };
}

function describe(err: Error): [ContentfulStatusCode, ErrorBody] {
  if (err instanceof ValidationError) return [400, errorBody(err.code, err.message, err.details)];
  if (err instanceof NotFoundError) return [404, errorBody('not_found', err.message)];
  if (err instanceof UnauthorizedError) return [401, errorBody('unauthorized', err.message)];
  if (err instanceof ForbiddenError) return [403, errorBody('forbidden', err.message)];
  if (err instanceof IdempotencyConflictError) return [422, errorBody('idempotency_key_reused', err.message)];
  if (err instanceof UnavailableError) {
    return [503, errorBody('unavailable', `${err.dependency} is unavailable; nothing was stored, retry later`)];
  }
  if (err instanceof HTTPException) {
    return [err.status as ContentfulStatusCode, errorBody(codeFor(err.status), err.message)];
  }
  return [500, errorBody('internal', 'internal error')];
}

function codeFor(status: number): string {
  switch (status) {
    case 413:
      return 'payload_too_large';
    case 415:
      return 'unsupported_media_type';
    case 404:
      return 'not_found';
    default:
      return 'bad_request';
  }
}
