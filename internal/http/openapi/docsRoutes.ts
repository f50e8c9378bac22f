import { OpenAPIHono } from '@hono/zod-openapi';
import { swaggerUI } from '@hono/swagger-ui';
import { z } from 'zod';
import { json, text } from './answers.ts';
import { publicRoutes } from './routeDeclaration.ts';
import { serveRoute } from './serveRoute.ts';

/** The Swagger UI release `/docs` loads from jsDelivr. */
const SWAGGER_UI_VERSION = '5.17.14';

// Public, rate limited per address like the other routes without a key.
const documentation = publicRoutes('Documentation', { rateLimited: true });

const documentRoute = documentation.get('/openapi.json', {
  summary: 'This document (OpenAPI 3.1)',
  responses: { 200: json(z.record(z.string(), z.unknown()), 'the OpenAPI document') },
});

const pageRoute = documentation.get('/docs', {
  summary: 'This document, browsable (Swagger UI)',
  responses: { 200: text('text/html', 'an HTML page that renders /openapi.json') },
});

/**
 * The API's documentation, public like any API reference: `GET /openapi.json` (OpenAPI 3.1),
 * `document` generated from the routes, and `GET /docs`, a Swagger UI page that renders it (its
 * scripts and styles come from a CDN).
 */
export function docsRoutes(document: () => object): OpenAPIHono {
  const app = new OpenAPIHono();
  serveRoute(app, documentRoute, (c) => c.json(document(), 200));
  // A pinned release: the page runs on the API's own origin, so what it loads must not change under it.
  const page = swaggerUI({ url: '/openapi.json', title: 'herald API', version: SWAGGER_UI_VERSION });
  serveRoute(app, pageRoute, (c, next) => page(c, next) as Promise<Response>);
  return app;
}
