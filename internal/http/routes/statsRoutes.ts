import { OpenAPIHono } from '@hono/zod-openapi';
import { readStats, statsJsonSchema, type StatsDeps } from '../../service/statsService.ts';
import { json } from '../openapi/answers.ts';
import { readHandler } from '../openapi/readHandler.ts';
import { operatorRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';

const statsRoute = operatorRoutes('Operations').get('/', {
  summary: 'Totals by status, failed attempts, delivery time, queue lengths, active workers',
  responses: { 200: json(statsJsonSchema, 'the figures') },
});

/** `GET /stats`: totals by status, failed attempts, delivery time, queue lengths, active workers. */
export function statsRoutes(deps: StatsDeps): OpenAPIHono {
  const app = new OpenAPIHono();
  serveRoute(app, statsRoute, readHandler(() => readStats(deps)));
  return app;
}
