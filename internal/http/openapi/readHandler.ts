import type { Context } from 'hono';

/**
 * The handler of a route that only reads: 200 with what `read` returns for the route's path
 * parameters, as its declaration validated them.
 */
export function readHandler<T>(read: (params: T) => Promise<object>) {
  return async (c: Context<any, any, { out: { param: T } }>) => c.json(await read(c.req.valid('param')), 200);
}
