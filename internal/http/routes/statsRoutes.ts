import { Hono } from 'hono';
import { readStats, type StatsDeps } from '../../service/statsService.ts';

/** `GET /stats`: totals by status, failed attempts, delivery time, queue lengths, active workers. */
export function statsRoutes(deps: StatsDeps): Hono {
  const app = new Hono();
  app.get('/', async (c) => c.json(await readStats(deps)));
  return app;
}
