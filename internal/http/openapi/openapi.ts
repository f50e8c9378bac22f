import { OpenAPIRegistry, OpenApiGeneratorV31, type ResponseConfig, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import pkg from '../../../package.json' with { type: 'json' };
import { attemptHistoryJsonSchema } from '../../service/attemptHistory.ts';
import { replaySummarySchema } from '../../service/deadLetterReplays.ts';
import { deadLetterPageSchema } from '../../service/deadLetterSearch.ts';
import { inboxListingSchema } from '../../service/inboxService.ts';
import { createNotificationSchema, notificationJsonSchema } from '../../domain/notification.ts';
import { MAX_IDEMPOTENCY_KEY_LENGTH } from '../../service/notificationService.ts';
import { preferencesJsonSchema, preferencesSchema, recipientProfileJsonSchema, recipientProfileSchema } from '../../domain/recipient.ts';
import { statsJsonSchema } from '../../service/statsService.ts';
import { topicKeySchema, topicSubscribersSchema } from '../../domain/topic.ts';
import { topicChangeSchema, topicSummarySchema } from '../../service/topicService.ts';
import { listQuerySchema, replaySchema } from '../routes/adminRoutes.ts';
import { scopeForMethod } from '../middleware/apiKeyAuth.ts';
import { throughputJsonSchema, throughputQuerySchema } from '../routes/dashboardRoutes.ts';
import { devTokenJsonSchema, devTokenRequestSchema } from '../routes/devRoutes.ts';
import { markedJsonSchema, unreadCountJsonSchema } from '../routes/endUserInboxRoutes.ts';
import { errorBodySchema } from '../errorHandler.ts';
import { fanoutJsonSchema, fanoutWithMembersJsonSchema } from '../request/fanoutJson.ts';
import { livenessJsonSchema, readinessJsonSchema } from '../routes/healthRoutes.ts';
import { inboxPageQuerySchema, sinceSeqSchema } from '../request/inboxQuery.ts';
import { MAX_BODY_BYTES } from '../request/jsonBody.ts';
import { userIdPathSchema, uuidPathSchema } from '../request/pathParams.ts';

/*
 * The API's OpenAPI 3.1 document, generated from the zod schemas the handlers validate with and
 * build their answers from (imported, never restated), so it cannot describe a field the API does
 * not check or answer. test/integration/openapi.test.ts holds the routes and this document to each
 * other: a route added without an entry here fails it.
 */

type Method = 'get' | 'post' | 'put' | 'delete';
type ErrorStatus = 400 | 401 | 403 | 404 | 413 | 415 | 422 | 429 | 503;

/** What each error status means anywhere in the API; a route adds what it means there. */
const ERROR_MEANING: Record<ErrorStatus, string> = {
  400: 'the request is invalid; `code` says how (`invalid_request` with `details` per field, `malformed_json`, `invalid_id`, ...)',
  401: 'no credentials, or unknown, revoked or expired ones (`unauthorized`)',
  403: "the API key lacks this route's scope (`forbidden`)",
  404: 'not found (`not_found`)',
  413: `the body is over ${MAX_BODY_BYTES} bytes (\`payload_too_large\`), refused before it is read whole`,
  415: 'the body is not sent as `application/json` (`unsupported_media_type`)',
  422: 'the Idempotency-Key was used before with a different body (`idempotency_key_reused`)',
  429: 'too many requests (`rate_limited`); wait `Retry-After` seconds',
  503: 'PostgreSQL did not answer within REQUEST_TIMEOUT_MS (`unavailable`); nothing was stored, retry after `Retry-After` seconds',
};

const RETRY_AFTER = { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' as const } } };
const WWW_AUTHENTICATE = { 'WWW-Authenticate': { description: '`Bearer`', schema: { type: 'string' as const } } };

function errorResponse(status: ErrorStatus, note?: string): ResponseConfig {
  return {
    description: note ? `${ERROR_MEANING[status]}; ${note}` : ERROR_MEANING[status],
    headers: status === 429 || status === 503 ? RETRY_AFTER : status === 401 ? WWW_AUTHENTICATE : undefined,
    content: { 'application/json': { schema: errorBodySchema } },
  };
}

function json(schema: z.ZodType, description: string, headers?: ResponseConfig['headers']): ResponseConfig {
  return { description, headers, content: { 'application/json': { schema } } };
}

function jsonBody(schema: z.ZodType): NonNullable<RouteConfig['request']>['body'] {
  return { required: true, content: { 'application/json': { schema } } };
}

/** One route: its success answers in `responses`, its own error statuses (and what they mean there) in `errors`. */
interface Operation {
  method: Method;
  path: string;
  tag: string;
  summary: string;
  description?: string;
  request?: RouteConfig['request'];
  responses: Record<number, ResponseConfig>;
  errors?: Partial<Record<ErrorStatus, string | undefined>>;
}

/** Who may call a group of routes, what that adds to the description, and the errors it brings. */
interface Access {
  security: RouteConfig['security'];
  note?: string;
  errors: Partial<Record<ErrorStatus, string | undefined>>;
}

const producerAccess = (method: Method): Access => {
  const scope = scopeForMethod(method.toUpperCase());
  return {
    security: [{ apiKey: [scope] }],
    note: `Needs an API key with the \`${scope}\` scope.`,
    errors: { 401: undefined, 403: undefined, 429: 'RATE_LIMIT_PER_SECOND per API key', 503: undefined },
  };
};

const operatorAccess: Access = {
  security: [{ apiKey: ['admin'] }],
  note: 'Needs an API key with the `admin` scope.',
  errors: { 401: undefined, 403: undefined, 503: undefined },
};

const endUserAccess = (viaQuery = false): Access => ({
  security: viaQuery ? [{ inboxToken: [] }, { inboxTokenQuery: [] }] : [{ inboxToken: [] }],
  note: `Takes the end user's inbox token${viaQuery ? ' (in the URL as `access_token` where headers cannot be set)' : ''}; reaches only that user's items.`,
  errors: { 401: undefined, 404: 'also when the inbox API is off (INBOX_JWT_SECRET unset)', 429: 'RATE_LIMIT_IP_PER_SECOND per client address', 503: undefined },
});

const publicAccess = (rateLimited: boolean): Access => ({
  security: [],
  errors: rateLimited ? { 429: 'RATE_LIMIT_IP_PER_SECOND per client address' } : {},
});

export const apiRegistry = new OpenAPIRegistry();

apiRegistry.registerComponent('securitySchemes', 'apiKey', {
  type: 'http',
  scheme: 'bearer',
  description:
    "A producer's API key (`npm run apikey -- create <name>`). Keys carry scopes: `read` for GET, `send` for the other producer routes, `admin` for /admin, /metrics and /stats. With AUTH_DISABLED (development only) no key is asked for.",
});
apiRegistry.registerComponent('securitySchemes', 'inboxToken', {
  type: 'http',
  scheme: 'bearer',
  bearerFormat: 'JWT',
  description: "An end user's inbox token, issued by the product's backend: a JWT signed with HS256 and INBOX_JWT_SECRET, `sub` the user id, with an `exp`.",
});
apiRegistry.registerComponent('securitySchemes', 'inboxTokenQuery', {
  type: 'apiKey',
  in: 'query',
  name: 'access_token',
  description: 'The inbox token in the URL, for WebSocket and EventSource clients, which cannot set headers (use short-lived tokens).',
});

function register(access: Access, op: Operation): void {
  const errors: Record<string, ResponseConfig> = {};
  const statuses = new Set([...Object.keys(access.errors), ...Object.keys(op.errors ?? {})].map(Number) as ErrorStatus[]);
  for (const status of [...statuses].sort((a, b) => a - b)) {
    const notes = [op.errors?.[status], access.errors[status]].filter((n) => n !== undefined);
    errors[status] = errorResponse(status, notes.join('; ') || undefined);
  }
  apiRegistry.registerPath({
    method: op.method,
    path: op.path,
    tags: [op.tag],
    summary: op.summary,
    description: [op.description, access.note].filter(Boolean).join('\n\n') || undefined,
    security: access.security,
    request: op.request,
    responses: { ...op.responses, ...errors },
  });
}

const producer = (op: Operation) => register(producerAccess(op.method), op);
const operator = (op: Operation) => register(operatorAccess, op);
const endUser = (op: Operation, viaQuery = false) => register(endUserAccess(viaQuery), op);
const anyone = (op: Operation, rateLimited: boolean) => register(publicAccess(rateLimited), op);

const notificationIdParams = z.object({ id: uuidPathSchema });
const userParams = z.object({ userId: userIdPathSchema });
const topicParams = z.object({ topic: topicKeySchema });
const location = (what: string) => ({ Location: { description: `the ${what}'s URL`, schema: { type: 'string' as const } } });

// Health: for load balancers and orchestrators; no key, not rate limited.
anyone({ method: 'get', path: '/healthz', tag: 'Health', summary: 'Liveness', responses: { 200: json(livenessJsonSchema, 'the process runs') } }, false);
anyone(
  {
    method: 'get',
    path: '/readyz',
    tag: 'Health',
    summary: 'Readiness: route traffic here only while 200',
    responses: {
      200: json(readinessJsonSchema, 'PostgreSQL and Redis answer and the process is not draining'),
      503: json(readinessJsonSchema, 'not ready: which dependency is down, or the process is draining'),
    },
  },
  false,
);

// Documentation: public, rate limited per address like the other routes without a key.
anyone(
  {
    method: 'get',
    path: '/openapi.json',
    tag: 'Documentation',
    summary: 'This document (OpenAPI 3.1)',
    responses: { 200: json(z.record(z.string(), z.unknown()), 'the OpenAPI document') },
  },
  true,
);
anyone(
  {
    method: 'get',
    path: '/docs',
    tag: 'Documentation',
    summary: 'This document, browsable (Swagger UI)',
    responses: { 200: { description: 'an HTML page that renders /openapi.json', content: { 'text/html': { schema: z.string() } } } },
  },
  true,
);

// Notifications.
producer({
  method: 'post',
  path: '/notifications',
  tag: 'Notifications',
  summary: 'Create a notification, or one per user of a list or a topic',
  description:
    'Exactly one of `user_id`, `user_ids` (up to 1,000) or `topic`. A notification is answered only once it is committed in PostgreSQL. With an `Idempotency-Key`, a repeat of the same body answers the first outcome with 200.',
  request: {
    headers: z.object({
      'Idempotency-Key': z
        .string()
        .min(1)
        .max(MAX_IDEMPOTENCY_KEY_LENGTH)
        .optional()
        .meta({ description: 'makes a retried request safe: kept 24 hours; the same key with another body is refused with 422' }),
    }),
    body: jsonBody(createNotificationSchema),
  },
  responses: {
    200: json(z.union([notificationJsonSchema, fanoutWithMembersJsonSchema]), 'an idempotent repeat: what the first request created'),
    201: json(
      z.union([notificationJsonSchema, fanoutWithMembersJsonSchema]),
      'created: the notification (`user_id`), or the fan-out with every notification (`user_ids`)',
      location('notification or fan-out'),
    ),
    202: json(fanoutJsonSchema, "a topic's fan-out, stored: workers create its notifications next", location('fan-out')),
  },
  errors: {
    400: '`channel_not_configured`, `no_address` (the users in `details`), `webhook_target_not_allowed`, `invalid_idempotency_key` too',
    413: undefined,
    415: undefined,
    422: undefined,
    503: 'or more than MAX_QUEUE_DEPTH notifications wait for delivery (`overloaded`)',
  },
});
producer({
  method: 'get',
  path: '/notifications/{id}',
  tag: 'Notifications',
  summary: 'Read a notification',
  request: { params: notificationIdParams },
  responses: { 200: json(notificationJsonSchema, 'the notification') },
  errors: { 400: 'the id is not a UUID (`invalid_id`)', 404: undefined },
});
producer({
  method: 'get',
  path: '/notifications/{id}/attempts',
  tag: 'Notifications',
  summary: "A notification's delivery attempts, including the one under way",
  request: { params: notificationIdParams },
  responses: { 200: json(attemptHistoryJsonSchema, 'the attempts, oldest first') },
  errors: { 400: 'the id is not a UUID (`invalid_id`)', 404: undefined },
});
producer({
  method: 'get',
  path: '/fanouts/{id}',
  tag: 'Notifications',
  summary: 'How far a fan-out got',
  request: { params: notificationIdParams },
  responses: { 200: json(fanoutJsonSchema, 'the fan-out, with its notifications counted by status') },
  errors: { 400: 'the id is not a UUID (`invalid_id`)', 404: undefined },
});

// Recipients.
producer({
  method: 'put',
  path: '/users/{userId}',
  tag: 'Recipients',
  summary: "Store a user's profile (addresses, push subscriptions), replacing the previous one",
  description: 'A field left out is cleared.',
  request: { params: userParams, body: jsonBody(recipientProfileSchema) },
  responses: { 200: json(recipientProfileJsonSchema, 'the profile as stored') },
  errors: { 400: undefined, 413: undefined, 415: undefined },
});
producer({
  method: 'get',
  path: '/users/{userId}',
  tag: 'Recipients',
  summary: "Read a user's profile and opt-outs",
  request: { params: userParams },
  responses: { 200: json(recipientProfileJsonSchema, 'the profile') },
  errors: { 400: 'the user id is not 1 to 255 storable characters', 404: 'nothing is stored for this user' },
});
producer({
  method: 'put',
  path: '/users/{userId}/preferences',
  tag: 'Recipients',
  summary: 'Replace the channels a user opted out of',
  description: 'Notifications on those channels end SKIPPED, unless they are `critical`.',
  request: { params: userParams, body: jsonBody(preferencesSchema) },
  responses: { 200: json(preferencesJsonSchema, 'the opt-outs as stored') },
  errors: { 400: undefined, 413: undefined, 415: undefined },
});
producer({
  method: 'get',
  path: '/users/{userId}/preferences',
  tag: 'Recipients',
  summary: 'Read the channels a user opted out of',
  request: { params: userParams },
  responses: { 200: json(preferencesJsonSchema, 'the opt-outs (empty for an unknown user)') },
  errors: { 400: 'the user id is not 1 to 255 storable characters' },
});
producer({
  method: 'get',
  path: '/users/{userId}/inbox',
  tag: 'Recipients',
  summary: "A user's in-app inbox, newest first, as the producer's backend reads it",
  request: { params: userParams, query: inboxPageQuerySchema },
  responses: { 200: json(inboxListingSchema, 'a page of the inbox (archived items left out) and the unread count') },
  errors: { 400: 'a bad user id, `limit`, `cursor` or `unread`' },
});

// Topics.
for (const [method, summary, changed] of [
  ['put', "Add users to a topic's subscribers (again is harmless)", 'added'],
  ['delete', "Remove users from a topic's subscribers", 'removed'],
] as const) {
  producer({
    method,
    path: '/topics/{topic}/subscribers',
    tag: 'Topics',
    summary,
    request: { params: topicParams, body: jsonBody(topicSubscribersSchema) },
    responses: { 200: json(topicChangeSchema, `the topic's subscribers now, and how many this ${changed}`) },
    errors: { 400: undefined, 413: undefined, 415: undefined },
  });
}
producer({
  method: 'get',
  path: '/topics/{topic}',
  tag: 'Topics',
  summary: "A topic's subscriber count",
  request: { params: topicParams },
  responses: { 200: json(topicSummarySchema, 'the topic (0 subscribers for one never used)') },
  errors: { 400: 'not a topic key' },
});

// The end user's inbox.
endUser({
  method: 'get',
  path: '/inbox',
  tag: 'Inbox',
  summary: 'My inbox, newest first',
  request: { query: inboxPageQuerySchema },
  responses: { 200: json(inboxListingSchema, 'a page of the inbox (archived items left out) and the unread count') },
  errors: { 400: 'a bad `limit`, `cursor` or `unread`' },
});
endUser({
  method: 'get',
  path: '/inbox/unread_count',
  tag: 'Inbox',
  summary: 'How many of my items are unread',
  responses: { 200: json(unreadCountJsonSchema, 'the count') },
});
endUser({
  method: 'post',
  path: '/inbox/read_all',
  tag: 'Inbox',
  summary: 'Mark all my items read',
  responses: { 200: json(markedJsonSchema, 'how many were marked') },
});
for (const [action, summary] of [
  ['read', 'Mark one of my items read'],
  ['archive', 'Archive one of my items: it leaves the list and the count'],
] as const) {
  endUser({
    method: 'post',
    path: `/inbox/{id}/${action}`,
    tag: 'Inbox',
    summary,
    request: { params: notificationIdParams },
    responses: { 204: { description: 'done' } },
    errors: { 400: 'the id is not a UUID (`invalid_id`)', 404: 'no such item for this user' },
  });
}
const liveQuery = z.object({ since: sinceSeqSchema.optional().meta({ description: 'the highest `seq` the client has; 0 or absent: everything' }) });
endUser(
  {
    method: 'get',
    path: '/inbox/stream',
    tag: 'Inbox',
    summary: 'My inbox live, as Server-Sent Events',
    description:
      'First every item after `since`, then `event: caught_up` (data `{"seq": N}`), then each new item as it is delivered: `event: notification`, `id:` its seq, data an InboxItem. An EventSource resumes by itself after a drop (it sends `Last-Event-ID`).',
    request: {
      query: liveQuery,
      headers: z.object({ 'Last-Event-ID': z.string().optional().meta({ description: 'sent by a reconnecting EventSource; wins over `since`' }) }),
    },
    responses: { 200: { description: 'the event stream', content: { 'text/event-stream': { schema: z.string() } } } },
    errors: { 400: 'a bad `since` or `Last-Event-ID`', 503: 'or this process has no live inbox connection to Redis' },
  },
  true,
);
endUser(
  {
    method: 'get',
    path: '/inbox/ws',
    tag: 'Inbox',
    summary: 'My inbox live, over a WebSocket',
    description:
      'JSON messages: `{"type": "notification", "item": InboxItem}` for every item after `since`, then `{"type": "caught_up", "seq": N}`, then each new item as it is delivered.',
    request: { query: liveQuery },
    responses: { 101: { description: 'switching to the WebSocket protocol' } },
    errors: { 400: 'a bad `since`', 404: 'or the request is not a WebSocket upgrade', 503: 'or this process has no live inbox connection to Redis' },
  },
  true,
);

// Operators.
operator({
  method: 'get',
  path: '/metrics',
  tag: 'Operations',
  summary: "The process's Prometheus metrics",
  description: 'Served where the process was started with metrics (cmd/api.ts does).',
  responses: { 200: { description: "Prometheus' text format", content: { 'text/plain': { schema: z.string() } } } },
});
operator({
  method: 'get',
  path: '/stats',
  tag: 'Operations',
  summary: 'Totals by status, failed attempts, delivery time, queue lengths, active workers',
  responses: { 200: json(statsJsonSchema, 'the figures') },
});
operator({
  method: 'get',
  path: '/admin/dead-letters',
  tag: 'Operations',
  summary: 'FAILED notifications, the latest failure first',
  request: { query: listQuerySchema },
  responses: { 200: json(deadLetterPageSchema, 'a page of dead letters') },
  errors: { 400: 'a bad filter, `limit` or `cursor`' },
});
operator({
  method: 'post',
  path: '/admin/dead-letters/replay',
  tag: 'Operations',
  summary: 'Put dead letters back to PENDING: `ids`, or `all` matching filters',
  description: 'Recorded under the API key\'s name. `dry_run` counts without changing anything.',
  request: { body: jsonBody(replaySchema) },
  responses: { 200: json(replaySummarySchema, 'what was (or, on a dry run, would be) replayed') },
  errors: { 400: undefined, 413: undefined, 415: undefined },
});
operator({
  method: 'get',
  path: '/admin/throughput',
  tag: 'Operations',
  summary: 'Notifications created, sent and failed per minute, over the last `minutes`',
  request: { query: throughputQuerySchema },
  responses: { 200: json(throughputJsonSchema, 'one count per minute, oldest first') },
  errors: { 400: 'a bad `minutes`' },
});
// The dashboard page holds no data: it asks for an admin key and reads the routes above with it.
anyone(
  {
    method: 'get',
    path: '/admin/dashboard',
    tag: 'Operations',
    summary: "Operators' dashboard (an HTML page that asks for an admin API key)",
    responses: { 200: { description: 'the page', content: { 'text/html': { schema: z.string() } } } },
  },
  true,
);

// Development only (INBOX_DEV_PAGE with INBOX_JWT_SECRET): absent otherwise.
anyone(
  {
    method: 'get',
    path: '/dev/inbox',
    tag: 'Development',
    summary: 'Example inbox page (development only)',
    responses: { 200: { description: 'the page', content: { 'text/html': { schema: z.string() } } } },
  },
  true,
);
anyone(
  {
    method: 'post',
    path: '/dev/token',
    tag: 'Development',
    summary: 'An inbox token for any user (development only)',
    request: { body: jsonBody(devTokenRequestSchema) },
    responses: { 200: json(devTokenJsonSchema, 'the token') },
    errors: { 400: undefined, 415: undefined },
  },
  true,
);

// What a WEBHOOK notification's target receives.
apiRegistry.registerWebhook({
  method: 'post',
  path: 'notification',
  tags: ['Notifications'],
  summary: 'A WEBHOOK notification, as POSTed to its `to`',
  description:
    'Standard Webhooks headers; `webhook-signature` only when WEBHOOK_SECRET is set. A 2xx is delivered; a timeout, 408, 429 or 5xx is retried; any other answer (redirects included) fails the notification.',
  request: {
    headers: z.object({
      'webhook-id': z.guid().meta({ description: 'the notification id, the same on every attempt: drop repeats by it' }),
      'webhook-timestamp': z.string().meta({ description: 'Unix seconds' }),
      'webhook-signature': z.string().optional().meta({ description: '`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`' }),
    }),
    body: jsonBody(notificationJsonSchema),
  },
  responses: { 200: { description: 'any 2xx: delivered' } },
});

let generated: ReturnType<OpenApiGeneratorV31['generateDocument']> | undefined;

/** The document, generated once: the registry does not change while the process runs. */
export function openApiDocument(): ReturnType<OpenApiGeneratorV31['generateDocument']> {
  generated ??= new OpenApiGeneratorV31(apiRegistry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'herald',
      version: pkg.version,
      description:
        'Notifications by email, SMS, Web Push, webhook and in-app inbox. Errors are answered as `{"error": {"code", "message", "details"?}}`; any route answers 404 `not_found` for an unknown path.',
    },
    tags: [
      { name: 'Notifications' },
      { name: 'Recipients' },
      { name: 'Topics' },
      { name: 'Inbox', description: "The end user's own inbox, read by web and mobile clients with the user's token" },
      { name: 'Operations' },
      { name: 'Health' },
      { name: 'Documentation' },
      { name: 'Development' },
    ],
  });
  return generated;
}
