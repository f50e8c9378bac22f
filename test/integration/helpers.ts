import { expect } from 'vitest';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { serve } from '@hono/node-server';
import type { OpenAPIHono } from '@hono/zod-openapi';
import { ApiKeyVerifier } from '../../internal/service/apiKeyService.ts';
import { createChannels } from '../../internal/channels/channelRegistry.ts';
import { parseConfig } from '../../internal/platform/config.ts';
import { connectDatabase, type Sql } from '../../internal/platform/database.ts';
import { createApp } from '../../internal/http/app.ts';
import { createRateLimits } from '../../internal/queue/rateLimiters.ts';
import { createLogger, type Logger } from '../../internal/platform/logger.ts';
import { ApiMetrics } from '../../internal/metrics/apiMetrics.ts';
import type { NotificationRow } from '../../internal/domain/notification.ts';
import { NotificationQueue, type QueueKeys } from '../../internal/queue/notificationQueue.ts';
import { connectSubscriberRedis, type Redis } from '../../internal/platform/redis.ts';
import { InboxHub } from '../../internal/queue/inboxHub.ts';
import { insertNotification, type NewNotification } from '../../internal/repository/notifications.ts';
import { newNotification } from '../support/notificationRow.ts';
import { fixtureFields, fixtureValue } from '../support/fixtureValue.ts';
import { connectReadyRedis, testQueueKeys, testRedisUrl, type TestDatabase } from '../support/testEnvironment.ts';

export function silentLogger(): Logger {
  return createLogger({ LOG_LEVEL: 'silent' }, 'test');
}

// Kept here too for the files that import it from this module.
export { connectReadyRedis };

/** A TCP port on 127.0.0.1 where nothing listens (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The API behind a real Node.js server on a free port, as production runs it (the API reads
 * headers and bodies from the Node request): `request()` takes what `app.request()` takes and sends
 * it over HTTP.
 */
export interface ServedApp {
  request(input: string | Request, init?: RequestInit): Promise<Response>;
  /** The routes as the server has them (the OpenAPI test walks them). */
  routes: OpenAPIHono;
  /** `http://127.0.0.1:<port>`. */
  url: string;
}

export interface TestApi {
  app: ServedApp;
  sql: Sql;
  redis: Redis;
  queue: NotificationQueue;
  keys: QueueKeys;
  /** This app's own metrics (a registry of its own, as each process has). */
  metrics: ApiMetrics;
  close(): Promise<void>;
}

/** The HTTP API wired as `cmd/api.ts` wires it, against this file's database and its own keys. */
export interface BuildApiOptions {
  env?: Record<string, string>;
  requestTimeoutMs?: number;
  isDraining?: () => boolean;
  sql?: Sql;
  redis?: Redis;
}

export async function buildApi(db: Pick<TestDatabase, 'url'>, options: BuildApiOptions = {}): Promise<TestApi> {
  const keys = testQueueKeys();
  const config = parseConfig({
    DATABASE_URL: db.url,
    REDIS_URL: testRedisUrl(),
    QUEUE_KEY: keys.queue,
    DLQ_KEY: keys.dlq,
    LOG_LEVEL: 'silent',
    // API keys and limits have tests of their own; elsewhere requests go in without a key, uncounted.
    AUTH_DISABLED: 'true',
    RATE_LIMIT_PER_SECOND: '0',
    RATE_LIMIT_IP_PER_SECOND: '0',
    AUTH_FAILURES_PER_MINUTE: '0',
    ...options.env,
  });
  const sql = options.sql ?? connectDatabase(config.DATABASE_URL, { connectTimeoutSeconds: 2 });
  const redis = options.redis ?? (await connectReadyRedis(config.REDIS_URL));
  const queue = new NotificationQueue(redis, keys);
  const metrics = new ApiMetrics(queue);
  const logger = createLogger(config, 'api');
  const rateLimits = createRateLimits(redis, {
    perKeyPerSecond: config.RATE_LIMIT_PER_SECOND,
    perAddressPerSecond: config.RATE_LIMIT_IP_PER_SECOND,
    authFailuresPerMinute: config.AUTH_FAILURES_PER_MINUTE,
    keyPrefix: `${keys.queue}:rate`,
  });
  // As cmd/api.ts: the end users' inbox, with its Pub/Sub connection, where INBOX_JWT_SECRET is set.
  const subscriber = config.INBOX_JWT_SECRET ? connectSubscriberRedis(config.REDIS_URL) : undefined;
  subscriber?.on('error', () => {});
  const endUsers = config.INBOX_JWT_SECRET && subscriber ? { jwtSecret: config.INBOX_JWT_SECRET, hub: new InboxHub(subscriber, config.INBOX_CHANNEL, logger) } : undefined;
  const api = createApp({
    sql,
    redis,
    queue,
    channels: createChannels(config),
    logger,
    requestTimeoutMs: options.requestTimeoutMs ?? config.REQUEST_TIMEOUT_MS,
    isDraining: options.isDraining ?? (() => false),
    auth: config.AUTH_DISABLED ? 'disabled' : new ApiKeyVerifier(sql, { failures: rateLimits.authFailures }),
    metrics,
    protection: {
      rateLimits,
      maxQueueDepth: config.MAX_QUEUE_DEPTH,
    },
    inbox: { endUsers, heartbeatMs: config.INBOX_HEARTBEAT_MS, devPage: config.INBOX_DEV_PAGE },
  });
  const server = await listen(api.app.fetch);
  api.injectWebSocket(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    app: { request: (input, init) => sendTo(url, input, init), routes: api.app, url },
    sql,
    redis,
    queue,
    keys,
    metrics,
    async close() {
      api.live.closeAll();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await sql.end({ timeout: 5 });
      redis.disconnect();
      subscriber?.disconnect();
    },
  };
}

