import { describe, expect, it } from 'vitest';
import { createApiKey } from '../../internal/service/apiKeyService.ts';
import { serviceEnv, testQueueKeys } from '../support/testEnvironment.ts';
import { useTestScope } from '../support/testScope.ts';

describe('rate limit across API instances', () => {
  const scope = useTestScope();

  it('counts one API key\'s requests together on two API processes', async () => {
    const db = await scope.database();
    const env = serviceEnv(db, testQueueKeys(), { AUTH_DISABLED: 'false', RATE_LIMIT_PER_SECOND: '5' });
    const { key } = await createApiKey(db.sql, 'burst', ['send']);
    const [a, b] = await Promise.all([scope.api(env), scope.api(env)]);

    // 30 requests, half on each instance, in well under two seconds: a limit shared through Redis
    // lets at most 5 per one-second window through (10 if the burst straddles two windows); limits
    // kept per process would let 5 per window through each instance, 20 in all.
    const statuses = await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const res = await fetch(`${(i % 2 ? a : b).url}/notifications`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ user_id: `u-${i}`, type: 'IN_APP', body: 'b' }),
        });
        if (res.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        return res.status;
      }),
    );
    const accepted = statuses.filter((s) => s === 201).length;
    expect(statuses.filter((s) => s !== 201 && s !== 429), 'answers other than 201 and 429').toEqual([]);
    expect(accepted).toBeGreaterThanOrEqual(5);
    expect(accepted).toBeLessThanOrEqual(10);
    const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from notifications`;
    expect(row!.n).toBe(accepted);
  });

  it('limits a client address on the routes without an API key', async () => {
    const db = await scope.database();
    const env = serviceEnv(db, testQueueKeys(), { RATE_LIMIT_IP_PER_SECOND: '3', INBOX_JWT_SECRET: 'x'.repeat(32) });
    const api = await scope.api(env);
    const statuses = await Promise.all(Array.from({ length: 12 }, async () => (await fetch(`${api.url}/inbox`)).status));
    // Without a token each is a 401, until the address has used its share: then 429.
    expect(statuses).toContain(401);
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(6);
    // Health checks are never limited: load balancers poll them.
    const health = await Promise.all(Array.from({ length: 12 }, async () => (await fetch(`${api.url}/healthz`)).status));
    expect(health.every((s) => s === 200)).toBe(true);
  });
});
