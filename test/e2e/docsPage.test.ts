import type { Browser } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { browserTestsSkipped, expectRenderedScreenshot, launchChromium, openTestPage } from '../support/browser.ts';
import { useTestScope } from '../support/testScope.ts';
import { waitFor } from '../support/waitFor.ts';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'];
/** How long Swagger UI may take to fetch and render the document on a busy machine. */
const RENDERED_WITHIN_MS = 20_000;

describe.skipIf(browserTestsSkipped('test/e2e/docsPage.test.ts'))('the API documentation page in Chromium, against the real API', () => {
  const scope = useTestScope('file');
  let api: { url: string };
  let browser: Browser;

  beforeAll(async () => {
    ({ api } = await scope.services({ workers: 0 }));
    browser = await launchChromium();
    scope.defer(() => browser.close());
  });

  it('renders every documented operation from files this server serves, under its policy, without a script or policy error', async () => {
    type Items = Record<string, Record<string, unknown>>;
    const document = (await (await fetch(`${api.url}/openapi.json`)).json()) as { paths: Items; webhooks?: Items };
    // Swagger UI shows the webhooks (the requests herald sends) as operations too.
    const operations = [...Object.values(document.paths), ...Object.values(document.webhooks ?? {})].flatMap((item) => METHODS.filter((m) => item[m]));
    expect(operations.length).toBeGreaterThan(25);

    const { page, errors } = await openTestPage(browser, { width: 1280, height: 900 });
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    await page.goto(`${api.url}/docs`);
    await waitFor('Swagger UI to render the operations', async () => (await page.locator('.opblock').count()) === operations.length, RENDERED_WITHIN_MS);

    expect(await page.locator('.opblock-summary-path', { hasText: '/notifications/{id}' }).count()).toBeGreaterThan(0);
    expect(await page.textContent('.info .title')).toContain('herald');
    // Everything came from this server: the page, Swagger UI, its styles, the starter and the document.
    expect(requested.filter((url) => !url.startsWith(`${api.url}/`) && !url.startsWith('data:'))).toEqual([]);
    expect(requested.map((url) => new URL(url, api.url).pathname)).toEqual(
      expect.arrayContaining(['/docs', '/docs/swagger-ui.css', '/docs/swagger-ui-bundle.js', '/docs/docs.js', '/openapi.json']),
    );
    await expectRenderedScreenshot(page, 30_000);
    expect(errors).toEqual([]);
  });
});