/** A Node.js server for `fetch` on 127.0.0.1 and a free port, once it listens. */
async function listen(fetch: (request: Request) => Response | Promise<Response>): Promise<Server> {
  return new Promise((resolve) => {
    const server = serve({ fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(server as Server));
  });
}

/** Sends a path (or a Request built for `app.request()`, whose host is a placeholder) to the server at `url`. */
function sendTo(url: string, input: string | Request, init?: RequestInit): Promise<Response> {
  if (typeof input === 'string') return fetch(new URL(input, url), init);
  const { pathname, search } = new URL(input.url);
  return fetch(new Request(new URL(pathname + search, url), input), init);
}

/**
 * `buildApi` for the whole file: built before its first test (after the file's database), closed
 * after its last. `options` is a function when it needs the database, which exists only then.
 */
export function useTestApi(db: Pick<TestDatabase, 'url'>, options: BuildApiOptions | (() => BuildApiOptions) = {}): TestApi {
  const current = fixtureValue(
    'the test API',
    'file',
    () => buildApi(db, typeof options === 'function' ? options() : options),
    (api) => api.close(),
  );
  return fixtureFields(current, ['app', 'sql', 'redis', 'queue', 'keys', 'metrics', 'close']);
}

// Kept here too for the files that import it from this module.
export { newNotification };

/** Stores a PENDING notification through the repository, as the API does. */
export async function insertPending(sql: Sql, overrides: Partial<NewNotification> = {}): Promise<NotificationRow> {
  const { row } = await insertNotification(sql, newNotification(overrides), undefined, () => {});
  return row;
}

export async function countNotifications(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from notifications`;
  return row!.n;
}

export async function rowOf(sql: Sql, id: string): Promise<NotificationRow> {
  const [row] = await sql<NotificationRow[]>`select * from notifications where id = ${id}`;
  if (!row) throw new Error(`notification ${id} is not stored`);
  return row;
}

export async function attemptsOf(sql: Sql, id: string): Promise<{ attempt: number; outcome: string; worker_id: string | null; error: string | null }[]> {
  return sql`select attempt, outcome, worker_id, error from notification_attempts where notification_id = ${id} order by attempt`;
}

/** Rows in each of `tables`, so a test can show that a refused request changed nothing. */
export async function countRows(sql: Sql, tables: string[]): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of tables) {
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from ${sql(table)}`;
    counts[table] = row!.n;
  }
  return counts;
}

/** Sends `body` as JSON to the app with `method`; a string body is sent as it is. */
export async function sendJson(
  app: Pick<ServedApp, 'request'>,
  method: 'POST' | 'PUT' | 'DELETE',
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return app.request(path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** The API's error answer (`{ error: { code, message, details? } }`). */
export interface ErrorResponse {
  error: { code: string; message: string; details?: unknown };
}

/**
 * Sends `request` and expects the error answer `status` with `code` and a message; `state` is read
 * before and after and must not differ, since a refused request changes nothing. Returns the answer.
 */
export async function expectRefusal(
  request: () => Response | Promise<Response>,
  expected: { status: number; code: string },
  state: () => Promise<unknown>,
): Promise<ErrorResponse> {
  const before = await state();
  const res = await request();
  const body = (await res.json()) as ErrorResponse;
  expect({ status: res.status, code: body.error.code }).toEqual(expected);
  expect(body.error.message).not.toBe('');
  expect(await state()).toEqual(before);
  return body;
}
