import type { Sql } from '../platform/database.ts';
import type { NotificationRow } from '../domain/notification.ts';
import type { NotificationQueue } from '../queue/notificationQueue.ts';
import { findNotifications, markDeadLettered, resetForReplay, unmarkDeadLettered } from '../repository/deadLetters.ts';

/**
 * Pushes FAILED notifications' ids onto the dead-letter list and records that they are there. A
 * crash between the two leaves the row unmarked; maintenance pushes it again, and a duplicate entry
 * is harmless (replay and purge remove every occurrence).
 */
export async function sendToDeadLetters(sql: Sql, queue: NotificationQueue, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await queue.deadLetter(ids);
  await markDeadLettered(sql, ids);
}

export interface DeadLetter {
  id: string;
  /** Undefined when the list names an id PostgreSQL does not know (deleted since). */
  notification?: NotificationRow;
}

/** The dead-letter list, oldest first, with each notification's row. */
export async function listDeadLetters(sql: Sql, queue: NotificationQueue): Promise<DeadLetter[]> {
  const ids = [...new Set(await queue.deadLetters())];
  const rows = new Map((await findNotifications(sql, ids)).map((r) => [r.id, r]));
  return ids.map((id) => ({ id, notification: rows.get(id) }));
}

export interface ReplayResult {
  /** Reset to PENDING with retry_count 0 and queued again. */
  replayed: string[];
  /** Not FAILED (already replayed, or unknown): their stale list entries were dropped. */
  skipped: string[];
}

/**
 * Puts FAILED notifications back to PENDING with retry_count 0, drops them from the dead-letter
 * list, and queues them. PostgreSQL is changed first: if the push is lost maintenance queues the
 * row. The list entries go before the push, so an entry added by a quick new failure is not
 * removed with the old one; a row that failed again in the meantime anyway is unmarked so the
 * dead-letter relister lists it again. With `dryRun`, reports what it would do and changes nothing.
 */
export async function replayDeadLetters(
  sql: Sql,
  queue: NotificationQueue,
  ids: string[],
  dryRun: boolean,
): Promise<ReplayResult> {
  const unique = [...new Set(ids)];
  if (dryRun) {
    const failed = new Set((await findNotifications(sql, unique)).filter((r) => r.status === 'FAILED').map((r) => r.id));
    return { replayed: unique.filter((id) => failed.has(id)), skipped: unique.filter((id) => !failed.has(id)) };
  }
  const replayed = await resetForReplay(sql, unique);
  await queue.removeDeadLetters(unique);
  await unmarkDeadLettered(sql, replayed);
  await queue.push(replayed);
  const done = new Set(replayed);
  return { replayed, skipped: unique.filter((id) => !done.has(id)) };
}

/**
 * Empties the dead-letter list as it was when read (the rows stay FAILED, as history); ids that
 * fail while it runs stay listed. Returns the ids it removed.
 */
export async function purgeDeadLetters(queue: NotificationQueue, dryRun: boolean): Promise<string[]> {
  const entries = await queue.deadLetters();
  if (!dryRun) await queue.dropOldestDeadLetters(entries.length);
  return [...new Set(entries)];
}
