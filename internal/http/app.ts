import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { NotificationServiceDeps } from '../notificationService.ts';
import type { Redis } from '../redis.ts';
import { handleError } from './errorHandler.ts';
import { healthRoutes } from './healthRoutes.ts';
import { fanoutRoutes } from './fanoutRoutes.ts';
import { inboxRoutes } from './inboxRoutes.ts';
import { notificationRoutes } from './notificationRoutes.ts';
import { topicRoutes } from './topicRoutes.ts';
import { userRoutes } from './userRoutes.ts';

export interface AppDeps extends NotificationServiceDeps {
  redis: Redis;
  isDraining: () => boolean;
}

/** The HTTP API. Built without a server so tests can drive it with `app.request()`. */
export function createApp(deps: AppDeps): Hono {
  const app = new Hono();
  // While draining, each answer closes its connection, so kept-alive clients reconnect to a live
  // process instead of holding this one open until it cuts them off.
  app.use(async (c, next) => {
    await next();
    if (deps.isDraining()) c.header('Connection', 'close');
  });
  app.route('/', healthRoutes(deps));
  app.route('/notifications', notificationRoutes(deps));
  app.route('/users', inboxRoutes(deps));
  app.route('/users', userRoutes(deps));
  app.route('/topics', topicRoutes(deps));
  app.route('/fanouts', fanoutRoutes(deps));
  app.notFound((c) => {
    throw new HTTPException(404, { message: `no route for ${c.req.method} ${c.req.path}` });
  });
  app.onError(handleError(deps.logger));
  return app;
}
