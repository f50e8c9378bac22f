import postgres from 'postgres';

// SQLSTATE classes that mean "the server cannot serve you now", not "your statement is wrong":
// 08 connection exception, 53 insufficient resources, 57 operator intervention (e.g. shutdown).
const UNAVAILABLE_SQLSTATE_CLASSES = ['08', '53', '57'];

/**
 * True when a PostgreSQL error says the server is unreachable or refusing work, as opposed to a
 * statement error. postgres.js reports network failures as plain errors with a `code` such as
 * ECONNREFUSED or CONNECTION_CLOSED, and server refusals as PostgresError with an SQLSTATE.
 */
export function isPostgresUnavailable(err: unknown): boolean {
  if (err instanceof postgres.PostgresError) {
    return UNAVAILABLE_SQLSTATE_CLASSES.includes(err.code.slice(0, 2));
  }
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(E[A-Z]+|CONNECT(ION)?_[A-Z_]+)$/.test(code);
}

/** True when PostgreSQL aborted a statement to break a deadlock (40P01) or a serialization conflict (40001): trying again may pass. */
export function isTransactionConflict(err: unknown): boolean {
  return err instanceof postgres.PostgresError && (err.code === '40P01' || err.code === '40001');
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
