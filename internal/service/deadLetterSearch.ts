import { z } from 'zod';
import { timestampSchema } from '../domain/timestamp.ts';
import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { ValidationError } from '../domain/errors.ts';
import type { DeadLetterPage } from '../domain/deadLetters.ts';
import { toNotificationJson } from '../domain/notification.ts';
import { findFailed, findFailedIds, type FailedFilter, type FailedPosition } from '../repository/deadLetters.ts';

export type { FailedFilter as DeadLetterFilter } from '../repository/deadLetters.ts';

/**
 * Dead letters as PostgreSQL knows them: every FAILED row, whether or not its id is still on
 * Redis's dead-letter list (lost with Redis, purged, never pushed). Newest first, a page at a time.
 */
export async function searchDeadLetters(
  deps: { sql: Sql; requestTimeoutMs: number },
  filter: FailedFilter,
  page: { limit: number; cursor?: string },
): Promise<DeadLetterPage> {
  const after = page.cursor === undefined ? undefined : decodeCursor(page.cursor);
  // One more than asked for, so the last page is known to be the last without another request.
  const rows = await runWithDeadline(deps.requestTimeoutMs, () => findFailed(deps.sql, filter, after, page.limit + 1));
  const items = rows.slice(0, page.limit);
  const last = items.at(-1);
  return {
    items: items.map(toNotificationJson),
    next_cursor: rows.length > page.limit && last ? encodeCursor({ at: last.position_at, id: last.id }) : null,
  };
}

/**
 * The ids of the FAILED rows matching `filter`, newest first, `size` at a time. Walks by position,
 * not by status, so it ends even on a dry run (which changes nothing) and never revisits a row that
 * fails again while it runs (that failure is newer than where the walk is).
 */
export async function* failedIdBatches(sql: Sql, filter: FailedFilter, size: number): AsyncGenerator<string[]> {
  let after: FailedPosition | undefined;
  for (;;) {
    const batch = await findFailedIds(sql, filter, after, size);
    if (batch.length > 0) yield batch.map((r) => r.id);
    if (batch.length < size) return;
    after = batch.at(-1);
  }
}

const positionSchema = z.object({ at: timestampSchema, id: z.guid() });

/** Opaque to clients: the last row's failure time to the microsecond and its id. */
function encodeCursor(position: FailedPosition): string {
  return Buffer.from(`${position.at}|${position.id}`).toString('base64url');
}

function decodeCursor(cursor: string): FailedPosition {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const parsed = positionSchema.safeParse({ at, id });
  if (!parsed.success) throw new ValidationError('cursor must be a next_cursor from an earlier page', 'invalid_request');
  return parsed.data;
}
