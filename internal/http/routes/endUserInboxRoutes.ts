import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler, Next } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { UpgradeWebSocket } from 'hono/ws';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import { grantOfToken } from '../../service/endUserToken.ts';
import { NotFoundError, UnauthorizedError } from '../../domain/errors.ts';
import { inboxListingSchema, markedJsonSchema, unreadCountJsonSchema } from '../../domain/inbox.ts';
import { archiveItem, readAll, readInbox, readItem, unreadCount } from '../../service/inboxService.ts';
import type { InboxSessionDeps } from '../../service/inboxSession.ts';
import type { Logger } from '../../platform/logger.ts';
import { json, text } from '../openapi/answers.ts';
import { endUserRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { inboxPage, inboxPageQuerySchema, sinceSeq, sinceSeqSchema } from '../request/inboxQuery.ts';
import { refuseAs } from '../request/invalidInput.ts';
import { idParams, refuseId } from '../request/pathParams.ts';
import { inboxWebSocket, serveInboxEvents, TOKEN_EXPIRED_CLOSE_CODE, type LiveConnections } from './liveInbox.ts';

/** What the end users' inbox needs once it is on (INBOX_JWT_SECRET set). */
export interface EndUserAccess {
  /** INBOX_JWT_SECRET, which tokens are signed with. */
  jwtSecret: string;
  /** The process's Pub/Sub connection, which every live connection shares. */
  hub: InboxSessionDeps['hub'];
}

export interface EndUserInboxDeps {
  sql: InboxSessionDeps['sql'];
  requestTimeoutMs: number;
  logger: Logger;
  /** Absent, this API is off: every route answers 404 saying so. */
  endUsers?: EndUserAccess;
  heartbeatMs: number;
  live: LiveConnections;
  upgradeWebSocket: UpgradeWebSocket<WebSocket>;
}

type Env = { Variables: { userId: string; tokenExpiresAt: Date } };

const inbox = endUserRoutes('Inbox', { tokenInUrl: false });

const unreadRoute = inbox.get('/unread_count', {
  summary: 'How many of my items are unread',
  responses: { 200: json(unreadCountJsonSchema, 'the count') },
});

const readAllRoute = inbox.post('/read_all', {
  summary: 'Mark all my items read',
  responses: { 200: json(markedJsonSchema, 'how many were marked') },
});

const listRoute = inbox.get('/', {
  summary: 'My inbox, newest first',
  description: 'Archived items are left out; `unread=true` lists only the unread ones. The next page is `cursor=<next_cursor>`.',
  request: { query: inboxPageQuerySchema },
  responses: { 200: json(inboxListingSchema, 'a page of the inbox and the unread count') },
  errors: { 400: 'a bad `limit`, `cursor` or `unread`' },
});

/** Marking one item read and archiving it: the same request, answered the same way. */
const itemRoute = (action: 'read' | 'archive', summary: string) =>
  inbox.post(`/{id}/${action}`, {
    summary,
    request: { params: idParams },
    responses: { 204: { description: 'done' } },
    errors: { 400: 'the id is not a UUID (`invalid_id`)', 404: 'no such item for this user' },
  });

/** The live routes, which also take the token in the URL (see `authenticate`'s `fromQuery`). */
const liveInbox = endUserRoutes('Inbox', { tokenInUrl: true });

const liveQuery = z.object({ since: sinceSeqSchema.optional().meta({ description: 'the highest `seq` the client has; 0 or absent: everything' }) });
/** The live routes' refusal of a bad `since` (or Last-Event-ID, which wins over it). */
const badSince = refuseAs(sinceSeq);

const streamRoute = liveInbox.get('/stream', {
  summary: 'My inbox live, as Server-Sent Events',
  description:
    'First every item after `since`, then `event: caught_up` (data `{"seq": N}`), then each new item as it is delivered: `event: notification`, `id:` its seq, data an InboxItem. An EventSource resumes by itself after a drop (it sends `Last-Event-ID`). When the token expires the stream ends with `event: error`, data `{"code": "token_expired", ...}`: open a new one with a new token.',
  request: {
    query: liveQuery,
    headers: z.object({ 'Last-Event-ID': z.string().optional().meta({ description: 'sent by a reconnecting EventSource; wins over `since`' }) }),
  },
  responses: { 200: text('text/event-stream', 'the event stream') },
  errors: { 400: 'a bad `since` or `Last-Event-ID`' },
});

/** `GET /inbox/ws` as declared; its middleware (the upgrade) comes from the process's server. */
const webSocketRoute = (upgrade: MiddlewareHandler) =>
  liveInbox.get('/ws', {
    summary: 'My inbox live, over a WebSocket',
    description:
      'JSON messages: `{"type": "notification", "item": InboxItem}` for every item after `since`, then `{"type": "caught_up", "seq": N}`, then each new item as it is delivered. When the token expires the socket is closed with code ' +
      `${TOKEN_EXPIRED_CLOSE_CODE} (reason "token expired"): reconnect with a new token.`,
    // A bad `since` is refused with 400 before the upgrade.
    middleware: [checkSince, upgrade],
    request: { query: liveQuery },
    responses: { 101: { description: 'switching to the WebSocket protocol' } },
    errors: { 400: 'a bad `since`', 404: 'or the request is not a WebSocket upgrade' },
  });

const checkSince: MiddlewareHandler = (c, next) => {
  sinceSeq(c);
  return next();
};

/**
 * The inbox as its end user sees it (`/inbox`), authenticated by a token from the product's
 * backend: list, unread count, read, archive, and the live stream (WebSocket or Server-Sent Events).
 * A user reaches only their own items: every statement is scoped by the token's user.
 */
export function endUserInboxRoutes(deps: EndUserInboxDeps): OpenAPIHono<Env> {
  const app = new OpenAPIHono<Env>();
  // Browsers cannot put headers on a WebSocket or an EventSource: those two take the token in the URL.
  app.use('/ws', authenticate(deps, { fromQuery: true }));
  app.use('/stream', authenticate(deps, { fromQuery: true }));
  app.use('*', authenticate(deps, { fromQuery: false }));

  serveRoute(
    app,
    listRoute,
    async (c) => c.json(await readInbox(deps, c.get('userId'), inboxPage(c.req.valid('query'))), 200),
    refuseAs((c) => inboxPage(c.req.query())),
  );
  serveRoute(app, unreadRoute, async (c) => c.json(await unreadCount(deps, c.get('userId')), 200));
  serveRoute(app, readAllRoute, async (c) => c.json(await readAll(deps, c.get('userId')), 200));
  for (const [action, summary, act] of [
    ['read', 'Mark one of my items read', readItem],
    ['archive', 'Archive one of my items: it leaves the list and the count', archiveItem],
  ] as const) {
    serveRoute(
      app,
      itemRoute(action, summary),
      async (c) => {
        await act(deps, c.get('userId'), c.req.valid('param').id);
        return c.body(null, 204);
      },
      refuseId('notification'),
    );
  }

  // Used only past `authenticate`, which lets nothing through while the inbox is off (no hub then).
  const live = deps.endUsers && { sql: deps.sql, hub: deps.endUsers.hub, logger: deps.logger, heartbeatMs: deps.heartbeatMs };
  const connection = (c: Context<Env>) => ({ userId: c.get('userId'), since: sinceSeq(c), expiresAt: c.get('tokenExpiresAt') });
  serveRoute(app, streamRoute, (c) => serveInboxEvents(c, live!, deps.live, connection(c)), badSince);
  const upgrade = inboxWebSocket(deps.upgradeWebSocket, live!, deps.live, connection);
  serveRoute(
    app,
    webSocketRoute(upgrade),
    (c) => {
      // The upgrade answers a WebSocket handshake; anything else is not a request this route takes.
      throw new HTTPException(404, { message: `no route for ${c.req.method} ${c.req.path}` });
    },
    badSince,
  );

  return app;
}

function authenticate(deps: EndUserInboxDeps, options: { fromQuery: boolean }) {
  return async (c: Context<Env>, next: Next) => {
    if (c.get('userId')) return next();
    if (!deps.endUsers) throw new NotFoundError('the end-user inbox API is off on this server: set INBOX_JWT_SECRET');
    const header = c.req.header('authorization');
    const token = header?.match(/^Bearer\s+(\S+)$/i)?.[1] ?? (options.fromQuery ? c.req.query('access_token') : undefined);
    if (!token) {
      throw new UnauthorizedError(
        `send the user's inbox token as "Authorization: Bearer <token>"${options.fromQuery ? ' or ?access_token=<token>' : ''}`,
      );
    }
    const grant = await grantOfToken(token, deps.endUsers.jwtSecret);
    c.set('userId', grant.userId);
    c.set('tokenExpiresAt', grant.expiresAt);
    return next();
  };
}
