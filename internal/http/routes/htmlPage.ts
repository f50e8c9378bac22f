import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Context } from 'hono';

/** The pages and the files they load (`npm run build` copies them beside the compiled code). */
export const PUBLIC_DIR = path.join(import.meta.dirname, '..', 'public');

/**
 * `load`, called once and its result kept: a page or an asset is read on its first request. A
 * failed read is tried again on the next request rather than remembered.
 */
export function once<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined;
  return () =>
    (loaded ??= load().catch((err: unknown) => {
      loaded = undefined;
      throw err;
    }));
}

/** Sources a page admits beside its own inline scripts and styles (e.g. `'self'` for files it loads). */
export interface PageSources {
  script?: string[];
  style?: string[];
}

/**
 * A handler serving `file` of `public/` with a strict Content-Security-Policy, read once. The pages
 * handle keys and tokens (an operator's admin key, an end user's inbox token) on the API's origin,
 * so the policy admits only their own inline scripts and styles (by SHA-256), what `sources` adds,
 * requests to this origin, and no framing: were some API text ever to slip into a page as markup,
 * it could neither run nor send a key away.
 */
export function htmlPage(file: string, sources: PageSources = {}): (c: Context) => Promise<Response> {
  const load = once(async () => {
    const html = await readFile(path.join(PUBLIC_DIR, file), 'utf8');
    return { html, policy: policyFor(html, sources) };
  });
  return async (c) => {
    const { html, policy } = await load();
    c.header('Content-Security-Policy', policy);
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    return c.html(html, 200);
  };
}

/** The page's policy: its inline `<script>` and `<style>` admitted by their SHA-256 (CSP's hash sources). */
function policyFor(html: string, sources: PageSources): string {
  const hashes = (tag: string) =>
    [...html.matchAll(new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g'))]
      .map((m) => m[1]!)
      .filter((body) => body.trim() !== '')
      .map((body) => `'sha256-${createHash('sha256').update(body).digest('base64')}'`);
  const list = (items: string[]) => (items.length ? items.join(' ') : "'none'");
  return [
    "default-src 'none'",
    `script-src ${list([...hashes('script'), ...(sources.script ?? [])])}`,
    `style-src ${list([...hashes('style'), ...(sources.style ?? [])])}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
