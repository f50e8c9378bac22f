import { OpenAPIHono } from '@hono/zod-openapi';
import type { Registry } from 'prom-client';
import { metricsAnswer } from '../../metrics/metricsRoutes.ts';
import { text } from '../openapi/answers.ts';
import { operatorRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';

const metricsRoute = operatorRoutes('Operations').get('/', {
  summary: "The process's Prometheus metrics",
  responses: { 200: text('text/plain', "Prometheus' text format") },
});

/** `GET /metrics`: the process's registry, for Prometheus to scrape. */
export function metricsRoutes(registry: Registry): OpenAPIHono {
  const app = new OpenAPIHono();
  serveRoute(app, metricsRoute, (c) => metricsAnswer(c, registry));
  return app;
}
