import type { FuzzRequest } from './fuzzRequests.ts';

/** Most requests a shrink sends: enough for a few headers, query pairs and body fields. */
const MAX_TRIES = 150;

/**
 * The smallest request still failing that a greedy search finds: it drops headers, query pairs and
 * body members and simplifies the values left, keeping each change that still fails `fails`.
 */
export async function shrink(request: FuzzRequest, fails: (candidate: FuzzRequest) => Promise<boolean>): Promise<FuzzRequest> {
  let current = request;
  let tries = 0;
  for (let improved = true; improved && tries < MAX_TRIES; ) {
    improved = false;
    for (const candidate of simpler(current)) {
      if (++tries > MAX_TRIES) break;
      if (await fails(candidate)) {
        current = candidate;
        improved = true;
        break;
      }
    }
  }
  return current;
}

function* simpler(request: FuzzRequest): Generator<FuzzRequest> {
  for (let i = 0; i < request.headers.length; i++) {
    yield { ...request, headers: request.headers.filter((_, j) => j !== i) };
  }
  const [path, query] = splitUrl(request.url);
  if (query !== undefined) {
    yield { ...request, url: path };
    const pairs = query.split('&');
    if (pairs.length > 1) for (let i = 0; i < pairs.length; i++) yield { ...request, url: `${path}?${pairs.filter((_, j) => j !== i).join('&')}` };
  }
  if (request.body === undefined) return;
  yield { ...request, body: undefined };
  if (typeof request.body !== 'string') return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(request.body);
  } catch {
    if (request.body.length > 1) yield { ...request, body: request.body.slice(0, Math.ceil(request.body.length / 2)) };
    return;
  }
  for (const value of smallerValues(parsed, 0)) {
    const body = stringifyOrUndefined(value);
    if (body !== undefined) yield { ...request, body };
  }
}

/** JSON text of `value`, or undefined where it nests too deep for JSON.stringify. */
function stringifyOrUndefined(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return undefined;
  }
}

function splitUrl(url: string): [string, string | undefined] {
  const at = url.indexOf('?');
  return at < 0 ? [url, undefined] : [url.slice(0, at), url.slice(at + 1)];
}

/** How deep into a body the search looks for something to simplify. */
const MAX_DEPTH = 16;

/** Values like `value` but smaller: a member or element fewer, or one of them simpler. */
function* smallerValues(value: unknown, depth: number): Generator<unknown> {
  if (depth > MAX_DEPTH) return;
  if (typeof value === 'string') {
    if (value.length > 1) yield value.slice(0, Math.ceil(value.length / 2));
    if (value.length > 1) yield value.slice(Math.floor(value.length / 2));
    return;
  }
  if (Array.isArray(value)) {
    if (value.length > 1) yield value.slice(0, Math.ceil(value.length / 2));
    if (value.length > 1) yield value.slice(1);
    for (let i = 0; i < value.length; i++) for (const smaller of smallerValues(value[i], depth + 1)) yield value.map((v, j) => (j === i ? smaller : v));
    return;
  }
  if (typeof value !== 'object' || value === null) return;
  const entries = Object.entries(value);
  for (let i = 0; i < entries.length; i++) yield objectOf(entries.filter((_, j) => j !== i));
  for (let i = 0; i < entries.length; i++) {
    for (const smaller of smallerValues(entries[i]![1], depth + 1)) yield objectOf(entries.map(([k, v], j) => [k, j === i ? smaller : v]));
  }
}

/** An object of these members, `__proto__` included as an own member (as JSON.parse makes it). */
function objectOf(entries: [string, unknown][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}
