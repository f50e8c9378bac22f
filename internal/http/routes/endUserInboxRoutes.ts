import type { Context, Next } from 'hono';
import { Hono } from 'hono';
import type { UpgradeWebSocket } from 'hono/ws';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import type { Sql } from '../../platform/database.ts';
import { userIdFromToken } from '../../service/endUserToken.ts';
import { NotFoundError, UnauthorizedError, UnavailableError } from '../../domain/errors.ts';
import type { InboxHub } from '../../queue/inboxHub.ts';
import { archiveItem, readAll, readInbox, readItem, unreadCount } from '../../service/inboxService.ts';
import type { Logger } from '../../platform/logger.ts';
import { inboxPage, sinceSeq } from '../request/inboxQuery.ts';
import { inboxWebSocket, serveInboxEvents, type LiveConnections } from './liveInbox.ts';
import { uuidParam } from '../request/pathParams.ts';

export interface EndUserInboxDeps {
  sql: Sql;
  requestTimeoutMs: number;
  logger: Logger;
  /** INBOX_JWT_SECRET; without it this API is off. */
  jwtSecret?: string;
  /** Absent where the process has no Pub/Sub connection: the live routes then answer 503. */
  hub?: InboxHub;
  heartbeatMs: number;
  live: LiveConnections;
  upgradeWebSocket: UpgradeWebSocket<WebSocket>;
}

type Env = { Variables: { userId: string } };

/** `GET /inbox/unread_count`. */
export const unreadCountJsonSchema = z.object({ unread: z.int().min(0) }).meta({ id: 'UnreadCount' });
/** `POST /inbox/read_all`: how many items this marked read. */
export const markedJsonSchema = z.object({ marked: z.int().min(0) }).meta({ id: 'MarkedRead' });

/**
 * The inbox as its end user sees it (`/inbox`), authenticated by a token from the product's
 * backend: list, unread count, read, archive, and the live stream (WebSocket or Server-Sent Events).
 * A user reaches only their own items: every statement is scoped by the token's user.
 */
export function endUserInboxRoutes(deps: EndUserInboxDeps): Hono<Env> {
  const app = new Hono<Env>();
  // Browsers cannot put headers on a WebSocket or an EventSource: those two take the token in the URL.
  app.use('/ws', authenticate(deps, { fromQuery: true }));
  app.use('/stream', authenticate(deps, { fromQuery: true }));
  app.use('*', authenticate(deps, { fromQuery: false }));

  app.get('/', async (c) => c.json(await readInbox(deps, c.get('userId'), inboxPage(c))));
  app.get('/unread_count', async (c) => {
    const answer: z.infer<typeof unreadCountJsonSchema> = { unread: await unreadCount(deps, c.get('userId')) };
    return c.json(answer);
  });
  app.post('/read_all', async (c) => {
    const answer: z.infer<typeof markedJsonSchema> = { marked: await readAll(deps, c.get('userId')) };
    return c.json(answer);
  });
  app.post('/:id/read', async (c) => {
    await readItem(deps, c.get('userId'), uuidParam(c.req.param('id'), 'notification'));
    return c.body(null, 204);
  });
  app.post('/:id/archive', async (c) => {
    await archiveItem(deps, c.get('userId'), uuidParam(c.req.param('id'), 'notification'));
    return c.body(null, 204);
  });

  const hub = deps.hub;
  if (hub) {
    const live = { sql: deps.sql, hub, logger: deps.logger, heartbeatMs: deps.heartbeatMs };
    app.get('/stream', (c) => serveInboxEvents(c, live, deps.live, c.get('userId'), sinceSeq(c)));
    app.get(
      '/ws',
      (c, next) => {
        sinceSeq(c); // a bad `since` is refused with 400 before the upgrade
        return next();
      },
      inboxWebSocket(deps.upgradeWebSocket, live, deps.live, (c) => ({ userId: c.get('userId'), since: sinceSeq(c) })),
    );
  } else {
    const unavailable = () => {
      throw new UnavailableError('redis');
    };
    app.get('/stream', unavailable);
    app.get('/ws', unavailable);
  }

  return app;
}

function authenticate(deps: EndUserInboxDeps, options: { fromQuery: boolean }) {
  return async (c: Context<Env>, next: Next) => {
    if (c.get('userId')) return next();
    if (!deps.jwtSecret) throw new NotFoundError('the end-user inbox API is off on this server: set INBOX_JWT_SECRET');
    const header = c.req.header('authorization');
    const token = header?.match(/^Bearer\s+(\S+)$/i)?.[1] ?? (options.fromQuery ? c.req.query('access_token') : undefined);
    if (!token) {
      throw new UnauthorizedError(
        `send the user's inbox token as "Authorization: Bearer <token>"${options.fromQuery ? ' or ?access_token=<token>' : ''}`,
      );
    }
    c.set('userId', await userIdFromToken(token, deps.jwtSecret));
    return next();
  };
}
