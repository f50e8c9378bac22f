import { OpenAPIHono } from '@hono/zod-openapi';
import { livenessJsonSchema, readinessJsonSchema, type Liveness } from '../../domain/health.ts';
import { checkReadiness, type ReadinessDeps } from '../../service/readiness.ts';
import { json } from '../openapi/answers.ts';
import { publicRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';

export interface HealthDeps extends ReadinessDeps {
  /** True once the process is shutting down: it stops looking ready so load balancers move away. */
  isDraining: () => boolean;
}

// For load balancers and orchestrators: no key, not rate limited.
const health = publicRoutes('Health', { rateLimited: false });

const livenessRoute = health.get('/healthz', {
  summary: 'Liveness',
  description: 'Answers while the process runs; it checks no dependency (`/readyz` does).',
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

  const alive: Liveness = { status: 'ok' };
  serveRoute(app, livenessRoute, (c) => c.json(alive, 200));

  serveRoute(app, readinessRoute, async (c) => {
    const answer = await checkReadiness(deps, deps.isDraining);
    return answer.status === 'ready' ? c.json(answer, 200) : c.json(answer, 503);
  });

  return app;
}
