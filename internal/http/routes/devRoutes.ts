import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { issueToken } from '../../service/endUserToken.ts';
import { userIdSchema } from '../../domain/storableText.ts';
import { json, jsonBody, text } from '../openapi/answers.ts';
import { publicRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { readJson } from '../request/jsonBody.ts';

const EXAMPLE_PAGE = path.join(import.meta.dirname, '..', 'public', 'inboxExample.html');
/** Tokens the example page gets last an hour, as a product's own would last a session. */
const DEV_TOKEN_TTL_SECONDS = 3600;

/** `POST /dev/token`: the user to log in as. */
const devTokenRequestSchema = z.object({ user_id: userIdSchema });

/** A token as the example page gets it, and the seconds it lasts. */
const devTokenJsonSchema = z.object({ token: z.string(), expires_in: z.int().min(1) }).meta({ id: 'DevToken' });

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
  serveRoute(app, pageRoute, async (c) => c.html(await readFile(EXAMPLE_PAGE, 'utf8'), 200));
  serveRoute(app, tokenRoute, async (c) => {
    const { user_id } = await readJson(c, devTokenRequestSchema);
    const answer: z.infer<typeof devTokenJsonSchema> = {
      token: await issueToken(user_id, deps.jwtSecret, DEV_TOKEN_TTL_SECONDS),
      expires_in: DEV_TOKEN_TTL_SECONDS,
    };
    return c.json(answer, 200);
  });
  return app;
}
