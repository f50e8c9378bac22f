import { jwtVerify, SignJWT } from 'jose';
import type { DevToken } from '../domain/endUserToken.ts';
import { UnauthorizedError } from '../domain/errors.ts';
import { userIdSchema } from '../domain/storableText.ts';

const encoder = new TextEncoder();

/** Tokens the example page gets last an hour, as a product's own would last a session. */
const DEV_TOKEN_TTL_SECONDS = 3600;

/** What an end user's token grants: one user's inbox, until it expires. */
export interface EndUserGrant {
  userId: string;
  /** The token's `exp`: live connections opened with it are closed then. */
  expiresAt: Date;
}

/**
 * End users read their own inbox with a token the product's backend issues: a JWT signed with
 * HS256 and INBOX_JWT_SECRET whose `sub` is the user id and which carries an `exp` (checked, as is
 * `nbf` when present).
 */
export async function grantOfToken(token: string, secret: string): Promise<EndUserGrant> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, encoder.encode(secret), { algorithms: ['HS256'] }));
  } catch (err) {
    // Named after the failure, never quoting the token: an answer and a log line must not carry it.
    throw new UnauthorizedError(`inbox token refused: ${refusalName(err)}`);
  }
  // A token issued in the future comes from a clock that is wrong, or from a forger.
  if (payload.iat !== undefined && (typeof payload.iat !== 'number' || payload.iat > Math.floor(Date.now() / 1000))) {
    throw new UnauthorizedError('inbox token refused: JwtTokenIssuedAt');
  }
  // Tokens travel in URLs (WebSocket, EventSource): one without an end would work for ever.
  if (typeof payload.exp !== 'number') throw new UnauthorizedError('inbox token refused: it must carry "exp"');
  const sub = payload.sub;
  // The same rule as every user id the API takes, so a token it issued is one it accepts.
  if (typeof sub !== 'string' || userIdSchema.safeParse(sub).data !== sub) {
    throw new UnauthorizedError('inbox token refused: its "sub" must be the user id (1 to 255 characters)');
  }
  return { userId: sub, expiresAt: new Date(payload.exp * 1000) };
}

/** A token for `userId`, valid for `ttlSeconds`: what a product's backend does, here for the example page. */
export async function issueToken(userId: string, secret: string, ttlSeconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: userId, iat: now, exp: now + ttlSeconds }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(encoder.encode(secret));
}

/** The example inbox page's login (development only): a token for any user, and how long it lasts. */
export async function issueDevToken(userId: string, secret: string): Promise<DevToken> {
  return { token: await issueToken(userId, secret, DEV_TOKEN_TTL_SECONDS), expires_in: DEV_TOKEN_TTL_SECONDS };
}

/**
 * The refusal's name as the API has always given it (the names of the JWT helper it used before
 * jose), from jose's error `code` and, for a claim, the claim.
 */
function refusalName(err: unknown): string {
  const { code, claim } = (err ?? {}) as { code?: unknown; claim?: unknown };
  if (code === 'ERR_JWT_EXPIRED') return 'JwtTokenExpired';
  if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && claim === 'nbf') return 'JwtTokenNotBefore';
  if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') return 'JwtTokenSignatureMismatched';
  if (code === 'ERR_JOSE_ALG_NOT_ALLOWED') return 'JwtAlgorithmMismatch';
  return 'JwtTokenInvalid';
}
