import type { MiddlewareHandler } from 'hono';
import { OverloadedError } from '../../domain/errors.ts';
import { readBacklog, type BacklogDeps } from '../../service/backlog.ts';

/** How stale the queue depth may be; reading it on every request would add a Redis call to each. */
const DEPTH_REFRESH_MS = 1000;
/** What a refused producer is told to wait. */
const RETRY_AFTER_MS = 5000;

/**
 * Refuses new notifications with 503 and Retry-After while more than `maxDepth` ids wait in the
 * queue, so a backlog the workers cannot drain stops growing instead of piling up without limit.
 * The depth is read at most once a second, in the background; while Redis cannot say, requests
 * pass (PostgreSQL is the record, and maintenance queues them later).
 */
export function refuseWhenBacklogged(deps: BacklogDeps, maxDepth: number): MiddlewareHandler {
  let depth = 0;
  let readAt = 0;
  let reading = false;
  const refresh = () => {
    if (reading || Date.now() - readAt < DEPTH_REFRESH_MS) return;
    reading = true;
    readBacklog(deps)
      .then((d) => (depth = d), () => (depth = 0))
      .finally(() => {
        readAt = Date.now();
        reading = false;
      });
  };
  return async (c, next) => {
    if (maxDepth > 0 && c.req.method === 'POST') {
      refresh();
      if (depth > maxDepth) {
        throw new OverloadedError(`${depth} notifications are waiting for delivery (limit ${maxDepth}); nothing was stored, retry later`, RETRY_AFTER_MS);
      }
    }
    await next();
  };
}
