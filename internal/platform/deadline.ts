import { UnavailableError } from '../domain/errors.ts';
import { isPostgresUnavailable } from '../domain/dependencyErrors.ts';

/** Thrown inside a transaction whose caller already answered 503, so the transaction rolls back. */
class AbandonedError extends Error {
  override name = 'AbandonedError';
}

/**
 * Bounds how long a request waits for PostgreSQL, without letting an abandoned write land later.
 *
 * `run` answers 503 once `ms` pass. The write keeps going in the background (postgres.js cannot
 * cancel a queued query), but it must call `beforeCommit()` as its last step inside the
 * transaction: after the deadline that throws, and the transaction rolls back. Once
 * `beforeCommit()` has passed, the caller waits for COMMIT's outcome instead, because the write
 * may now land and a refusal would be a lie.
 */
export async function runWithDeadline<T>(ms: number, write: (beforeCommit: () => void) => Promise<T>): Promise<T> {
  let state: 'open' | 'committing' | 'abandoned' = 'open';
  const beforeCommit = () => {
    if (state === 'abandoned') throw new AbandonedError('the caller stopped waiting');
    state = 'committing';
  };
  const work = write(beforeCommit);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    const fire = () => {
      if (state === 'committing') return; // wait for COMMIT's outcome
      state = 'abandoned';
      reject(new UnavailableError('postgres', new Error(`no answer within ${ms} ms`)));
    };
    timer = setTimeout(fire, ms);
  });
  // The losing side of the race may still reject later; that is expected, not unhandled.
  work.catch(() => {});
  try {
    return await Promise.race([work, expired]);
  } catch (err) {
    if (isPostgresUnavailable(err)) throw new UnavailableError('postgres', err);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
