import type { MiddlewareHandler } from 'hono';
import { OverloadedError } from '../../domain/errors.ts';
import { readBacklog, type BacklogDeps } from '../../service/backlog.ts';

/** The oldest queue depth a request is judged on; reading it on every request would add a Redis call to each. */
const DEPTH_MAX_AGE_MS = 1000;
/**
 * From this age on a request starts a new reading in the background, so under steady traffic the
 * reading is renewed before it expires and no request waits for one.
 */
const DEPTH_REFRESH_AGE_MS = DEPTH_MAX_AGE_MS / 2;
/**
 * How long a request waits for a reading when the last one has expired (the first request after a
 * quiet spell). Redis answers in well under a millisecond; a slower answer means it is in trouble,
 * and then the request passes, as it does while Redis cannot say.
 */
const DEPTH_WAIT_MS = 250;
/** What a refused producer is told to wait. */
const RETRY_AFTER_MS = 5000;

/**
 * Refuses new notifications with 503 and Retry-After while more than `maxDepth` ids wait in the
 * queue, so a backlog the workers cannot drain stops growing instead of piling up without limit.
 * Each request is judged on a reading at most a second old; while Redis cannot say, requests pass
 * (PostgreSQL is the record, and maintenance queues them later).
 */
export function refuseWhenBacklogged(deps: BacklogDeps, maxDepth: number): MiddlewareHandler {
  const depth = new QueueDepthReading(deps);
  return async (c, next) => {
    if (maxDepth > 0 && c.req.method === 'POST') {
      const waiting = await depth.current();
      if (waiting !== undefined && waiting > maxDepth) {
        throw new OverloadedError(`${waiting} notifications are waiting for delivery (limit ${maxDepth}); nothing was stored, retry later`, RETRY_AFTER_MS);
      }
    }
    await next();
  };
}

/** The queue depth as last read, with one reading in flight at most, shared by every request waiting for it. */
class QueueDepthReading {
  private depth: number | undefined;
  private readAt = -Infinity;
  private reading: Promise<void> | undefined;

  constructor(private readonly deps: BacklogDeps) {}

  /** The depth at most DEPTH_MAX_AGE_MS old, or undefined when Redis could not say in time. */
  async current(): Promise<number | undefined> {
    const age = Date.now() - this.readAt;
    if (age >= DEPTH_REFRESH_AGE_MS) this.reading ??= this.read();
    if (age < DEPTH_MAX_AGE_MS) return this.depth;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, DEPTH_WAIT_MS)));
    await Promise.race([this.reading, timedOut]).finally(() => clearTimeout(timer));
    return Date.now() - this.readAt < DEPTH_MAX_AGE_MS ? this.depth : undefined;
  }

  private async read(): Promise<void> {
    const startedAt = Date.now();
    try {
      this.depth = await readBacklog(this.deps);
    } catch {
      this.depth = undefined;
    }
    // Stamped with when the read began: the depth is at least that fresh, and a slow answer is not
    // taken for a newer one than it is.
    this.readAt = startedAt;
    this.reading = undefined;
  }
}
