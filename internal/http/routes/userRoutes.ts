import { OpenAPIHono } from '@hono/zod-openapi';
import { preferencesJsonSchema, preferencesSchema, recipientProfileJsonSchema, recipientProfileSchema } from '../../domain/recipient.ts';
import { getPreferences, getRecipient, putPreferences, putRecipient, type RecipientServiceDeps } from '../../service/recipientService.ts';
import { json, jsonBody } from '../openapi/answers.ts';
import { producerRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { readJson } from '../request/jsonBody.ts';
import { refuseUserId, userParams } from '../request/pathParams.ts';

const recipients = producerRoutes('Recipients');

const putProfileRoute = recipients.put('/{userId}', {
  summary: "Store a user's profile (addresses, push subscriptions), replacing the previous one",
  description: 'A field left out is cleared.',
  request: { params: userParams, body: jsonBody(recipientProfileSchema) },
  responses: { 200: json(recipientProfileJsonSchema, 'the profile as stored') },
});

const getProfileRoute = recipients.get('/{userId}', {
  summary: "Read a user's profile and opt-outs",
  request: { params: userParams },
  responses: { 200: json(recipientProfileJsonSchema, 'the profile') },
  errors: { 400: 'the user id is not 1 to 255 storable characters', 404: 'nothing is stored for this user' },
});

const putPreferencesRoute = recipients.put('/{userId}/preferences', {
  summary: 'Replace the channels a user opted out of',
  description: 'Notifications on those channels end SKIPPED, unless they are `critical`.',
  request: { params: userParams, body: jsonBody(preferencesSchema) },
  responses: { 200: json(preferencesJsonSchema, 'the opt-outs as stored') },
});

const getPreferencesRoute = recipients.get('/{userId}/preferences', {
  summary: 'Read the channels a user opted out of',
  request: { params: userParams },
  responses: { 200: json(preferencesJsonSchema, 'the opt-outs (empty for an unknown user)') },
  errors: { 400: 'the user id is not 1 to 255 storable characters' },
});

/** Recipient profiles (`/users/:id`) and their channel preferences. */
export function userRoutes(deps: RecipientServiceDeps): OpenAPIHono {
  const app = new OpenAPIHono();

  serveRoute(
    app,
    putProfileRoute,
    async (c) => c.json(await putRecipient(deps, c.req.valid('param').userId, await readJson(c, recipientProfileSchema)), 200),
    refuseUserId,
  );
  serveRoute(app, getProfileRoute, async (c) => c.json(await getRecipient(deps, c.req.valid('param').userId), 200), refuseUserId);
  serveRoute(
    app,
    putPreferencesRoute,
    async (c) => {
      const { opted_out } = await readJson(c, preferencesSchema);
      return c.json(await putPreferences(deps, c.req.valid('param').userId, opted_out), 200);
    },
    refuseUserId,
  );
  serveRoute(app, getPreferencesRoute, async (c) => c.json(await getPreferences(deps, c.req.valid('param').userId), 200), refuseUserId);

  return app;
}
