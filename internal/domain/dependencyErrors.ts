// SQLSTATE classes that mean "the server cannot serve you now", not "your statement is wrong":
// 08 connection exception, 53 insufficient resources, 57 operator intervention (e.g. shutdown).
const UNAVAILABLE_SQLSTATE_CLASSES = ['08', '53', '57'];

/**
 * An error the server sent (postgres.js' PostgresError), told by its name rather than by the
 * driver's class, so these rules stay pure: the domain imports no I/O library.
 */
function serverError(err: unknown): { code: string } | undefined {
  if (!(err instanceof Error) || err.name !== 'PostgresError') return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? { code } : undefined;
}

/**
 * True when a PostgreSQL error says the server is unreachable or refusing work, as opposed to a
 * statement error. postgres.js reports network failures as plain errors with a `code` such as
 * ECONNREFUSED or CONNECTION_CLOSED, and server refusals as PostgresError with an SQLSTATE.
 */
export function isPostgresUnavailable(err: unknown): boolean {
  const refusal = serverError(err);
  if (refusal) return UNAVAILABLE_SQLSTATE_CLASSES.includes(refusal.code.slice(0, 2));
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(E[A-Z]+|CONNECT(ION)?_[A-Z_]+)$/.test(code);
}

/** True when PostgreSQL aborted a statement to break a deadlock (40P01) or a serialization conflict (40001): trying again may pass. */
export function isTransactionConflict(err: unknown): boolean {
  const code = serverError(err)?.code;
  return code === '40P01' || code === '40001';
}

/**
 * True when an ioredis error says Redis is unreachable (a closed connection, one refusing commands
 * while offline, a command that timed out or ran out of retries), not that a command was wrong.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return /^(Connection is closed|Stream isn't writeable|Command timed out)/.test(err.message);
}
