import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/**
 * The lengths a registry samples at each scrape: the notification queue's and the dead-letter list's,
 * read from Redis. Structural, so metrics need not know the queue (the notification queue is one).
 */
export interface QueueLengths {
  depth(): Promise<number>;
  deadLetterDepth(): Promise<number>;
}

/**
 * A Prometheus registry of one process's own, with Node's process metrics (CPU, memory, event loop
 * lag, GC) under their standard names, and the queue's lengths read from Redis at each scrape.
 *
 * Never prom-client's global registry: two processes' worth of metrics built in one test process
 * (an API and a worker) would count into each other.
 */
export function newProcessRegistry(queue: QueueLengths): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Every process reports the same shared lists; aggregate them with max(), not sum().
  new Gauge({
    name: 'herald_queue_depth',
    help: 'Notification ids waiting in the Redis queue (NaN when Redis did not answer the scrape)',
    registers: [registry],
    async collect() {
      this.set(await lengthOrNaN(() => queue.depth()));
    },
  });
  new Gauge({
    name: 'herald_dlq_depth',
    help: 'Ids on the Redis dead-letter list (NaN when Redis did not answer the scrape)',
    registers: [registry],
    async collect() {
      this.set(await lengthOrNaN(() => queue.deadLetterDepth()));
    },
  });
  return registry;
}

/**
 * A scrape must not fail because Redis is away, and must not show a stale or made-up length either:
 * NaN says "unknown", and PostgreSQL still has the record (`GET /stats`, the SQL in the README).
 */
async function lengthOrNaN(read: () => Promise<number>): Promise<number> {
  return read().catch(() => Number.NaN);
}
