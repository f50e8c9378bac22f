import { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { checkReadiness, type ReadinessDeps } from '../../service/readiness.ts';
import { json } from '../openapi/answers.ts';
import { publicRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';

export interface HealthDeps extends ReadinessDeps {
  /** True once the process is shutting down: it stops looking ready so load balancers move away. */
  isDraining: () => boolean;
}

/** `GET /healthz`: the process answers. */
const livenessJsonSchema = z.object({ status: z.literal('ok') }).meta({ id: 'Liveness' });

const upDown = z.enum(['up', 'down']);

/** `GET /readyz`, 200 or 503: whether this process should get traffic, and why not. */
const readinessJsonSchema = z
  .object({ status: z.enum(['ready', 'unavailable']), postgres: upDown, redis: upDown, draining: z.boolean() })
  .meta({ id: 'Readiness' });

// For load balancers and orchestrators: no key, not rate limited.
const health = publicRoutes('Health', { rateLimited: false });

const livenessRoute = health.get('/healthz', {
  summary: 'Liveness',
  responses: { 200: json(livenessJsonSchema, 'the process runs') },
});

const readinessRoute = health.get('/readyz', {
  summary: 'Readiness: route traffic here only while 200',
  responses: {
    200: json(readinessJsonSchema, 'PostgreSQL and Redis answer and the process is not draining'),
    503: json(readinessJsonSchema, 'not ready: which dependency is down, or the process is draining'),
  },
});

export function healthRoutes(deps: HealthDeps): OpenAPIHono {
  const app = new OpenAPIHono();

  serveRoute(app, livenessRoute, (c) => c.json({ status: 'ok' as const }, 200));

  serveRoute(app, readinessRoute, async (c) => {
    const { postgres, redis } = await checkReadiness(deps);
    const draining = deps.isDraining();
    const ready = postgres && redis && !draining;
    const answer: z.infer<typeof readinessJsonSchema> = {
      status: ready ? 'ready' : 'unavailable',
      postgres: up(postgres),
      redis: up(redis),
      draining,
    };
    return ready ? c.json(answer, 200) : c.json(answer, 503);
  });

  return app;
}

function up(ok: boolean): 'up' | 'down' {
  return ok ? 'up' : 'down';
}
