import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import {
  ForbiddenError,
  IdempotencyConflictError,
  NotFoundError,
  OverloadedError,
  TooManyRequestsError,
  UnauthorizedError,
  UnavailableError,
  ValidationError,
} from '../domain/errors.ts';
import { isPostgresUnavailable, isRedisUnavailable } from '../domain/dependencyErrors.ts';
import type { Logger } from '../platform/logger.ts';

/** Every error the API answers, whatever the status; the OpenAPI document refers to this schema. */
export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'stable, for programs: `invalid_request`, `not_found`, `rate_limited`...' }),
      message: z.string().meta({ description: 'for people: what went wrong and what to do' }),
      details: z.unknown().optional().meta({ description: 'more about the error, e.g. `[{path, message}]` per invalid field' }),
    }),
  })
  .meta({ id: 'Error' });

export type ErrorBody = z.infer<typeof errorBodySchema>;

function errorBody(code: string, message: string, details?: unknown): ErrorBody {
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
    if (err instanceof TooManyRequestsError || err instanceof OverloadedError) {
      c.header('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterMs / 1000))));
    }
    if (status === 401) c.header('WWW-Authenticate', 'Bearer');
    return c.json(body, status);
  };
}

function describe(err: Error): [ContentfulStatusCode, ErrorBody] {
  if (err instanceof ValidationError) return [400, errorBody(err.code, err.message, err.details)];
  if (err instanceof NotFoundError) return [404, errorBody('not_found', err.message)];
  if (err instanceof UnauthorizedError) return [401, errorBody('unauthorized', err.message)];
  if (err instanceof ForbiddenError) return [403, errorBody('forbidden', err.message)];
  if (err instanceof TooManyRequestsError) return [429, errorBody('rate_limited', err.message)];
  if (err instanceof OverloadedError) return [503, errorBody('overloaded', err.message)];
  if (err instanceof IdempotencyConflictError) return [422, errorBody('idempotency_key_reused', err.message)];
  // A dependency's own error that reached here unwrapped (a route with no deadline) is still an outage.
  if (isPostgresUnavailable(err)) return describe(new UnavailableError('postgres', err));
  if (isRedisUnavailable(err)) return describe(new UnavailableError('redis', err));
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
