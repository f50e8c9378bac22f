import { Hono } from 'hono';
import { z } from 'zod';
import { checkReadiness, type ReadinessDeps } from '../../service/readiness.ts';

export interface HealthDeps extends ReadinessDeps {
  /** True once the process is shutting down: it stops looking ready so load balancers move away. */
  isDraining: () => boolean;
}

/** `GET /healthz`: the process answers. */
export const livenessJsonSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Liveness' });

const upDown = z.enum(['up', 'down']);

/** `GET /readyz`, 200 or 503: whether this process should get traffic, and why not. */
export const readinessJsonSchema = z
  .object({ status: z.enum(['ready', 'unavailable']), postgres: upDown, redis: upDown, draining: z.boolean() })
  .meta({ id: 'Readiness' });

export function healthRoutes(deps: HealthDeps): Hono {
  const app = new Hono();

  app.get('/healthz', (c) => c.json({ status: 'ok' } satisfies z.infer<typeof livenessJsonSchema>));

  app.get('/readyz', async (c) => {
    const { postgres, redis } = await checkReadiness(deps);
    const draining = deps.isDraining();
    const ready = postgres && redis && !draining;
    const answer: z.infer<typeof readinessJsonSchema> = {
      status: ready ? 'ready' : 'unavailable',
      postgres: up(postgres),
      redis: up(redis),
      draining,
    };
    return c.json(answer, ready ? 200 : 503);
  });

  return app;
}

function up(ok: boolean): 'up' | 'down' {
  return ok ? 'up' : 'down';
}
