import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { isPostgresUnavailable } from '../../internal/domain/dependencyErrors.ts';
import { connectDatabase } from '../../internal/platform/database.ts';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { rejectionOf } from '../support/expectedErrors.ts';
import { useTestScope } from '../support/testScope.ts';

/** Longer than any answer of a local PostgreSQL: a query still unanswered by then never will be. */
const ANSWER_WITHIN_MS = 3000;

async function answerOf<T>(query: Promise<T>): Promise<T | 'no answer'> {
  return Promise.race([query, sleep(ANSWER_WITHIN_MS).then(() => 'no answer' as const)]);
}

/**
 * postgres.js as patched in patches/ (see README, "Patched dependencies"), through the pool the
 * processes use. A transaction whose connection drops under a statement makes postgres.js send
 * its own ROLLBACK on that connection after it closed: unpatched, that write threw in a
 * setImmediate and ended the process; with only the upstream guard of that throw, the ROLLBACK
 * stayed queued unsent and took the answer of the next query after the reconnect.
 */
describe('a pool connection that drops under a transaction', () => {
  const db = useTestDatabase();
  const scope = useTestScope();

  it('rejects the transaction as unavailable, and the pool then answers each query with its own result', async () => {
    const pg = await scope.proxy(db.url);
    // One connection, so the queries after the cut run on the connection that dropped.
    const sql = connectDatabase(pg.urlFor(db.url), { max: 1 });
    scope.defer(() => sql.end({ timeout: 1 }));
    await sql`select 1`;

    const transaction = sql.begin(async (tx) => {
      await tx`select pg_sleep(0.5)`;
    });
    await sleep(150);
    pg.cut();
    const err = await rejectionOf(Error, transaction, 'the transaction');
    expect(err).toMatchObject({ code: 'CONNECTION_CLOSED' });
    expect(isPostgresUnavailable(err)).toBe(true);
    pg.restore();

    for (const n of [1, 2, 3]) {
      expect(await answerOf(sql<{ n: number }[]>`select ${n}::int as n`.then(([row]) => row))).toEqual({ n });
    }
    const together = await Promise.all([4, 5, 6].map((n) => answerOf(sql<{ n: number }[]>`select ${n}::int as n`.then(([row]) => row))));
    expect(together).toEqual([{ n: 4 }, { n: 5 }, { n: 6 }]);
  });
});
