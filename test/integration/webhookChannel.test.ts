import { createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PermanentDeliveryError } from '../../internal/channels/permanentDeliveryError.ts';
import { WebhookChannel } from '../../internal/channels/webhookChannel.ts';
import { ValidationError } from '../../internal/domain/errors.ts';
import { toNotificationJson, type NotificationRow } from '../../internal/domain/notification.ts';
import { claimedRow } from '../support/notificationRow.ts';
import { WebhookReceiver } from '../support/webhookReceiver.ts';
import { closedPort } from './helpers.ts';
import { abortedMidway, deliveryError, thrownBy } from '../support/expectedErrors.ts';

function webhookRow(url: string): NotificationRow {
  return claimedRow({
    type: 'WEBHOOK',
    user_id: 'user-w',
    recipient: url,
    data: { order: 42, nested: { ok: true } },
    locked_by: 'w',
  });
}

describe('WebhookChannel.deliver against a real HTTP receiver', () => {
  let receiver: WebhookReceiver;
  let status = 200;
  const channel = new WebhookChannel({ timeoutMs: 2000, allowPrivate: true });

  beforeAll(async () => {
    receiver = await WebhookReceiver.start(() => status);
  });
  afterAll(async () => {
    await channel.close();
    await receiver?.close();
  });
  beforeEach(() => {
    status = 200;
  });

  it.each([200, 201, 202, 204, 299])('treats %i as delivered', async (code) => {
    status = code;
    const row = webhookRow(receiver.url);
    await expect(channel.deliver(row, new AbortController().signal)).resolves.toBeUndefined();
    expect(receiver.forId(row.id)).toHaveLength(1);
  });

  it('POSTs the notification JSON with the Standard Webhooks id and timestamp headers', async () => {
    const row = webhookRow(receiver.url);
    const before = Math.floor(Date.now() / 1000);
    await channel.deliver(row, new AbortController().signal);
    const [hit] = receiver.forId(row.id);
    expect(hit).toBeDefined();
    expect(hit!.headers['content-type']).toBe('application/json');
    expect(hit!.headers['webhook-id']).toBe(row.id);
    const timestamp = Number(hit!.headers['webhook-timestamp']);
    expect(Number.isInteger(timestamp)).toBe(true);
    expect(timestamp).toBeGreaterThanOrEqual(before - 1);
    expect(timestamp).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 1);
    expect(hit!.json).toEqual(JSON.parse(JSON.stringify(toNotificationJson(row))));
    expect(hit!.headers['webhook-signature']).toBeUndefined();
  });

  it.each([408, 429, 500, 502, 503, 504])('treats %i as a retryable failure', async (code) => {
    status = code;
    const err = await deliveryError(channel, webhookRow(receiver.url));
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain(String(code));
  });

  it.each([400, 401, 403, 404, 410, 413, 422])('treats %i as a permanent failure', async (code) => {
    status = code;
    const err = await deliveryError(channel, webhookRow(receiver.url));
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain(String(code));
  });

  it.each([301, 302, 307, 308])('does not follow a %i redirect and fails permanently', async (code) => {
    status = code;
    const row = webhookRow(receiver.url);
    const err = await deliveryError(channel, row);
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain(String(code));
    expect(receiver.forId(row.id)).toHaveLength(1);
  });

  it('fails retryably when nothing listens at the target', async () => {
    const port = await closedPort();
    const err = await deliveryError(channel, webhookRow(`http://127.0.0.1:${port}/hook`));
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toMatch(/^webhook request failed/);
  });

  it('refuses a loopback target at delivery time without sending when private targets are not allowed', async () => {
    const strict = new WebhookChannel({ timeoutMs: 2000, allowPrivate: false });
    const row = webhookRow(receiver.url);
    const err = await deliveryError(strict, row);
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain('127.0.0.1');
    expect(receiver.forId(row.id)).toHaveLength(0);
  });

  it('refuses a localhost name that resolves to loopback when private targets are not allowed', async () => {
    const strict = new WebhookChannel({ timeoutMs: 2000, allowPrivate: false });
    const url = new URL(receiver.url);
    url.hostname = 'localhost';
    const row = webhookRow(url.toString());
    const err = await deliveryError(strict, row);
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(receiver.forId(row.id)).toHaveLength(0);
  });
});

