import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Hono } from 'hono';
import { z } from 'zod';
import { issueToken } from '../../service/endUserToken.ts';
import { userIdSchema } from '../../domain/storableText.ts';
import { readJson } from '../request/jsonBody.ts';

const EXAMPLE_PAGE = path.join(import.meta.dirname, '..', 'public', 'inboxExample.html');
/** Tokens the example page gets last an hour, as a product's own would last a session. */
const DEV_TOKEN_TTL_SECONDS = 3600;

/** `POST /dev/token`: the user to log in as. */
export const devTokenRequestSchema = z.object({ user_id: userIdSchema });

/** A token as the example page gets it, and the seconds it lasts. */
export const devTokenJsonSchema = z.object({ token: z.string(), expires_in: z.int().min(1) }).meta({ id: 'DevToken' });

/**
 * Development only (INBOX_DEV_PAGE): the example inbox page, and the endpoint it logs in with,
 * which issues a token for any user id, as a product's backend would after its own login.
 */
export function devRoutes(deps: { jwtSecret: string }): Hono {
  const app = new Hono();
  app.get('/inbox', async (c) => c.html(await readFile(EXAMPLE_PAGE, 'utf8')));
  app.post('/token', async (c) => {
    const { user_id } = await readJson(c, devTokenRequestSchema);
    const answer: z.infer<typeof devTokenJsonSchema> = {
      token: await issueToken(user_id, deps.jwtSecret, DEV_TOKEN_TTL_SECONDS),
      expires_in: DEV_TOKEN_TTL_SECONDS,
    };
    return c.json(answer);
  });
  return app;
}
