import { swaggerUI } from '@hono/swagger-ui';
import { Hono } from 'hono';
import { openApiDocument } from './openapi.ts';

/** The Swagger UI release `/docs` loads from jsDelivr. */
const SWAGGER_UI_VERSION = '5.17.14';

/**
 * The API's documentation, public like any API reference: `GET /openapi.json` (OpenAPI 3.1) and
 * `GET /docs`, a Swagger UI page that renders it (its scripts and styles come from a CDN).
 */
export function docsRoutes(): Hono {
  const app = new Hono();
  app.get('/openapi.json', (c) => c.json(openApiDocument()));
  // A pinned release: the page runs on the API's own origin, so what it loads must not change under it.
  app.get('/docs', swaggerUI({ url: '/openapi.json', title: 'herald API', version: SWAGGER_UI_VERSION }));
  return app;
}