describe('WebhookChannel timeouts and aborts', () => {
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start(() => 'hang');
  });
  afterAll(async () => {
    await receiver?.close();
  });

  it('gives up after its time limit with a retryable error that names the limit', async () => {
    const channel = new WebhookChannel({ timeoutMs: 300, allowPrivate: true });
    const err = await deliveryError(channel, webhookRow(receiver.url));
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain('timed out after 300 ms');
  });

  it('still times out when garbage collection runs while the request waits', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const channel = new WebhookChannel({ timeoutMs: 300, allowPrivate: true });
    const collector = setInterval(gc, 20);
    try {
      for (let i = 0; i < 3; i++) {
        let guard: NodeJS.Timeout | undefined;
        const outcome = await Promise.race([
          deliveryError(channel, webhookRow(receiver.url)).then((err) => err.message),
          new Promise<string>((resolve) => {
            guard = setTimeout(() => resolve('no answer and no timeout within 15 s'), 15_000);
          }),
        ]);
        clearTimeout(guard);
        expect(outcome).toContain('timed out after 300 ms');
      }
    } finally {
      clearInterval(collector);
    }
  });

  it('gives up as soon as the caller aborts, with the caller\'s reason, long before its own time limit', async () => {
    const channelTimeoutMs = 30_000;
    const channel = new WebhookChannel({ timeoutMs: channelTimeoutMs, allowPrivate: true });
    const row = webhookRow(receiver.url);
    const { err, msAfterAbort } = await abortedMidway((signal) => deliveryError(channel, row, signal), () => receiver.forId(row.id).length === 1);
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('webhook request failed: worker is stopping');
    expect(err.message).not.toContain('timed out');
    expect(msAfterAbort).toBeLessThan(5000);
    await expect.poll(() => receiver.forId(row.id)[0]!.abandonedAt, { timeout: 5000 }).toBeDefined();
  });
});

describe('WebhookChannel signatures', () => {
  let receiver: WebhookReceiver;
  const key = randomBytes(32);
  const secret = `whsec_${key.toString('base64')}`;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start(() => 200);
  });
  afterAll(async () => {
    await receiver?.close();
  });

  it('signs id.timestamp.body with HMAC-SHA256 under the base64-decoded secret', async () => {
    const channel = new WebhookChannel({ timeoutMs: 2000, allowPrivate: true, secret });
    const row = webhookRow(receiver.url);
    await channel.deliver(row, new AbortController().signal);
    const [hit] = receiver.forId(row.id);
    const id = hit!.headers['webhook-id'] as string;
    const timestamp = hit!.headers['webhook-timestamp'] as string;
    const header = hit!.headers['webhook-signature'] as string;
    expect(header).toMatch(/^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$/);

    const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${hit!.body}`).digest();
    const signatures = header.split(' ').map((part) => Buffer.from(part.slice('v1,'.length), 'base64'));
    expect(signatures.some((s) => s.length === expected.length && timingSafeEqual(s, expected))).toBe(true);

    const wrongKey = createHmac('sha256', randomBytes(32)).update(`${id}.${timestamp}.${hit!.body}`).digest();
    expect(signatures.some((s) => s.length === wrongKey.length && timingSafeEqual(s, wrongKey))).toBe(false);
  });

  it('keeps webhook-id equal to the notification id on every attempt', async () => {
    const channel = new WebhookChannel({ timeoutMs: 2000, allowPrivate: true, secret });
    const row = webhookRow(receiver.url);
    await channel.deliver(row, new AbortController().signal);
    await channel.deliver(row, new AbortController().signal);
    const hits = receiver.forId(row.id);
    expect(hits).toHaveLength(2);
    expect(hits.map((h) => h.headers['webhook-id'])).toEqual([row.id, row.id]);
  });
});

describe('WebhookChannel.checkAddress', () => {
  const strict = new WebhookChannel({ timeoutMs: 1000, allowPrivate: false });
  const lenient = new WebhookChannel({ timeoutMs: 1000, allowPrivate: true });

  it('accepts public http and https URLs and returns them normalised', () => {
    expect(strict.checkAddress('https://example.com/hook')).toBe('https://example.com/hook');
    expect(strict.checkAddress('http://Example.COM')).toBe('http://example.com/');
    expect(strict.checkAddress('https://8.8.8.8/x')).toBe('https://8.8.8.8/x');
  });

  it.each([undefined, 'not a url', 'ftp://example.com/x', 'javascript:alert(1)', 'mailto:a@example.com', 'file:///etc/passwd'])(
    'refuses %j',
    (to) => {
      expect(() => strict.checkAddress(to)).toThrow(ValidationError);
    },
  );

  it.each([
    'http://127.0.0.1:8080/hook',
    'http://localhost/hook',
    'http://localhost./hook',
    'http://api.localhost/hook',
    'http://LOCALHOST:3000/hook',
    'http://[::1]/hook',
    'http://10.1.2.3/',
    'http://192.168.0.10/',
    'http://169.254.169.254/latest/meta-data/',
    'http://100.64.1.1/',
    'http://[fd00::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://2130706433/',
    'http://0x7f.1/',
  ])('refuses the private target %s unless private targets are allowed', (to) => {
    expect(thrownBy(ValidationError, () => strict.checkAddress(to)).code).toBe('webhook_target_not_allowed');
    expect(lenient.checkAddress(to)).toMatch(/^http:\/\//);
  });
});
