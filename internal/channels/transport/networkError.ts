/**
 * An error as `error_reason` should name it. fetch rejects with a bare "fetch failed" and keeps
 * what went wrong (ECONNREFUSED, ENOTFOUND, a TLS code) in its cause, so a cause with a code wins.
 */
export function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: string; message?: string } | undefined;
  return cause?.code ? `${cause.code}${cause.message ? ` (${cause.message})` : ''}` : err.message;
}
