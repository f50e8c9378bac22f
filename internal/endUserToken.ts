import { sign, verify } from 'hono/jwt';
import { UnauthorizedError } from './errors.ts';
import { isStorableText } from './storableText.ts';

/**
 * End users read their own inbox with a token the product's backend issues: a JWT signed with
 * HS256 and INBOX_JWT_SECRET whose `sub` is the user id. `exp` is checked when present (tokens
 * should carry one), as is `nbf`.
 */
export async function userIdFromToken(token: string, secret: string): Promise<string> {
  let payload: Record<string, unknown>;
  try {
    payload = await verify(token, secret, 'HS256');
  } catch (err) {
    throw new UnauthorizedError(`inbox token refused: ${err instanceof Error ? err.message : String(err)}`);
  }
  const sub = payload.sub;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 255 || !isStorableText(sub)) {
    throw new UnauthorizedError('inbox token refused: its "sub" must be the user id (1 to 255 characters)');
  }
  return sub;
}

/** A token for `userId`, valid for `ttlSeconds`: what a product's backend does, here for the example page. */
export async function issueToken(userId: string, secret: string, ttlSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return sign({ sub: userId, iat: now, exp: now + ttlSeconds }, secret, 'HS256');
}
