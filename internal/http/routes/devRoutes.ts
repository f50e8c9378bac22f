import { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { devTokenJsonSchema } from '../../domain/endUserToken.ts';
import { issueDevToken } from '../../service/endUserToken.ts';
import { userIdSchema } from '../../domain/storableText.ts';
import { json, jsonBody, text } from '../openapi/answers.ts';
import { publicRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { readJson } from '../request/jsonBody.ts';
import { htmlPage } from './htmlPage.ts';

/** `POST /dev/token`: the user to log in as. */
const devTokenRequestSchema = z.object({ user_id: userIdSchema });

// Development only (INBOX_DEV_PAGE with INBOX_JWT_SECRET): absent otherwise.
const development = publicRoutes('Development', { rateLimited: true });

const pageRoute = development.get('/inbox', {
  summary: 'Example inbox page (development only)',
  responses: { 200: text('text/html', 'the page') },
});

const tokenRoute = development.post('/token', {
  summary: 'An inbox token for any user (development only)',
  request: { body: jsonBody(devTokenRequestSchema) },
  responses: { 200: json(devTokenJsonSchema, 'the token') },
});

/**
 * Development only (INBOX_DEV_PAGE): the example inbox page, and the endpoint it logs in with,
 * which issues a token for any user id, as a product's backend would after its own login.
 */
export function devRoutes(deps: { jwtSecret: string }): OpenAPIHono {
  const app = new OpenAPIHono();
  serveRoute(app, pageRoute, htmlPage('inboxExample.html'));
  serveRoute(app, tokenRoute, async (c) => {
    const { user_id } = await readJson(c, devTokenRequestSchema);
    return c.json(await issueDevToken(user_id, deps.jwtSecret), 200);
  });
  return app;
}
