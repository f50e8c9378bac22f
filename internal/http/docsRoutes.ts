import { swaggerUI } from '@hono/swagger-ui';
import { Hono } from 'hono';
import { openApiDocument } from './openapi.ts';

/**
 * The API's documentation, public like any API reference: `GET /openapi.json` (OpenAPI 3.1) and
 * `GET /docs`, a Swagger UI page that renders it (its scripts and styles come from a CDN).
 */
export function docsRoutes(): Hono {
  const app = new Hono();
  app.get('/openapi.json', (c) => c.json(openApiDocument()));
  app.get('/docs', swaggerUI({ url: '/openapi.json', title: 'herald API' }));
  return app;
}
