import type { Server } from 'node:http';
import { createNodeWebSocket } from '@hono/node-ws';
import { OpenAPIHono } from '@hono/zod-openapi';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { secureHeaders } from 'hono/secure-headers';
import type { ApiMetrics } from '../metrics/apiMetrics.ts';
import type { NotificationServiceDeps } from '../service/notificationService.ts';
import type { ReadinessDeps } from '../service/readiness.ts';
import type { ApiKeyVerifier } from '../service/apiKeyService.ts';
import { requireApiKey } from './middleware/apiKeyAuth.ts';
import { refuseWhenBacklogged } from './middleware/backpressure.ts';
import { byAddress, byApiKey, rateLimit, type RateLimits } from './middleware/rateLimit.ts';
import { adminRoutes } from './routes/adminRoutes.ts';
import { dashboardRoutes } from './routes/dashboardRoutes.ts';
import { devRoutes } from './routes/devRoutes.ts';
import { apiDocument, describeApi } from './openapi/apiDocument.ts';
import { docsRoutes } from './routes/docsRoutes.ts';
import { endUserInboxRoutes, type EndUserAccess } from './routes/endUserInboxRoutes.ts';
import { handleError } from './errorHandler.ts';
import { fanoutRoutes } from './routes/fanoutRoutes.ts';
import { healthRoutes } from './routes/healthRoutes.ts';
import { inboxRoutes } from './routes/inboxRoutes.ts';
import { LiveConnections, MAX_CLIENT_MESSAGE_BYTES } from './routes/liveInbox.ts';
import { measureRequests } from '../metrics/metricsRoutes.ts';
import { metricsRoutes } from './routes/metricsRoute.ts';
import { refuseInvalid } from './request/invalidInput.ts';
import { notificationRoutes } from './routes/notificationRoutes.ts';
import { statsRoutes } from './routes/statsRoutes.ts';
import { topicRoutes } from './routes/topicRoutes.ts';
import { userRoutes } from './routes/userRoutes.ts';

export interface AppDeps extends NotificationServiceDeps, ReadinessDeps {
  isDraining: () => boolean;
  /** Checks producers' API keys; 'disabled' lets every request in (AUTH_DISABLED, development only). */
  auth: ApiKeyVerifier | 'disabled';
  /** The process's Prometheus metrics, served on /metrics. */
  metrics: ApiMetrics;
  /** Rate limits (one that is off is absent) and the backlog bound (0: none). */
  protection: { rateLimits: RateLimits; maxQueueDepth: number };
  /** The end users' inbox: its secret and hub (absent: the inbox is off), live heartbeat, the example page, CORS. */
  inbox: { endUsers?: EndUserAccess; heartbeatMs: number; devPage: boolean; corsOrigins?: string[] };
}

export interface HttpApi {
  /** The routes, each declared once with its OpenAPI description (served at /openapi.json). */
  app: OpenAPIHono;
  /** Lets the server hand WebSocket upgrades to the routes. */
  injectWebSocket(server: Server): void;
  /** The open WebSockets and event streams, which a stopping server closes. */
  live: LiveConnections;
}

/** The operators' dashboard page, served without an API key (see below). */
const DASHBOARD_PAGE = '/admin/dashboard';

/** The HTTP API, built without a server. */
export function createApp(deps: AppDeps): HttpApi {
  // A path or query that fails its declared schema is refused by the one onError (as a 400 naming the field).
  const app = new OpenAPIHono({ defaultHook: refuseInvalid });
  describeApi(app);
  const { upgradeWebSocket, injectWebSocket, wss } = createNodeWebSocket({ app });
  // @hono/node-ws makes its WebSocketServer without options; each connection reads them at its upgrade.
  wss.options.maxPayload = MAX_CLIENT_MESSAGE_BYTES;
  const live = new LiveConnections();
  const { inbox } = deps;
  // Every answer, errors included: nosniff, no framing by other origins, no Referer sent on. HSTS is
  // left to whatever terminates TLS in front of the API; a route's own headers (the pages') win.
  app.use(secureHeaders({ strictTransportSecurity: false, overwrite: false }));
  // While draining, each answer closes its connection, so kept-alive clients reconnect to a live
  // process instead of holding this one open until it cuts them off.
  app.use(async (c, next) => {
    await next();
    if (deps.isDraining()) c.header('Connection', 'close');
  });
  app.route('/', healthRoutes(deps));
  // Requests are measured from here on (not the health checks, which are polled constantly).
  app.use(measureRequests(deps.metrics));
  const verifier = deps.auth === 'disabled' ? undefined : deps.auth;
  const limits = deps.protection.rateLimits;
  // Producers' and operators' routes count per API key, once the key is checked.
  const perKey = rateLimit(limits.perKey, byApiKey, 'API key');
  // Operators' routes need the admin scope, whatever the method. The one exception is the dashboard
  // page: it holds no data, asks the operator for a key and reads the other routes with it.
  const adminKey = requireApiKey(verifier, deps.requestTimeoutMs, () => 'admin');
  app.use('/metrics', adminKey, perKey);
  app.use('/stats', adminKey, perKey);
  app.use('/admin/*', async (c, next) => {
    if (c.req.path === DASHBOARD_PAGE) return next();
    await adminKey(c, async () => {
      await perKey(c, next);
    });
  });
  app.route('/metrics', metricsRoutes(deps.metrics.registry));
  app.route('/stats', statsRoutes(deps));
  // The product's own pages call the end users' inbox from their origins. Before the inbox's token
  // check, so a browser's preflight (which carries no token) is answered.
  if (inbox.corsOrigins?.length) {
    app.use('/inbox/*', cors({ origin: inbox.corsOrigins, allowHeaders: ['Authorization', 'Content-Type', 'Last-Event-ID'], allowMethods: ['GET', 'POST'], maxAge: 600 }));
  }
  // Routes without an API key count per client address.
  const perAddress = rateLimit(limits.perAddress, byAddress, 'client address');
  for (const path of ['/inbox/*', '/dev/*', '/openapi.json', '/docs/*', DASHBOARD_PAGE]) app.use(path, perAddress);
  // The API's documentation is public, as an API reference is; mounted after its rate limit so that applies.
  app.route('/', docsRoutes(apiDocument(app)));
  // Producers' routes take an API key; the end users' inbox takes their own token instead.
  // `/x/*` matches `/x` itself too: one registration each, so a request is counted once.
  const producerKey = requireApiKey(verifier, deps.requestTimeoutMs);
  for (const path of ['/notifications', '/users', '/topics', '/fanouts']) app.use(`${path}/*`, producerKey, perKey);
  app.use('/notifications', refuseWhenBacklogged(deps, deps.protection.maxQueueDepth));
  app.route('/notifications', notificationRoutes(deps));
  app.route('/users', inboxRoutes(deps));
  app.route('/users', userRoutes(deps));
  app.route('/topics', topicRoutes(deps));
  app.route('/fanouts', fanoutRoutes(deps));
  app.route('/admin', adminRoutes(deps));
  app.route('/admin', dashboardRoutes(deps));
  app.route('/inbox', endUserInboxRoutes({ ...deps, ...inbox, live, upgradeWebSocket }));
  if (inbox.devPage && inbox.endUsers) app.route('/dev', devRoutes({ jwtSecret: inbox.endUsers.jwtSecret }));
  app.notFound((c) => {
    throw new HTTPException(404, { message: `no route for ${c.req.method} ${c.req.path}` });
  });
  app.onError(handleError(deps.logger));
  return { app, injectWebSocket: (server) => injectWebSocket(server), live };
}
