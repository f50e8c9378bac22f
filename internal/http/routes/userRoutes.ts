import { OpenAPIHono } from '@hono/zod-openapi';
import type { z } from 'zod';
import { preferencesJsonSchema, preferencesSchema, recipientProfileJsonSchema, recipientProfileSchema } from '../../domain/recipient.ts';
import { getPreferences, getRecipient, putPreferences, putRecipient, type RecipientServiceDeps } from '../../service/recipientService.ts';
import { json, jsonBody, type ErrorStatus } from '../openapi/answers.ts';
import { readHandler } from '../openapi/readHandler.ts';
import { producerRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { readJson } from '../request/jsonBody.ts';
import { refuseUserId, userParams } from '../request/pathParams.ts';

const recipients = producerRoutes('Recipients');

/** What one method of a user's document says of itself: its summary, its answer, its own errors. */
interface MethodText {
  summary: string;
  description?: string;
  answer: string;
  errors?: Partial<Record<ErrorStatus, string>>;
}

/**
 * A document the API keeps per user at `path`: PUT replaces it whole with `body` and answers it as
 * stored, GET reads it back; both answer `stored`.
 */
function userDocument<P extends string, B extends z.ZodType>(path: P, doc: { body: B; stored: z.ZodType; put: MethodText; get: MethodText }) {
  const { put, get } = doc;
  return {
    put: recipients.put(path, {
      summary: put.summary,
      description: put.description,
      request: { params: userParams, body: jsonBody(doc.body) },
      responses: { 200: json(doc.stored, put.answer) },
    }),
    get: recipients.get(path, {
      summary: get.summary,
      request: { params: userParams },
      responses: { 200: json(doc.stored, get.answer) },
      errors: { 400: 'the user id is not 1 to 255 storable characters', ...get.errors },
    }),
  };
}

const profileRoutes = userDocument('/{userId}', {
  body: recipientProfileSchema,
  stored: recipientProfileJsonSchema,
  put: { summary: "Store a user's profile (addresses, push subscriptions), replacing the previous one", description: 'A field left out is cleared.', answer: 'the profile as stored' },
  get: { summary: "Read a user's profile and opt-outs", answer: 'the profile', errors: { 404: 'nothing is stored for this user' } },
});

const preferencesRoutes = userDocument('/{userId}/preferences', {
  body: preferencesSchema,
  stored: preferencesJsonSchema,
  put: { summary: 'Replace the channels a user opted out of', description: 'Notifications on those channels end SKIPPED, unless they are `critical`.', answer: 'the opt-outs as stored' },
  get: { summary: 'Read the channels a user opted out of', answer: 'the opt-outs (empty for an unknown user)' },
});

/** Recipient profiles (`/users/:id`) and their channel preferences. */
export function userRoutes(deps: RecipientServiceDeps): OpenAPIHono {
  const app = new OpenAPIHono();

  serveRoute(
    app,
    profileRoutes.put,
    async (c) => c.json(await putRecipient(deps, c.req.valid('param').userId, await readJson(c, recipientProfileSchema)), 200),
    refuseUserId,
  );
  serveRoute(app, profileRoutes.get, readHandler(({ userId }) => getRecipient(deps, userId)), refuseUserId);
  serveRoute(
    app,
    preferencesRoutes.put,
    async (c) => {
      const { opted_out } = await readJson(c, preferencesSchema);
      return c.json(await putPreferences(deps, c.req.valid('param').userId, opted_out), 200);
    },
    refuseUserId,
  );
  serveRoute(app, preferencesRoutes.get, readHandler(({ userId }) => getPreferences(deps, userId)), refuseUserId);

  return app;
}
