import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { OpenAPIHono } from '@hono/zod-openapi';
import { z } from 'zod';
import { json, text } from '../openapi/answers.ts';
import { publicRoutes } from '../openapi/routeDeclaration.ts';
import { serveRoute } from '../openapi/serveRoute.ts';
import { htmlPage, once, PUBLIC_DIR } from './htmlPage.ts';

/** Where swagger-ui-dist is installed: the page's script and styles come from it, not from a CDN. */
const SWAGGER_UI = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
/** How long browsers may keep the page's files (an upgrade of swagger-ui-dist shows within this). */
const ASSET_CACHE_CONTROL = 'public, max-age=3600';

/** What the page loads, each served at `/docs/<name>`. */
const ASSETS = [
  { name: 'swagger-ui.css', file: path.join(SWAGGER_UI, 'swagger-ui.css'), type: 'text/css', what: "Swagger UI's styles" },
  { name: 'swagger-ui-bundle.js', file: path.join(SWAGGER_UI, 'swagger-ui-bundle.js'), type: 'text/javascript', what: 'Swagger UI' },
  { name: 'docs.js', file: path.join(PUBLIC_DIR, 'docs.js'), type: 'text/javascript', what: 'the script that starts Swagger UI on /openapi.json' },
] as const;

// Public, rate limited per address like the other routes without a key.
const documentation = publicRoutes('Documentation', { rateLimited: true });

const documentRoute = documentation.get('/openapi.json', {
  summary: 'This document (OpenAPI 3.1)',
  responses: { 200: json(z.record(z.string(), z.unknown()), 'the OpenAPI document') },
});

const pageRoute = documentation.get('/docs', {
  summary: 'This document, browsable (Swagger UI)',
  description: 'Everything the page loads comes from this server (`/docs/*`), under a Content-Security-Policy that admits nothing else.',
  responses: { 200: text('text/html', 'an HTML page that renders /openapi.json') },
});

/**
 * The API's documentation, public like any API reference: `GET /openapi.json` (OpenAPI 3.1),
 * `document` generated from the routes, and `GET /docs`, a Swagger UI page that renders it. The
 * page runs on the origin where operators paste their admin keys, so it loads nothing from anywhere
 * else: Swagger UI comes from the installed swagger-ui-dist (pinned by the lockfile), and the
 * page's policy admits scripts and styles from this origin only. It works offline too.
 */
export function docsRoutes(document: () => object): OpenAPIHono {
  const app = new OpenAPIHono();
  serveRoute(app, documentRoute, (c) => c.json(document(), 200));
  serveRoute(app, pageRoute, htmlPage('docs.html', { script: ["'self'"], style: ["'self'"] }));
  for (const asset of ASSETS) {
    const route = documentation.get(`/docs/${asset.name}`, {
      summary: `The documentation page's ${asset.name}: ${asset.what}`,
      responses: { 200: text(asset.type, asset.name) },
    });
    const content = once(() => readFile(asset.file));
    serveRoute(app, route, async (c) =>
      c.body(await content(), 200, { 'Content-Type': `${asset.type}; charset=utf-8`, 'Cache-Control': ASSET_CACHE_CONTROL }),
    );
  }
  return app;
}
