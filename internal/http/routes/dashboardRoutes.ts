import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { ValidationError } from '../../domain/errors.ts';
import type { NotificationServiceDeps } from '../../service/notificationService.ts';
import { readThroughput } from '../../service/throughput.ts';
import { json, text } from '../openapi/answers.ts';
import { operatorRoutes, publicRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { refuseAs } from '../request/invalidInput.ts';

const DASHBOARD_PAGE = path.join(import.meta.dirname, '..', 'public', 'dashboard.html');
/** The longest window `GET /admin/throughput` answers: three hours of minutes is already a wide chart. */
const MAX_THROUGHPUT_MINUTES = 180;

/** `GET /admin/throughput` query. */
const throughputQuerySchema = z.object({
  minutes: z.coerce.number().int().min(1).max(MAX_THROUGHPUT_MINUTES).default(15),
});

/** `GET /admin/throughput`. */
const throughputJsonSchema = z
  .object({
    minutes: z.int().min(1),
    buckets: z
      .array(
        z.object({
          minute: z.iso.datetime().meta({ description: 'the minute, truncated: counts are for [minute, minute + 1 min)' }),
          created: z.int().min(0).meta({ description: 'notifications created in the minute' }),
          sent: z.int().min(0).meta({ description: 'notifications SENT in the minute' }),
          failed: z.int().min(0).meta({ description: 'notifications that became FAILED in the minute and are FAILED still (a replayed one leaves the count)' }),
        }),
      )
      .meta({ description: 'one per minute, oldest first; the last is the current minute, so far' }),
  })
  .meta({ id: 'Throughput' });

type ThroughputJson = z.infer<typeof throughputJsonSchema>;

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

  serveRoute(app, pageRoute, async (c) => {
    const page = await dashboardPage();
    c.header('Content-Security-Policy', page.policy);
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    return c.html(page.html, 200);
  });

  serveRoute(
    app,
    throughputRoute,
    async (c) => {
      const { minutes } = c.req.valid('query');
      const rows = await readThroughput(deps, minutes);
      const answer: ThroughputJson = {
        minutes,
        buckets: rows.map((r) => ({ minute: r.minute.toISOString(), created: r.created, sent: r.sent, failed: r.failed })),
      };
      return c.json(answer, 200);
    },
    badMinutes,
  );

  return app;
}

let page: Promise<{ html: string; policy: string }> | undefined;

/**
 * The page and its Content-Security-Policy, read once. The page handles an admin key, so the policy
 * admits only its own inline style and script (by hash), requests to this origin, and no framing:
 * were some API text ever to slip into the page as markup, it could neither run nor send the key away.
 */
function dashboardPage(): Promise<{ html: string; policy: string }> {
  page ??= readFile(DASHBOARD_PAGE, 'utf8').then(withPolicy, (err: unknown) => {
    // A failed read is tried again on the next request rather than remembered.
    page = undefined;
    throw err;
  });
  return page;
}

/** The page's inline style and script, admitted by their SHA-256 (CSP's hash sources). */
function withPolicy(html: string): { html: string; policy: string } {
  const hashes = (tag: string) =>
    [...html.matchAll(new RegExp(`<${tag}[^>]*>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`);
  const policy = [
    "default-src 'none'",
    `script-src ${hashes('script').join(' ')}`,
    `style-src ${hashes('style').join(' ')}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, policy };
}
