import { describe, expect, it } from 'vitest';
import { connectReadyRedis, createTestDatabase, freePort } from '../support/testEnvironment.ts';

/**
 * The fixtures every test file sets up with: when a server is not there, the file fails with one
 * line that names the server and what it said, not a stack into the harness or a hook timeout.
 */
describe('test fixtures on a server that is not there', () => {
  async function failureOf(setUp: Promise<unknown>): Promise<Error> {
    const err = await setUp.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    if (!err) throw new Error('the set-up succeeded');
    return err;
  }

  it('a test database names the PostgreSQL server and the refusal, in one line', async () => {
    const port = await freePort();
    const err = await failureOf(createTestDatabase({ serverUrl: `postgres://postgres@127.0.0.1:${port}/postgres` }));
    expect(err.message).toMatch(new RegExp(`^could not create the test database \\S+ on 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    expect(String(err.stack)).not.toContain('\n');
  });

  it('a Redis client names the Redis server and the refusal, in one line, within seconds', async () => {
    const port = await freePort();
    const started = Date.now();
    const err = await failureOf(connectReadyRedis(`redis://127.0.0.1:${port}`));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(err.message).toMatch(new RegExp(`^could not connect to the test Redis at 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    expect(String(err.stack)).not.toContain('\n');
  });
});
