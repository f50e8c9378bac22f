import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PermanentDeliveryError } from '../../internal/channels/permanentDeliveryError.ts';
import { RetryLaterError } from '../../internal/channels/retryLaterError.ts';
import { SmsChannel, type SmsOptions } from '../../internal/channels/smsChannel.ts';
import { ValidationError } from '../../internal/domain/errors.ts';
import type { NotificationRow } from '../../internal/domain/notification.ts';
import { claimedRow } from '../support/notificationRow.ts';
import { abortedMidway, deliveryError as failedDelivery, thrownBy } from '../support/expectedErrors.ts';
import { TwilioServer } from '../support/twilioServer.ts';
import { closedPort } from './helpers.ts';

const FROM = '+15005550006';
const WRONG_TOKEN = 'wrong-token-4f1c9e7a';

function smsRow(fields: Partial<NotificationRow> = {}): NotificationRow {
  return claimedRow({ type: 'SMS', recipient: '+14155550123', title: 'Your code', body: '482913', ...fields });
}

let twilio: TwilioServer;

beforeEach(async () => {
  twilio = await TwilioServer.start();
});
afterEach(async () => {
  await twilio?.close();
});

function channelFor(options: Partial<SmsOptions> = {}): SmsChannel {
  return new SmsChannel({
    baseUrl: twilio.url,
    accountSid: twilio.accountSid,
    authToken: twilio.authToken,
    from: FROM,
    timeoutMs: 2000,
    ...options,
  });
}

/** The error `deliver` fails with; whatever it is, it must not carry a token. */
async function deliveryError(channel: SmsChannel, row = smsRow(), signal = new AbortController().signal): Promise<Error> {
  const err = await failedDelivery(channel, row, signal);
  expect(err.message).not.toContain(twilio.authToken);
  expect(err.message).not.toContain(WRONG_TOKEN);
  return err;
}

function expectRetryable(err: Error): void {
  expect(err).not.toBeInstanceOf(PermanentDeliveryError);
  expect(err).not.toBeInstanceOf(RetryLaterError);
}

