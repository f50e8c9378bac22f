import type { Context, MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { matchedRoutes } from 'hono/route';
import type { Registry } from 'prom-client';
import type { ApiMetrics } from './apiMetrics.ts';

/** The route label of a request no route answered: one series for every unknown path. */
const UNMATCHED = 'unmatched';

/** `GET /metrics`'s answer (declared with the HTTP routes): the registry in Prometheus' text format. */
export async function metricsAnswer(c: Context, registry: Registry): Promise<Response> {
  return c.body(await registry.metrics(), 200, { 'content-type': registry.contentType });
}

/**
 * Counts and times every request passing through it, labelled with the route pattern that matched
 * (`/notifications/:id`), never the raw path, so a client cannot create series at will.
 */
export function measureRequests(metrics: Pick<ApiMetrics, 'requestServed'>): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    let status = 500;
    try {
      await next();
      status = c.res.status;
    } catch (err) {
      // Every error a route or a middleware throws is answered by onError before it gets here; only
      // the not-found handler's 404 passes through, to be answered one level out.
      if (err instanceof HTTPException) status = err.status;
      throw err;
    } finally {
      metrics.requestServed(c.req.method, routePattern(c), status, (performance.now() - started) / 1000);
    }
  };
}

/**
 * The pattern of the route handler that matched, whether or not it ran (a middleware may have
 * answered 401 first). Read from Hono's match (what `c.req.routePath` reads too), skipping the
 * middlewares (method ALL), whose patterns (`*`, `/notifications/*`) say nothing of the route.
 */
function routePattern(c: Context): string {
  return matchedRoutes(c).findLast((route) => route.method !== 'ALL')?.path ?? UNMATCHED;
}
