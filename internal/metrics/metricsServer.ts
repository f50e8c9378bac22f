import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { Registry } from 'prom-client';
import { metricsAnswer } from './metricsRoutes.ts';
import type { Logger } from '../platform/logger.ts';

export interface MetricsServer {
  close(): Promise<void>;
}

/**
 * A worker's own HTTP server for Prometheus: `GET /metrics` on `port` (0: any free port, logged),
 * on every interface, without an API key. It is meant for a scraper on the private network; keep the
 * port closed to anything else (what it shows is counts and timings, but nobody outside needs them).
 *
 * A port that cannot be opened is logged, and the worker goes on delivering: notifications matter
 * more than their metrics, and the scraper's `up` series shows the target is missing.
 */
export function serveMetrics(registry: Registry, port: number, logger: Logger): MetricsServer {
  const app = new Hono();
  app.get('/metrics', (c) => metricsAnswer(c, registry));
  const server = serve({ fetch: app.fetch, port }, (info: AddressInfo) => {
    logger.info({ port: info.port }, 'metrics listening');
  });
  server.on('error', (err) => logger.error({ err, port }, 'metrics server failed; this worker goes on without /metrics'));
  return {
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        if ('closeAllConnections' in server) server.closeAllConnections();
      }),
  };
}
