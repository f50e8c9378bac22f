import { sign, verify } from 'hono/jwt';
import { UnauthorizedError } from '../domain/errors.ts';
import { userIdSchema } from '../domain/storableText.ts';

/**
 * End users read their own inbox with a token the product's backend issues: a JWT signed with
 * HS256 and INBOX_JWT_SECRET whose `sub` is the user id and which carries an `exp` (checked, as is
 * `nbf` when present).
 */
export async function userIdFromToken(token: string, secret: string): Promise<string> {
  let payload: Record<string, unknown>;
  try {
    payload = await verify(token, secret, 'HS256');
  } catch (err) {
    // The library's message quotes the token; an answer and a log line must not.
    throw new UnauthorizedError(`inbox token refused: ${err instanceof Error ? err.name : 'invalid'}`);
  }
  // Tokens travel in URLs (WebSocket, EventSource): one without an end would work for ever.
  if (typeof payload.exp !== 'number') throw new UnauthorizedError('inbox token refused: it must carry "exp"');
  const sub = payload.sub;
  // The same rule as every user id the API takes, so a token it issued is one it accepts.
  if (typeof sub !== 'string' || userIdSchema.safeParse(sub).data !== sub) {
    throw new UnauthorizedError('inbox token refused: its "sub" must be the user id (1 to 255 characters)');
  }
  return sub;
}

/** A token for `userId`, valid for `ttlSeconds`: what a product's backend does, here for the example page. */
export async function issueToken(userId: string, secret: string, ttlSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return sign({ sub: userId, iat: now, exp: now + ttlSeconds }, secret, 'HS256');
}
