import { describe, expect, it } from 'vitest';
import { runScript } from '../support/serviceProcess.ts';
import { serviceEnv, testQueueKeys } from '../support/testEnvironment.ts';
import { useTestScope } from '../support/testScope.ts';

describe('npm run apikey', () => {
  const scope = useTestScope();

  it('creates a key shown once, which the API then takes; lists it by prefix; revokes it', async () => {
    const db = await scope.database();
    const env = serviceEnv(db, testQueueKeys(), { AUTH_DISABLED: 'false' });

    const created = await runScript('apikey', ['create', 'billing-service', '--scopes', 'send,read', '--quiet'], env);
    expect(created.code).toBe(0);
    const key = created.stdout.trim().split('\n').pop()!;
    expect(key).toMatch(/^hk_[A-Za-z0-9_-]{43}$/);

    const api = await scope.api(env);
    const post = (auth?: string) =>
      fetch(`${api.url}/notifications`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
        body: JSON.stringify({ user_id: 'u', type: 'IN_APP', body: 'b' }),
      });
    expect((await post()).status).toBe(401);
    expect((await post(key)).status).toBe(201);

    const listed = await runScript('apikey', ['list'], env);
    expect(listed.code).toBe(0);
    const line = listed.stdout.split('\n').find((l) => l.includes('billing-service'))!;
    expect(line).toContain(key.slice(0, 11));
    expect(line).toContain('[send,read]');
    expect(listed.stdout).not.toContain(key);

    const revoked = await runScript('apikey', ['revoke', key.slice(0, 11)], env);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain('revoked');
    expect((await runScript('apikey', ['list'], env)).stdout).toContain('REVOKED');
    expect((await runScript('apikey', ['revoke', key.slice(0, 11)], env)).code).toBe(1);
  });

  it('refuses an unknown scope or a missing name with exit 2 and the usage', async () => {
    const db = await scope.database();
    const env = serviceEnv(db, testQueueKeys());
    const badScope = await runScript('apikey', ['create', 'x', '--scopes', 'send,root'], env);
    expect(badScope.code).toBe(2);
    expect(badScope.stdout).toContain('unknown scope: root');
    const noName = await runScript('apikey', ['create'], env);
    expect(noName.code).toBe(2);
    expect(noName.stdout).toContain('usage: npm run apikey');
  });
});
