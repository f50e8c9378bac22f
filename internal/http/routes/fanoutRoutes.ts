import { Hono } from 'hono';
import type { NotificationServiceDeps } from '../../service/notificationService.ts';
import { getFanout } from '../../service/fanoutService.ts';
import { fanoutJson } from '../request/fanoutJson.ts';
import { uuidParam } from '../request/pathParams.ts';

/** `GET /fanouts/:id`: how far a fan-out got and where its notifications are. */
export function fanoutRoutes(deps: Pick<NotificationServiceDeps, 'sql' | 'requestTimeoutMs'>): Hono {
  const app = new Hono();
  app.get('/:id', async (c) => c.json(fanoutJson(await getFanout(deps, uuidParam(c.req.param('id'), 'fan-out')))));
  return app;
}
