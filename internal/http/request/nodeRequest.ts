import { IncomingMessage } from 'node:http';
import type { Context } from 'hono';

/**
 * The Node.js request behind the context, where the server is @hono/node-server (its bindings carry
 * it as `incoming`); undefined under `app.request()`, which has only the web Request.
 *
 * The hot routes read headers and the body from it directly: asking Hono's request for its body
 * makes the adapter build a full web Request (Headers, an AbortSignal, a web stream over the
 * socket), and for a header a Headers object, which together cost about a fifth of the API's CPU
 * per create.
 */
export function nodeRequest(c: Context): IncomingMessage | undefined {
  const incoming = (c.env as { incoming?: unknown } | undefined)?.incoming;
  return incoming instanceof IncomingMessage ? incoming : undefined;
}

/** A request header by its lower-case `name`, as Node.js parsed it; undefined if absent. */
export function requestHeader(c: Context, name: string): string | undefined {
  const incoming = nodeRequest(c);
  if (!incoming) return c.req.header(name);
  const value = incoming.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
