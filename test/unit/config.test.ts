import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../internal/platform/config.ts';
import { thrownBy } from '../support/expectedErrors.ts';

function configError(env: Record<string, string | undefined>): ConfigError {
  return thrownBy(ConfigError, () => parseConfig(env), `parseConfig(${JSON.stringify(env)})`);
}

describe('parseConfig', () => {
  it('uses the defaults of the contract table when nothing is set', () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/notifications',
      REDIS_URL: 'redis://127.0.0.1:6379',
      PORT: 8080,
      QUEUE_KEY: 'notification_queue',
      DLQ_KEY: 'notification_dlq',
      MAX_RETRIES: 3,
      RETRY_BASE_MS: 1000,
      RETRY_MAX_MS: 300_000,
      WORKER_CONCURRENCY: 10,
      LEASE_MS: 30_000,
      WEBHOOK_TIMEOUT_MS: 10_000,
      WEBHOOK_ALLOW_PRIVATE: false,
      LOG_LEVEL: 'info',
    });
    expect(config.WEBHOOK_SECRET).toBeUndefined();
  });

  it('returns a frozen object', () => {
    const config = parseConfig({});
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('treats empty strings as unset, so defaults apply', () => {
    const config = parseConfig({ PORT: '', MAX_RETRIES: '', WEBHOOK_SECRET: '', DATABASE_URL: '', WEBHOOK_ALLOW_PRIVATE: '' });
    expect(config.PORT).toBe(8080);
    expect(config.MAX_RETRIES).toBe(3);
    expect(config.WEBHOOK_SECRET).toBeUndefined();
    expect(config.DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/notifications');
    expect(config.WEBHOOK_ALLOW_PRIVATE).toBe(false);
  });

  it('coerces numbers and booleans from their text form', () => {
    const config = parseConfig({
      PORT: '0',
      MAX_RETRIES: '7',
      RETRY_BASE_MS: '50',
      RETRY_MAX_MS: '200',
      WORKER_CONCURRENCY: '3',
      LEASE_MS: '3000',
      WEBHOOK_TIMEOUT_MS: '1000',
      WEBHOOK_ALLOW_PRIVATE: 'true',
      LOG_LEVEL: 'silent',
    });
    expect(config).toMatchObject({
      PORT: 0,
      MAX_RETRIES: 7,
      RETRY_BASE_MS: 50,
      RETRY_MAX_MS: 200,
      WORKER_CONCURRENCY: 3,
      LEASE_MS: 3000,
      WEBHOOK_TIMEOUT_MS: 1000,
      WEBHOOK_ALLOW_PRIVATE: true,
      LOG_LEVEL: 'silent',
    });
  });

  it.each([
    ['true', true],
    ['1', true],
    ['yes', true],
    ['false', false],
    ['0', false],
    ['no', false],
  ])('reads WEBHOOK_ALLOW_PRIVATE=%s as %s', (text, value) => {
    expect(parseConfig({ WEBHOOK_ALLOW_PRIVATE: text }).WEBHOOK_ALLOW_PRIVATE).toBe(value);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['MAX_RETRIES', '0'],
    ['MAX_RETRIES', '2.5'],
    ['RETRY_BASE_MS', '-5'],
    ['RETRY_BASE_MS', '0'],
    ['WORKER_CONCURRENCY', '0'],
    ['LEASE_MS', 'forever'],
    ['WEBHOOK_TIMEOUT_MS', '1e999'],
    ['WEBHOOK_ALLOW_PRIVATE', 'maybe'],
    ['LOG_LEVEL', 'loud'],
  ])('refuses %s=%s with a ConfigError naming the variable and the value', (variable, value) => {
    const err = configError({ [variable]: value });
    expect(err.message).toMatch(new RegExp(`^invalid ${variable}\\b`));
    expect(err.message).toContain(`"${value}"`);
  });

  it('requires LEASE_MS to exceed WEBHOOK_TIMEOUT_MS by the 1000 ms margin', () => {
    expect(configError({ WEBHOOK_TIMEOUT_MS: '10000', LEASE_MS: '10999' }).message).toMatch(
      /^invalid LEASE_MS.*WEBHOOK_TIMEOUT_MS/,
    );
    expect(configError({ LEASE_MS: '10000' }).message).toMatch(/^invalid LEASE_MS/);
    expect(configError({ WEBHOOK_TIMEOUT_MS: '30000' }).message).toMatch(/^invalid LEASE_MS/);
    const config = parseConfig({ WEBHOOK_TIMEOUT_MS: '10000', LEASE_MS: '11000' });
    expect(config.LEASE_MS).toBe(11_000);
  });

  it('requires RETRY_MAX_MS >= RETRY_BASE_MS', () => {
    expect(configError({ RETRY_BASE_MS: '5000', RETRY_MAX_MS: '4999' }).message).toMatch(/^invalid RETRY_MAX_MS.*RETRY_BASE_MS/);
    expect(configError({ RETRY_BASE_MS: '400000' }).message).toMatch(/^invalid RETRY_MAX_MS/);
    expect(parseConfig({ RETRY_BASE_MS: '5000', RETRY_MAX_MS: '5000' }).RETRY_MAX_MS).toBe(5000);
  });

  it('accepts a whsec_<base64> WEBHOOK_SECRET and refuses other formats', () => {
    const secret = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
    expect(parseConfig({ WEBHOOK_SECRET: secret }).WEBHOOK_SECRET).toBe(secret);
    for (const bad of ['plainsecret', 'whsec_', 'whsec_has spaces', 'WHSEC_abc', 'whsec_abc!']) {
      expect(configError({ WEBHOOK_SECRET: bad }).message).toMatch(/^invalid WEBHOOK_SECRET/);
    }
  });

  it('never echoes a secret or a URL in its message', () => {
    const secret = 'whsec_hunter2 topsecret';
    const secretError = configError({ WEBHOOK_SECRET: secret });
    expect(secretError.message).not.toContain('hunter2');
    expect(secretError.message).not.toContain('topsecret');

    const dbError = configError({ DATABASE_URL: 'postgres//admin:s3cr3tpass@db.internal/x' });
    expect(dbError.message).toMatch(/^invalid DATABASE_URL/);
    expect(dbError.message).not.toContain('s3cr3tpass');
    expect(dbError.message).not.toContain('db.internal');

    const redisError = configError({ REDIS_URL: 'not a url :pw0rd@' });
    expect(redisError.message).toMatch(/^invalid REDIS_URL/);
    expect(redisError.message).not.toContain('pw0rd');
  });

  it('keeps the message to one line', () => {
    for (const env of [{ PORT: 'x' }, { LEASE_MS: '1' }, { WEBHOOK_SECRET: 'nope' }, { DATABASE_URL: 'nope' }]) {
      expect(configError(env).message).not.toContain('\n');
    }
  });

  it('ignores environment variables it does not know', () => {
    const config = parseConfig({ HOME: '/root', PATH: '/usr/bin', SOMETHING_ELSE: 'x' });
    expect(config.PORT).toBe(8080);
    expect(config).not.toHaveProperty('HOME');
  });
});
