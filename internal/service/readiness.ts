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

/** Which dependencies answered within READINESS_TIMEOUT_MS. */
export interface Readiness {
  postgres: boolean;
  redis: boolean;
}

/** Asks PostgreSQL and Redis at once; one that fails or is too slow counts as down. */
export async function checkReadiness(deps: ReadinessDeps): Promise<Readiness> {
  const [postgres, redis] = await Promise.all([answers(() => pingDatabase(deps.sql)), answers(() => pingRedis(deps.redis))]);
  return { postgres, redis };
}

function answers(ping: () => Promise<void>): Promise<boolean> {
  return runWithDeadline(READINESS_TIMEOUT_MS, ping).then(
    () => true,
    () => false,
  );
}
