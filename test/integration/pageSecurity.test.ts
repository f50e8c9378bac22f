import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/fileDatabase.ts';
import { everyRouteEnv } from '../support/servedOpenApi.ts';
import { useTestApi } from './helpers.ts';

const INBOX_SECRET = 'page-security-test-secret-0123456789abcdef';

/** The directives of a Content-Security-Policy header, by name. */
function directives(policy: string | null): Map<string, string[]> {
  expect(policy, 'a Content-Security-Policy header').toBeTruthy();
  return new Map(
    policy!.split(';').map((d) => {
      const [name, ...sources] = d.trim().split(/\s+/);
      return [name!, sources];
    }),
  );
}

/** Every URL a page names in src or href attributes. */
const referencedUrls = (html: string) => [...html.matchAll(/\s(?:src|href)="([^"]*)"/g)].map((m) => m[1]!);

describe('security headers and the pages’ policies', () => {
  const db = useTestDatabase();
  const api = useTestApi(db, { env: everyRouteEnv(INBOX_SECRET) });

  it.each([
    ['a health check', 'GET', '/healthz', 200],
    ['the OpenAPI document', 'GET', '/openapi.json', 200],
    ['an unknown route', 'GET', '/nowhere', 404],
    ['a malformed id', 'GET', '/notifications/not-a-uuid', 400],
    ['malformed JSON', 'POST', '/dev/token', 400],
    ['the docs page', 'GET', '/docs', 200],
    ['a docs script', 'GET', '/docs/docs.js', 200],
    ['the example inbox page', 'GET', '/dev/inbox', 200],
  ])('sends X-Content-Type-Options: nosniff on %s', async (_, method, path, status) => {
    const res = await api.app.request(path, { method, headers: { 'content-type': 'application/json' }, body: method === 'POST' ? '{' : undefined });
    expect(res.status).toBe(status);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('strict-transport-security')).toBeNull();
    await res.arrayBuffer();
  });

  it('serves /docs with everything it loads from this server, under a policy that admits nothing else', async () => {
    const page = await api.app.request('/docs');
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    const urls = referencedUrls(html);
    expect(urls.sort()).toEqual(['docs/docs.js', 'docs/swagger-ui-bundle.js', 'docs/swagger-ui.css']);
    // No inline script: the policy admits scripts from this origin only.
    expect(html).not.toMatch(/<script(\s[^>]*)?>[^<]/);

    const policy = directives(page.headers.get('content-security-policy'));
    expect(policy.get('default-src')).toEqual(["'none'"]);
    expect(policy.get('script-src')).toEqual(["'self'"]);
    expect(policy.get('style-src')).toEqual(["'self'"]);
    expect(policy.get('connect-src')).toEqual(["'self'"]);
    expect(policy.get('frame-ancestors')).toEqual(["'none'"]);
    expect(page.headers.get('x-frame-options')).toBe('DENY');

    for (const url of urls) {
      const asset = await api.app.request(`/${url}`);
      expect(asset.status, url).toBe(200);
      expect(asset.headers.get('content-type'), url).toBe(url.endsWith('.css') ? 'text/css; charset=utf-8' : 'text/javascript; charset=utf-8');
      const body = await asset.text();
      expect(body.length, url).toBeGreaterThan(0);
      // Nothing loaded from elsewhere by what the page loads either (source maps aside, which only developer tools fetch).
      expect(body, url).not.toMatch(/(src|href)="(https?:)?\/\//);
    }
    expect(await (await api.app.request('/docs/docs.js')).text()).toContain("url: 'openapi.json'");
    expect((await api.app.request('/docs/index.html')).status).toBe(404);
    expect((await api.app.request('/docs/../package.json')).status).toBe(404);
  });

  it.each([
    ['the example inbox page', '/dev/inbox'],
    ['the operators’ dashboard', '/admin/dashboard'],
  ])('serves %s with a policy that admits exactly its own inline script and style', async (_, path) => {
    const page = await api.app.request(path);
    expect(page.status).toBe(200);
    const html = await page.text();
    const hash = (tag: string) => {
      const body = html.match(new RegExp(`<${tag}[^>]*>([\\s\\S]*?)</${tag}>`))![1]!;
      return `'sha256-${createHash('sha256').update(body).digest('base64')}'`;
    };
    const policy = directives(page.headers.get('content-security-policy'));
    expect(policy.get('default-src')).toEqual(["'none'"]);
    expect(policy.get('script-src')).toEqual([hash('script')]);
    expect(policy.get('style-src')).toEqual([hash('style')]);
    expect(policy.get('connect-src')).toEqual(["'self'"]);
    expect(policy.get('frame-ancestors')).toEqual(["'none'"]);
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(referencedUrls(html).filter((url) => /^(https?:)?\/\//.test(url))).toEqual([]);
  });
});
