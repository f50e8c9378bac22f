import { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ValidationError } from '../../domain/errors.ts';
import { throughputJsonSchema } from '../../domain/throughput.ts';
import type { NotificationServiceDeps } from '../../service/notificationService.ts';
import { readThroughput } from '../../service/throughput.ts';
import { json, text } from '../openapi/answers.ts';
import { operatorRoutes, publicRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { refuseAs } from '../request/invalidInput.ts';
import { htmlPage } from './htmlPage.ts';

/** The longest window `GET /admin/throughput` answers: three hours of minutes is already a wide chart. */
const MAX_THROUGHPUT_MINUTES = 180;

/** `GET /admin/throughput` query. */
const throughputQuerySchema = z.object({
  minutes: z.coerce.number().int().min(1).max(MAX_THROUGHPUT_MINUTES).default(15),
});

// The page holds no data: it asks for an admin key and reads the routes with it.
const pageRoute = publicRoutes('Operations', { rateLimited: true }).get('/dashboard', {
  summary: "Operators' dashboard (an HTML page that asks for an admin API key)",
  responses: { 200: text('text/html', 'the page') },
});

const throughputRoute = operatorRoutes('Operations').get('/throughput', {
  summary: 'Notifications created, sent and failed per minute, over the last `minutes`',
  request: { query: throughputQuerySchema },
  responses: { 200: json(throughputJsonSchema, 'one count per minute, oldest first') },
  errors: { 400: 'a bad `minutes`' },
});

const badMinutes = refuseAs(() => {
  throw new ValidationError(`minutes must be a whole number from 1 to ${MAX_THROUGHPUT_MINUTES}`, 'invalid_request');
});

/**
 * The operators' dashboard, mounted under `/admin`: the page itself, which holds no data and is
 * served without a key (app.ts exempts exactly its path), and the per-minute counts it charts,
 * which need the admin scope like every other `/admin` route.
 */
export function dashboardRoutes(deps: Pick<NotificationServiceDeps, 'sql' | 'requestTimeoutMs'>): OpenAPIHono {
  const app = new OpenAPIHono();

  serveRoute(app, pageRoute, htmlPage('dashboard.html'));

  serveRoute(app, throughputRoute, async (c) => c.json(await readThroughput(deps, c.req.valid('query').minutes), 200), badMinutes);

  return app;
}
