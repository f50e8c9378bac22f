import { Hono } from 'hono';
import type { Sql } from '../database.ts';
import { runWithDeadline } from '../deadline.ts';
import type { Redis } from '../redis.ts';

const READINESS_TIMEOUT_MS = 2000;

export interface HealthDeps {
  sql: Sql;
  redis: Redis;
  /** True once the process is shutting down: it stops looking ready so load balancers move away. */
  isDraining: () => boolean;
}

export function healthRoutes(deps: HealthDeps): Hono {
  const app = new Hono();

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', async (c) => {
    const [postgres, redis] = await Promise.all([
      probe(() => runWithDeadline(READINESS_TIMEOUT_MS, () => deps.sql`select 1`)),
      probe(() => deps.redis.ping()),
    ]);
    const draining = deps.isDraining();
    const ready = postgres && redis && !draining;
    return c.json(
      { status: ready ? 'ready' : 'unavailable', postgres: up(postgres), redis: up(redis), draining },
      ready ? 200 : 503,
    );
  });

  return app;
}

async function probe(check: () => Promise<unknown>): Promise<boolean> {
  return check().then(
    () => true,
    () => false,
  );
}

function up(ok: boolean): 'up' | 'down' {
  return ok ? 'up' : 'down';
}
