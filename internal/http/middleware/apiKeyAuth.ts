import type { Context, MiddlewareHandler } from 'hono';
import { requestHeader } from '../request/nodeRequest.ts';
import { authorizeRequest, carriesScope, type ApiKeyRow, type ApiKeyVerifier, type Scope } from '../../service/apiKeyService.ts';
import type { Producer } from '../../service/notificationService.ts';
import { byAddress } from './rateLimit.ts';

declare module 'hono' {
  interface ContextVariableMap {
    /** The producer's API key, once `requireApiKey` has checked it. */
    apiKey: ApiKeyRow;
  }
}

/** What a producer route needs: reading for GET and HEAD, sending for anything that changes state. */
export function scopeForMethod(method: string): Scope {
  return method === 'GET' || method === 'HEAD' ? 'read' : 'send';
}

/**
 * Producers' routes take an API key (`Authorization: Bearer <key>`) carrying the route's scope:
 * 401 without a live key, 403 without the scope, 429 from a client address that failed too many
 * key checks lately (counted per address as the socket sees it, like the other per-address limit).
 * Without a verifier (AUTH_DISABLED) every request passes.
 */
export function requireApiKey(
  verifier: ApiKeyVerifier | undefined,
  requestTimeoutMs: number,
  scopeFor: (method: string) => Scope = scopeForMethod,
): MiddlewareHandler {
  return async (c, next) => {
    if (verifier) {
      const key = requestHeader(c, 'authorization')?.match(/^Bearer\s+(\S+)$/i)?.[1];
      // Kept for what follows: the rate limit counts per key, records name who acted.
      c.set('apiKey', await authorizeRequest({ verifier, requestTimeoutMs }, { key, scope: scopeFor(c.req.method), clientAddress: byAddress(c) }));
    }
    await next();
  };
}

/** The producer behind a request `requireApiKey` let in: its key, or anyone while keys are off (who may read everything). */
export function producerOf(c: Context): Producer {
  const key = c.get('apiKey') as ApiKeyRow | undefined;
  return { apiKeyId: key?.id ?? null, readsProfiles: !key || carriesScope(key, 'read') };
}
