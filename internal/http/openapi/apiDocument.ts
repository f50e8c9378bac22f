import type { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import pkg from '../../../package.json' with { type: 'json' };
import { notificationJsonSchema } from '../../domain/notification.ts';
import { uuidSchema } from '../../domain/uuid.ts';
import { jsonBody } from './answers.ts';

/*
 * The API's OpenAPI 3.1 document, generated from the routes as each module declares them (with
 * the zod schemas their handlers validate with and answer from); here only what belongs to the
 * API as a whole: who may call it, what a webhook's target receives, the title and the tags.
 */

type Document = ReturnType<OpenAPIHono['getOpenAPI31Document']>;

/** Registers on the root app what no single route declares: the security schemes and the webhook. */
export function describeApi(app: OpenAPIHono<any, any, any>): void {
  const registry = app.openAPIRegistry;
  registry.registerComponent('securitySchemes', 'apiKey', {
    type: 'http',
    scheme: 'bearer',
    description:
      "A producer's API key (`npm run apikey -- create <name>`). Keys carry scopes: `read` for GET, `send` for the other producer routes, `admin` for /admin, /metrics and /stats. With AUTH_DISABLED (development only) no key is asked for.",
  });
  registry.registerComponent('securitySchemes', 'inboxToken', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: "An end user's inbox token, issued by the product's backend: a JWT signed with HS256 and INBOX_JWT_SECRET, `sub` the user id, with an `exp`.",
  });
  registry.registerComponent('securitySchemes', 'inboxTokenQuery', {
    type: 'apiKey',
    in: 'query',
    name: 'access_token',
    description: 'The inbox token in the URL, for WebSocket and EventSource clients, which cannot set headers (use short-lived tokens).',
  });
  // What a WEBHOOK notification's target receives.
  registry.registerWebhook({
    method: 'post',
    path: 'notification',
    tags: ['Notifications'],
    summary: 'A WEBHOOK notification, as POSTed to its `to`',
    description:
      'Standard Webhooks headers; `webhook-signature` only when WEBHOOK_SECRET is set. A 2xx is delivered; a timeout, 408, 429 or 5xx is retried; any other answer (redirects included) fails the notification.',
    request: {
      headers: z.object({
        'webhook-id': uuidSchema.meta({ description: 'the notification id, the same on every attempt: drop repeats by it' }),
        'webhook-timestamp': z.string().meta({ description: 'Unix seconds' }),
        'webhook-signature': z.string().optional().meta({ description: '`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`' }),
      }),
      body: jsonBody(notificationJsonSchema),
    },
    responses: { 200: { description: 'any 2xx: delivered' } },
  });
}

/** The document of `app`'s routes, generated once: no route is added while the process runs. */
export function apiDocument(app: OpenAPIHono<any, any, any>): () => Document {
  let generated: Document | undefined;
  return () =>
    (generated ??= app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: {
        title: 'herald',
        version: pkg.version,
        description:
          'Notifications by email, SMS, Web Push, webhook and in-app inbox. Errors are answered as `{"error": {"code", "message", "details"?}}`; any route answers 404 `not_found` for an unknown path.',
      },
      tags: [
        { name: 'Notifications' },
        { name: 'Recipients' },
        { name: 'Topics' },
        { name: 'Inbox', description: "The end user's own inbox, read by web and mobile clients with the user's token" },
        { name: 'Operations' },
        { name: 'Health' },
        { name: 'Documentation' },
        { name: 'Development' },
      ],
    }));
}
