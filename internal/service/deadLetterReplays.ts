import type { ReplaySummary } from '../domain/deadLetters.ts';
import type { Sql } from '../platform/database.ts';
import { failedIdBatches, type DeadLetterFilter } from './deadLetterSearch.ts';
import { replayDeadLetters, type ReplayResult } from './deadLetters.ts';
import type { NotificationQueue } from '../queue/notificationQueue.ts';
import { insertReplayRecord } from '../repository/deadLetterReplays.ts';

/** Ids replayed per statement, so a large replay neither holds many locks nor builds huge commands. */
export const REPLAY_BATCH_SIZE = 500;

/**
 * What to replay: these ids, every FAILED row matching a filter (an empty filter: all of them), or
 * every id on the dead-letter list named `list` (the DLQ script's `replay --all`).
 */
export type ReplaySelection = { ids: string[] } | { all: true; filter: DeadLetterFilter } | { all: true; list: string };

/** Hears each batch as it is done, and how far the replay got (`total` when known at the start). */
export type ReplayProgress = (result: ReplayResult, progress: { processed: number; total?: number }) => void;

/**
 * Replays dead letters in batches of REPLAY_BATCH_SIZE through `replayDeadLetters`, then records
 * the replay with what was asked and how many went back. A replay cut short by an error is recorded
 * with the count it reached (when PostgreSQL still answers) before the error is passed on; sending
 * the same request again replays the rest, since what went back is no longer FAILED.
 */
export async function replayAndRecord(
  deps: { sql: Sql; queue: NotificationQueue },
  selection: ReplaySelection,
  options: { dryRun: boolean; requestedBy: string; onBatch?: ReplayProgress },
): Promise<ReplaySummary> {
  const record = { dryRun: options.dryRun, requestedBy: options.requestedBy };
  const { batches, total } = await batchesOf(deps, selection);
  let replayed = 0;
  let skipped = 0;
  try {
    for await (const ids of batches) {
      const result = await replayDeadLetters(deps.sql, deps.queue, ids, options.dryRun);
      replayed += result.replayed.length;
      skipped += result.skipped.length;
      options.onBatch?.(result, { processed: replayed + skipped, total });
    }
  } catch (err) {
    // The batches before the failing one did go back: that is recorded before the error goes on.
    await recordReplay(deps.sql, selection, { ...record, count: replayed }).catch(() => {});
    throw err;
  }
  const replayId = await recordReplay(deps.sql, selection, { ...record, count: replayed });
  return { replay_id: replayId, dry_run: options.dryRun, replayed, skipped };
}

/** The selection's ids in batches of REPLAY_BATCH_SIZE; `total` unless they are found as they go (a filter). */
async function batchesOf(
  deps: { sql: Sql; queue: NotificationQueue },
  selection: ReplaySelection,
): Promise<{ batches: Iterable<string[]> | AsyncIterable<string[]>; total?: number }> {
  if ('filter' in selection) return { batches: failedIdBatches(deps.sql, selection.filter, REPLAY_BATCH_SIZE) };
  const ids = [...new Set('ids' in selection ? selection.ids : await deps.queue.deadLetters())];
  return { batches: slices(ids, REPLAY_BATCH_SIZE), total: ids.length };
}

/** Writes the dead_letter_replays row; `filter` is `{ids}`, `{all: true, list}` or `{all: true, ...filters}`. */
async function recordReplay(
  sql: Sql,
  selection: ReplaySelection,
  record: { requestedBy: string; dryRun: boolean; count: number },
): Promise<string> {
  const filter = 'ids' in selection ? { ids: selection.ids } : 'list' in selection ? selection : { all: true, ...selection.filter };
  return insertReplayRecord(sql, { requestedBy: record.requestedBy, filter, count: record.count, dryRun: record.dryRun });
}

function* slices<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
