import { Hono } from 'hono';
import { preferencesSchema, recipientProfileSchema } from '../../domain/recipient.ts';
import { getPreferences, getRecipient, putPreferences, putRecipient, type RecipientServiceDeps } from '../../service/recipientService.ts';
import { limitBody, readJson } from '../request/jsonBody.ts';
import { userIdParam } from '../request/pathParams.ts';

/** Recipient profiles (`/users/:id`) and their channel preferences. */
export function userRoutes(deps: RecipientServiceDeps): Hono {
  const app = new Hono();

  app.put('/:userId', limitBody, async (c) => {
    const userId = userIdParam(c.req.param('userId'));
    return c.json(await putRecipient(deps, userId, await readJson(c, recipientProfileSchema)));
  });

  app.get('/:userId', async (c) => c.json(await getRecipient(deps, userIdParam(c.req.param('userId')))));

  app.put('/:userId/preferences', limitBody, async (c) => {
    const userId = userIdParam(c.req.param('userId'));
    const { opted_out } = await readJson(c, preferencesSchema);
    return c.json(await putPreferences(deps, userId, opted_out));
  });

  app.get('/:userId/preferences', async (c) => c.json(await getPreferences(deps, userIdParam(c.req.param('userId')))));

  return app;
}
