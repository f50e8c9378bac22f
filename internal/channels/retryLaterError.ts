/**
 * A failed attempt whose provider said when to try again (HTTP 429 or 503 with `Retry-After`).
 * The worker waits at least `retryAfterMs` before the next attempt, longer if its backoff says so.
 */
export class RetryLaterError extends Error {
  override name = 'RetryLaterError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}
