/**
 * Errors a caller must branch on. Each maps to one HTTP status in `internal/http/errorHandler.ts`;
 * anything else that reaches that boundary is a bug and answers 500.
 */

/** The request is malformed or breaks a rule; nothing was stored. */
export class ValidationError extends Error {
  override name = 'ValidationError';
  constructor(
    message: string,
    readonly code = 'invalid_request',
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** The request carries no credentials, or ones that do not check out. */
export class UnauthorizedError extends Error {
  override name = 'UnauthorizedError';
}

/** The credentials are good but do not allow this. */
export class ForbiddenError extends Error {
  override name = 'ForbiddenError';
}

/** The caller sent more than its share; it may try again after `retryAfterMs`. */
export class TooManyRequestsError extends Error {
  override name = 'TooManyRequestsError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/** The service has more work waiting than it takes on; nothing was stored, retry after `retryAfterMs`. */
export class OverloadedError extends Error {
  override name = 'OverloadedError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

/** The same Idempotency-Key was used before with a different request body. */
export class IdempotencyConflictError extends Error {
  override name = 'IdempotencyConflictError';
}

/** PostgreSQL or Redis did not answer in time; the request changed nothing and may be retried. */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
  constructor(
    readonly dependency: 'postgres' | 'redis',
    cause?: unknown,
  ) {
    super(`${dependency} is unavailable`, { cause });
  }
}