describe('SmsChannel.deliver against a Twilio-compatible server', () => {
  it('creates one message with To, From and the title above the body, under Basic auth for the account', async () => {
    await channelFor().deliver(smsRow(), new AbortController().signal);

    expect(twilio.requests).toHaveLength(1);
    const [request] = twilio.requests;
    expect(request!.method).toBe('POST');
    expect(request!.path).toBe(`/2010-04-01/Accounts/${twilio.accountSid}/Messages.json`);
    expect(request!.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    const expectedAuth = `Basic ${Buffer.from(`${twilio.accountSid}:${twilio.authToken}`).toString('base64')}`;
    expect(request!.headers.authorization).toBe(expectedAuth);
    expect(request!.form).toEqual({ To: '+14155550123', From: FROM, Body: 'Your code\n482913' });

    expect(twilio.messages).toHaveLength(1);
    expect(twilio.messages[0]).toMatchObject({ to: '+14155550123', from: FROM, body: 'Your code\n482913', status: 'queued' });
  });

  it.each([null, ''])('sends the body alone when the title is %j', async (title) => {
    await channelFor().deliver(smsRow({ title, body: 'Your parcel is out for delivery' }), new AbortController().signal);
    expect(twilio.messages.map((m) => m.body)).toEqual(['Your parcel is out for delivery']);
  });

  it('keeps newlines, &, =, + and non-Latin text intact through the form encoding', async () => {
    const body = 'a & b = c\n+1 100% ☎ 日本語 😀';
    await channelFor().deliver(smsRow({ title: null, body }), new AbortController().signal);
    expect(twilio.messages[0]?.body).toBe(body);
  });

  it('sends MessagingServiceSid and no From when SMS_FROM is a messaging service id', async () => {
    const service = `MG${randomBytes(16).toString('hex')}`;
    await channelFor({ from: service }).deliver(smsRow(), new AbortController().signal);
    const [request] = twilio.requests;
    expect(request!.form.MessagingServiceSid).toBe(service);
    expect(request!.form).not.toHaveProperty('From');
    expect(twilio.messages[0]).toMatchObject({ messaging_service_sid: service, from: null, status: 'accepted' });
  });

  it('accepts a base URL with a trailing slash', async () => {
    await channelFor({ baseUrl: `${twilio.url}/` }).deliver(smsRow(), new AbortController().signal);
    expect(twilio.requests[0]!.path).toBe(`/2010-04-01/Accounts/${twilio.accountSid}/Messages.json`);
    expect(twilio.messages).toHaveLength(1);
  });
});

describe('SmsChannel failures', () => {
  it('turns a 429 with Retry-After in seconds into RetryLaterError with that delay, after one request', async () => {
    twilio.failNext({ status: 429, retryAfter: '2' });
    const err = await deliveryError(channelFor());
    expect(err).toBeInstanceOf(RetryLaterError);
    expect((err as RetryLaterError).retryAfterMs).toBe(2000);
    expect(err.message).toContain('429');
    expect(err.message).toContain('20429');
    expect(twilio.requests).toHaveLength(1);
    expect(twilio.messages).toHaveLength(0);
  });

  it('turns a 429 with Retry-After as an HTTP-date into RetryLaterError with the time left', async () => {
    twilio.failNext({ status: 429, retryAfter: new Date(Date.now() + 5000).toUTCString() });
    const err = await deliveryError(channelFor());
    expect(err).toBeInstanceOf(RetryLaterError);
    // HTTP-dates have whole seconds, and the answer takes a moment.
    expect((err as RetryLaterError).retryAfterMs).toBeGreaterThan(3000);
    expect((err as RetryLaterError).retryAfterMs).toBeLessThanOrEqual(5000);
  });

  it('turns a 429 without Retry-After into a plain retryable error', async () => {
    twilio.failNext({ status: 429 });
    const err = await deliveryError(channelFor());
    expectRetryable(err);
    expect(err.message).toContain('429');
  });

  it('turns a 503 with Retry-After into RetryLaterError, and one without into a plain retryable error', async () => {
    twilio.failNext({ status: 503, retryAfter: '30' });
    const later = await deliveryError(channelFor());
    expect(later).toBeInstanceOf(RetryLaterError);
    expect((later as RetryLaterError).retryAfterMs).toBe(30_000);

    twilio.failNext({ status: 503 });
    const plain = await deliveryError(channelFor());
    expectRetryable(plain);
    expect(plain.message).toContain('503');
  });

  it.each([408, 500, 502, 504])('turns a %i into a plain retryable error naming the status', async (status) => {
    twilio.failNext({ status });
    const err = await deliveryError(channelFor());
    expectRetryable(err);
    expect(err.message).toContain(String(status));
  });

  it("fails permanently with the provider's code and message when it refuses the number (21211)", async () => {
    // A row stored before its address was checked: the provider is the last line of defence.
    const err = await deliveryError(channelFor(), smsRow({ recipient: '+0123' }));
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe("SMS provider refused: 21211 The 'To' number +0123 is not a valid phone number. (HTTP 400)");
    expect(twilio.requests).toHaveLength(1);
    expect(twilio.messages).toHaveLength(0);
  });

  it.each([
    { status: 400, code: 21610, message: 'Attempt to send to unsubscribed recipient' },
    { status: 404, code: 20404, message: 'The requested resource was not found' },
    { status: 422, code: 21617, message: 'The concatenated message body exceeds the 1600 character limit' },
  ])('fails permanently on a $status with code $code in the message', async (failure) => {
    twilio.failNext(failure);
    const err = await deliveryError(channelFor());
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain(`${failure.code} ${failure.message}`);
  });

  it('fails permanently on a 401 from wrong credentials, naming the variables and not the token', async () => {
    const err = await deliveryError(channelFor({ authToken: WRONG_TOKEN }));
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain('401');
    expect(err.message).toContain('SMS_ACCOUNT_SID');
    expect(err.message).toContain('SMS_AUTH_TOKEN');
    expect(twilio.requests).toHaveLength(1);
    expect(twilio.messages).toHaveLength(0);
  });

  it('fails permanently on a 403, naming the variables', async () => {
    twilio.failNext({ status: 403 });
    const err = await deliveryError(channelFor());
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain('403');
    expect(err.message).toMatch(/SMS_ACCOUNT_SID.*SMS_AUTH_TOKEN/);
  });

  it('keeps the token out of the error even when the provider echoes it', async () => {
    twilio.failNext({ status: 400, code: 21211, message: `bad request with token ${twilio.authToken}` });
    const err = await deliveryError(channelFor());
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain('[redacted]');
  });

  it('keeps the credentials out of the error when the provider echoes the Authorization header it was sent', async () => {
    const echoing = await TwilioServer.start({ echoAuthorization: true });
    try {
      // A token with characters that URL-encoding and base64 spell differently from the token itself.
      const token = 'tok/en+with=special&chars?0123456789';
      const channel = new SmsChannel({ baseUrl: echoing.url, accountSid: echoing.accountSid, authToken: token, from: FROM, timeoutMs: 2000 });
      const err = await failedDelivery(channel, smsRow(), new AbortController().signal);
      expect(err).toBeInstanceOf(PermanentDeliveryError);
      expect(err.message).toContain('you sent Authorization: Basic [redacted]');
      for (const [form, text] of Object.entries(encodingsOf(echoing.accountSid, token))) expect(err.message, form).not.toContain(text);
    } finally {
      await echoing.close();
    }
  });

  it.each([
    ['a plain-text', (secret: string) => ({ status: 400, raw: secret })],
    ['a JSON', (secret: string) => ({ status: 400, code: 21211, message: secret })],
    ['a long plain-text', (secret: string) => ({ status: 400, raw: `${'x'.repeat(270)} ${secret}` })],
  ])('keeps every encoding of the token out of %s refusal that carries it', async (_, failure) => {
    for (const [form, text] of Object.entries(encodingsOf(twilio.accountSid, twilio.authToken))) {
      twilio.failNext(failure(`echo: ${text} :end`));
      const err = await deliveryError(channelFor());
      expect(err.message, form).not.toContain(text);
      // Not even its first part, where the text is cut short.
      expect(err.message, form).not.toContain(text.slice(0, 12));
    }
  });

  it("keeps a plain-text refusal's text and drops an HTML error page", async () => {
    twilio.failNext({ status: 400, raw: 'missing parameter: To' });
    const text = await deliveryError(channelFor());
    expect(text).toBeInstanceOf(PermanentDeliveryError);
    expect(text.message).toBe('SMS provider refused: missing parameter: To (HTTP 400)');

    twilio.failNext({ status: 404, raw: '<html><body><h1>404 Not Found</h1></body></html>' });
    const html = await deliveryError(channelFor());
    expect(html).toBeInstanceOf(PermanentDeliveryError);
    expect(html.message).toBe('SMS provider refused: HTTP 404');
  });

  it.each([301, 307, 308])('does not follow a %i: it fails permanently and points at SMS_PROVIDER_URL', async (status) => {
    // A redirect to the real endpoint, which would accept a followed POST.
    twilio.failNext({ status, location: `${twilio.url}/2010-04-01/Accounts/${twilio.accountSid}/Messages.json` });
    const err = await deliveryError(channelFor());
    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toContain(String(status));
    expect(err.message).toContain('SMS_PROVIDER_URL');
    expect(twilio.requests).toHaveLength(1);
    expect(twilio.messages).toHaveLength(0);
  });

  it('fails retryably when nothing listens at the provider URL', async () => {
    const port = await closedPort();
    const err = await deliveryError(channelFor({ baseUrl: `http://127.0.0.1:${port}` }));
    expectRetryable(err);
    expect(err.message).toMatch(/^SMS request failed: ECONNREFUSED/);
  });
});

describe('SmsChannel timeouts and aborts', () => {
  it('gives up on a provider that never answers after its time limit, with a retryable error naming it', async () => {
    twilio.hangNext();
    const startedAt = Date.now();
    const err = await deliveryError(channelFor({ timeoutMs: 300 }));
    const elapsed = Date.now() - startedAt;
    expectRetryable(err);
    expect(err.message).toBe('SMS request failed: timed out after 300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2000);
    await expect.poll(() => twilio.requests[0]?.abandonedAt, { timeout: 5000 }).toBeDefined();
  });

  it('gives up within its time limit when the answer stops in the middle of the body', async () => {
    twilio.hangNext({ status: 400 });
    const startedAt = Date.now();
    const err = await deliveryError(channelFor({ timeoutMs: 300 }));
    expectRetryable(err);
    expect(err.message).toContain('timed out after 300 ms');
    expect(Date.now() - startedAt).toBeLessThan(2000);
  });

  it("gives up as soon as the caller aborts, with the caller's reason, long before its own time limit", async () => {
    twilio.hangNext();
    const channel = channelFor({ timeoutMs: 30_000 });
    const { err, msAfterAbort } = await abortedMidway((signal) => deliveryError(channel, smsRow(), signal), () => twilio.requests.length === 1);
    expectRetryable(err);
    expect(err.message).toBe('SMS request failed: worker is stopping');
    expect(msAfterAbort).toBeLessThan(2000);
    await expect.poll(() => twilio.requests[0]?.abandonedAt, { timeout: 5000 }).toBeDefined();
  });

  it('sends nothing when the signal is already aborted', async () => {
    const abort = new AbortController();
    abort.abort(new Error('worker is stopping'));
    const err = await deliveryError(channelFor(), smsRow(), abort.signal);
    expect(err.message).toBe('SMS request failed: worker is stopping');
    expect(twilio.requests).toHaveLength(0);
  });
});

describe('SmsChannel.checkAddress', () => {
  const channel = new SmsChannel({ baseUrl: 'http://127.0.0.1:1', accountSid: 'AC1', authToken: 't', from: FROM, timeoutMs: 1000 });

  it("is the SMS channel and reads the profile's phone", () => {
    expect(channel.channel).toBe('SMS');
    expect(channel.profileAddress).toBe('phone');
  });

  it('asks for a phone number, and says where to set one, when there is none', () => {
    const error = thrownBy(ValidationError, () => channel.checkAddress(undefined));
    expect(error.message).toBe('SMS needs a phone number: give "to" or set the user\'s phone with PUT /users/:id');
    expect(error.code).toBe('invalid_request');
    expect(error.details).toEqual([{ path: 'to', message: error.message }]);
  });

  it.each(['+14155550123', '+442071838750', '+8613800138000', '+1234567', '+123456789012345'])('accepts %s unchanged', (to) => {
    expect(channel.checkAddress(to)).toBe(to);
  });

  it.each([
    '',
    '14155550123',
    '+0123456789',
    '+123456',
    '+1234567890123456',
    '+1 415 555 0123',
    '+1-415-555-0123',
    '+1415555012a',
    'tel:+14155550123',
    ' +14155550123',
    '+14155550123\n',
    '++14155550123',
  ])('refuses %j with an error on "to"', (to) => {
    const details = thrownBy(ValidationError, () => channel.checkAddress(to)).details as { path: string; message: string }[];
    expect(details).toHaveLength(1);
    expect(details[0]!.path).toBe('to');
    expect(details[0]!.message).toMatch(/E\.164/);
  });
});

/** The token as a provider might echo it: raw, percent-encoded, in base64 alone and as the Basic value. */
function encodingsOf(accountSid: string, token: string): Record<string, string> {
  const basic = Buffer.from(`${accountSid}:${token}`);
  return {
    raw: token,
    uriComponent: encodeURIComponent(token),
    form: new URLSearchParams({ t: token }).toString().slice(2),
    base64: Buffer.from(token).toString('base64'),
    base64url: Buffer.from(token).toString('base64url'),
    basic: basic.toString('base64'),
    basicUrlSafe: basic.toString('base64url'),
    hex: Buffer.from(token).toString('hex'),
  };
}
