/**
 * The ingest baseline: `POST /notifications` as a team would first write it. Hono, zod, one INSERT
 * (autocommit, no transaction) and one LPUSH per request, a pool of 10 like herald's API; no
 * idempotency, no deadline, no logging. Same table, same answer shape, so the work per request is
 * what it would be without herald's guarantees.
 *
 * Environment: DATABASE_URL, REDIS_URL, PORT, QUEUE_KEY.
 */
import { randomUUID } from 'node:crypto';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { z } from 'zod';

const env = z
  .object({
    DATABASE_URL: z.string().min(1),
    REDIS_URL: z.string().min(1),
    PORT: z.coerce.number().int(),
    QUEUE_KEY: z.string().min(1),
  })
  .parse(process.env);

const sql = postgres(env.DATABASE_URL, { max: 10, onnotice: () => {} });
const redis = new Redis(env.REDIS_URL);

const createSchema = z.object({
  user_id: z.string().min(1).max(255),
  type: z.enum(['EMAIL', 'SMS', 'PUSH', 'IN_APP', 'WEBHOOK']),
  title: z.string().max(1000).optional(),
  body: z.string().min(1).max(100_000),
  to: z.string().min(1).max(2048).optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

interface Row {
  id: string;
  user_id: string;
  type: string;
  title: string | null;
  body: string;
  recipient: string | null;
  data: Record<string, unknown> | null;
  status: string;
  retry_count: number;
  error_reason: string | null;
  created_at: Date;
  updated_at: Date;
}

const app = new Hono();

app.get('/healthz', (c) => c.json({ status: 'ok' }));

app.post('/notifications', async (c) => {
  let json: unknown;
  try {
    json = await c.req.json();
  } catch {
    return c.json({ error: { code: 'malformed_json', message: 'request body is not valid JSON' } }, 400);
  }
  const parsed = createSchema.safeParse(json);
  if (!parsed.success) {
    return c.json({ error: { code: 'invalid_request', message: parsed.error.issues[0]?.message ?? 'invalid' } }, 400);
  }
  const n = parsed.data;
  const [row] = await sql<Row[]>`
    insert into notifications (id, user_id, type, title, body, recipient, data, queued_at)
    values (${randomUUID()}, ${n.user_id}, ${n.type}, ${n.title ?? null}, ${n.body}, ${n.to ?? null},
            ${n.data === undefined ? null : sql.json(n.data as never)}, now())
    returning *`;
  await redis.lpush(env.QUEUE_KEY, row!.id);
  return c.json(
    {
      id: row!.id,
      user_id: row!.user_id,
      type: row!.type,
      title: row!.title,
      body: row!.body,
      to: row!.recipient,
      data: row!.data,
      status: row!.status,
      retry_count: row!.retry_count,
      error_reason: row!.error_reason,
      created_at: row!.created_at.toISOString(),
      updated_at: row!.updated_at.toISOString(),
    },
    201,
  );
});

const server = serve({ fetch: app.fetch, port: env.PORT, hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(`naive api listening on ${info.port}\n`);
});

let stopping = false;
const stop = () => {
  if (stopping) process.exit(1);
  stopping = true;
  server.close();
  if ('closeAllConnections' in server) server.closeAllConnections();
  void sql.end({ timeout: 2 }).finally(() => {
    redis.disconnect();
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
