import { Counter, Histogram, type Registry } from 'prom-client';
import { CHANNELS, type Channel } from '../domain/notification.ts';
import { newProcessRegistry, type QueueLengths } from './processRegistry.ts';

/** Request durations, from a cached key check (milliseconds) to a PostgreSQL timeout (seconds). */
const REQUEST_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What an API process counts: notifications it created, and the requests it answered. */
export class ApiMetrics {
  readonly registry: Registry;
  private readonly created: Counter<'channel'>;
  private readonly requests: Counter<'method' | 'route' | 'status'>;
  private readonly requestSeconds: Histogram<'method' | 'route' | 'status'>;

  constructor(queue: QueueLengths) {
    this.registry = newProcessRegistry(queue);
    const registers = [this.registry];
    this.created = new Counter({
      name: 'herald_notifications_created_total',
      help: 'Notifications stored by this API process, by channel (a topic fan-out\'s are created by the workers and not counted here)',
      labelNames: ['channel'],
      registers,
    });
    // Every channel from the start, so rate() sees a channel's first notification.
    for (const channel of CHANNELS) this.created.inc({ channel }, 0);
    this.requests = new Counter({
      name: 'herald_http_requests_total',
      help: 'HTTP requests answered, by method, matched route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'herald_http_request_duration_seconds',
      help: 'Time to answer an HTTP request (to its headers, for a stream), by method, route pattern and status',
      labelNames: ['method', 'route', 'status'],
      buckets: REQUEST_BUCKETS_SECONDS,
      registers,
    });
  }

  /** `count` notifications on `channel` were committed and answered as created. */
  notificationsCreated(channel: Channel, count: number): void {
    if (count > 0) this.created.inc({ channel }, count);
  }

  /** `route` must be a route pattern (`/notifications/:id`), never a raw path: each value is a series. */
  requestServed(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.requests.inc(labels);
    this.requestSeconds.observe(labels, seconds);
  }
}
