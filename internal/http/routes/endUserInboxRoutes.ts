import type { Context, Next } from 'hono';
import { Hono } from 'hono';
import type { UpgradeWebSocket } from 'hono/ws';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import { userIdFromToken } from '../../service/endUserToken.ts';
import { NotFoundError, UnauthorizedError } from '../../domain/errors.ts';
import { archiveItem, readAll, readInbox, readItem, unreadCount } from '../../service/inboxService.ts';
import type { InboxSessionDeps } from '../../service/inboxSession.ts';
import type { Logger } from '../../platform/logger.ts';
import { inboxPage, sinceSeq } from '../request/inboxQuery.ts';
import { inboxWebSocket, serveInboxEvents, type LiveConnections } from './liveInbox.ts';
import { uuidParam } from '../request/pathParams.ts';

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

  // Used only past `authenticate`, which lets nothing through while the inbox is off (no hub then).
  const live = deps.endUsers && { sql: deps.sql, hub: deps.endUsers.hub, logger: deps.logger, heartbeatMs: deps.heartbeatMs };
  app.get('/stream', (c) => serveInboxEvents(c, live!, deps.live, c.get('userId'), sinceSeq(c)));
  app.get(
    '/ws',
    (c, next) => {
      sinceSeq(c); // a bad `since` is refused with 400 before the upgrade
      return next();
    },
    inboxWebSocket(deps.upgradeWebSocket, live!, deps.live, (c) => ({ userId: c.get('userId'), since: sinceSeq(c) })),
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
    c.set('userId', await userIdFromToken(token, deps.endUsers.jwtSecret));
    return next();
  };
}
