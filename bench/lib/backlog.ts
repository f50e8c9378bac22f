import type { BenchContext } from './context.ts';
import { fmt } from './context.ts';

/** Rows per INSERT; ids per LPUSH. */
const INSERT_BATCH = 10_000;
const PUSH_BATCH = 5_000;

/**
 * A backlog of `count` IN_APP notifications as the API would have left them: PENDING, queued now,
 * for 1,000 users, their ids on the Redis list `listKey` oldest first (the end BRPOP takes first).
 * Written with multi-row INSERTs generated in PostgreSQL, then vacuumed and analysed so
 * autovacuum does not start on them in the middle of a measurement.
 */
export async function insertBacklog(ctx: BenchContext, count: number, listKey: string): Promise<void> {
  const { sql, redis } = ctx.env;
  const started = Date.now();
  let lastReport = started;
  let pushing: Promise<unknown> = Promise.resolve();
  for (let from = 0; from < count; from += INSERT_BATCH) {
    const to = Math.min(from + INSERT_BATCH, count) - 1;
    const rows = await sql<{ id: string }[]>`
      insert into notifications (id, user_id, type, title, body, data, queued_at)
      select gen_random_uuid(), 'user-' || (i % 1000), 'IN_APP', 'Your report is ready',
             'Report ' || i || ' finished processing and is ready to download.',
             jsonb_build_object('report', i), now()
      from generate_series(${from}::int, ${to}::int) as i
      returning id`;
    await pushing;
    const pipeline = redis.pipeline();
    for (let i = 0; i < rows.length; i += PUSH_BATCH) {
      pipeline.lpush(listKey, ...rows.slice(i, i + PUSH_BATCH).map((r) => r.id));
    }
    pushing = pipeline.exec();
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      ctx.say(`  backlog: ${fmt(to + 1)} / ${fmt(count)} inserted`);
    }
  }
  await pushing;
  const queued = await redis.llen(listKey);
  if (queued !== count) throw new Error(`backlog: ${queued} ids queued for ${count} rows`);
  await sql`vacuum (analyze) notifications`;
  ctx.say(`  backlog of ${fmt(count)} ready in ${fmt((Date.now() - started) / 1000, 1)} s`);
}
