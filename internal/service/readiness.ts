import type { Readiness } from '../domain/health.ts';
import type { Redis } from '../platform/redis.ts';
import type { Sql } from '../platform/database.ts';
import { runWithDeadline } from '../platform/deadline.ts';
import { pingDatabase } from '../repository/databasePing.ts';
import { pingRedis } from '../queue/redisPing.ts';

/** How long a readiness check waits for each dependency: a load balancer polls again soon. */
const READINESS_TIMEOUT_MS = 2000;

export interface ReadinessDeps {
  sql: Sql;
  redis: Redis;
}

/**
 * Asks PostgreSQL and Redis at once; one that fails or does not answer within READINESS_TIMEOUT_MS
 * counts as down. Ready only when both answer and the process is not draining, asked after the
 * pings so a drain that began while they ran is seen.
 */
export async function checkReadiness(deps: ReadinessDeps, isDraining: () => boolean): Promise<Readiness> {
  const [postgres, redis] = await Promise.all([answers(() => pingDatabase(deps.sql)), answers(() => pingRedis(deps.redis))]);
  const draining = isDraining();
  return { status: postgres && redis && !draining ? 'ready' : 'unavailable', postgres: up(postgres), redis: up(redis), draining };
}

function answers(ping: () => Promise<void>): Promise<boolean> {
  return runWithDeadline(READINESS_TIMEOUT_MS, ping).then(
    () => true,
    () => false,
  );
}

function up(ok: boolean): 'up' | 'down' {
  return ok ? 'up' : 'down';
}
