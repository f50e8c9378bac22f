import { afterAll, describe, expect, it } from 'vitest';
import { EmailChannel, type EmailOptions } from '../../internal/channels/emailChannel.ts';
import { PermanentDeliveryError } from '../../internal/channels/permanentDeliveryError.ts';
import { ValidationError } from '../../internal/domain/errors.ts';
import type { NotificationRow } from '../../internal/domain/notification.ts';
import { claimedRow } from '../support/notificationRow.ts';
import { header, SilentServer, type TestSmtpServerOptions } from '../support/smtpServer.ts';
import { closedPort } from './helpers.ts';
import { useTestScope } from '../support/testScope.ts';
import { abortedMidway, deliveryError, thrownBy } from '../support/expectedErrors.ts';

const FROM = 'Acme Alerts <no-reply@acme.example>';

function emailRow(fields: Partial<NotificationRow> = {}): NotificationRow {
  return claimedRow({ type: 'EMAIL', user_id: 'user-e', recipient: 'ada@example.com', ...fields });
}

// Channels close first (they were made last): a server waits for the clients still connected to it.
const scope = useTestScope();

const startSmtp = (options?: TestSmtpServerOptions) => scope.smtp(options);

async function startSilent(): Promise<SilentServer> {
  const server = await SilentServer.start();
  scope.defer(() => server.close());
  return server;
}

function emailChannel(smtpUrl: string, options: Partial<EmailOptions> = {}): EmailChannel {
  const channel = new EmailChannel({ smtpUrl, from: FROM, timeoutMs: 2000, ...options });
  scope.defer(() => channel.close());
  return channel;
}

describe('EmailChannel.deliver against a real SMTP server', () => {
  it('sends a text-only message with the envelope, headers and body the notification says', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);
    const row = emailRow({ title: 'Your order shipped', body: 'Order 42 is on its way.\nTrack it at https://acme.example/42' });

    await channel.deliver(row, new AbortController().signal);

    expect(smtp.received).toHaveLength(1);
    const [message] = smtp.received;
    expect(message!.mailFrom).toBe('no-reply@acme.example');
    expect(message!.rcptTo).toEqual(['ada@example.com']);
    expect(message!.user).toBeUndefined();
    const { parsed } = message!;
    expect(parsed.messageId).toBe(`<${row.id}@acme.example>`);
    expect(header(message!, 'X-Notification-Id')).toBe(row.id);
    expect(parsed.from).toEqual({ name: 'Acme Alerts', address: 'no-reply@acme.example' });
    expect(parsed.to).toEqual([{ name: '', address: 'ada@example.com' }]);
    expect(parsed.subject).toBe('Your order shipped');
    expect(parsed.text?.trimEnd()).toBe('Order 42 is on its way.\nTrack it at https://acme.example/42');
    expect(parsed.html).toBeUndefined();
    expect(message!.raw).not.toMatch(/text\/html/i);
  });

  it('adds the HTML part next to the text when the notification has one', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);
    const html = '<p>Order <b>42</b> is on its way.</p>';
    const row = emailRow({ body: 'Order 42 is on its way.', html });

    await channel.deliver(row, new AbortController().signal);

    const [message] = smtp.forId(row.id);
    expect(message).toBeDefined();
    expect(header(message!, 'Content-Type')).toMatch(/^multipart\/alternative/);
    expect(message!.parsed.html?.trim()).toBe(html);
    expect(message!.parsed.text?.trimEnd()).toBe('Order 42 is on its way.');
  });

  it('keeps non-ASCII text intact and sends no subject when there is no title', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);
    const row = emailRow({ title: null, body: 'Grüße aus Köln — ✓ 注文' });

    await channel.deliver(row, new AbortController().signal);

    const [message] = smtp.forId(row.id);
    expect(message).toBeDefined();
    // nodemailer leaves out a Subject header that would be empty.
    expect(message!.parsed.subject).toBeUndefined();
    expect(message!.parsed.text?.trimEnd()).toBe('Grüße aus Köln — ✓ 注文');
  });

  it('sends the same Message-ID on every attempt, so a resend is recognisable', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);
    const row = emailRow();

    await channel.deliver(row, new AbortController().signal);
    await channel.deliver({ ...row, attempt: 2 }, new AbortController().signal);

    const messages = smtp.forId(row.id);
    expect(messages).toHaveLength(2);
    expect(messages.map((m) => m.parsed.messageId)).toEqual([`<${row.id}@acme.example>`, `<${row.id}@acme.example>`]);
  });

  it('reuses one pooled connection for consecutive messages', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);

    for (let i = 0; i < 3; i++) await channel.deliver(emailRow(), new AbortController().signal);

    expect(smtp.received).toHaveLength(3);
    expect(smtp.connectionCount).toBe(1);
  });

  it('closes its pooled connections on close()', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);
    await channel.deliver(emailRow(), new AbortController().signal);
    expect(smtp.openConnections).toBe(1);

    channel.close();

    await expect.poll(() => smtp.openConnections, { timeout: 5000 }).toBe(0);
  });
});

describe('EmailChannel login', () => {
  const auth = { user: 'herald', pass: 'p@ss w/rd:1' };
  const withCredentials = (url: string, user: string, pass: string) =>
    url.replace('smtp://', `smtp://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@`);

  it('logs in with the user and password of SMTP_URL', async () => {
    const smtp = await startSmtp({ auth });
    const channel = emailChannel(withCredentials(smtp.url, auth.user, auth.pass));
    const row = emailRow();

    await channel.deliver(row, new AbortController().signal);

    const [message] = smtp.forId(row.id);
    expect(message).toBeDefined();
    expect(message!.user).toBe('herald');
  });

  it('is refused by the same server without credentials, retryably: SMTP_URL is at fault, not the message', async () => {
    const smtp = await startSmtp({ auth });
    const channel = emailChannel(smtp.url);

    const err = await deliveryError(channel, emailRow());

    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('SMTP server wants a login or TLS first (see SMTP_URL): 530 Error: authentication Required');
    expect(smtp.received).toHaveLength(0);
  });

  it('retries a refused login, which is the configuration\'s fault rather than the message\'s', async () => {
    const smtp = await startSmtp({ auth });
    const channel = emailChannel(withCredentials(smtp.url, auth.user, 'wrong'));

    const err = await deliveryError(channel, emailRow());

    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('SMTP server refused the login from SMTP_URL: 535 authentication credentials invalid');
    expect(smtp.received).toHaveLength(0);
  });

  it('keeps the password out of the error, in every encoding, when the server echoes the login it was sent', async () => {
    const smtp = await startSmtp({ auth, echoLogin: true });
    const wrong = 'wr0ng p@ss/word+1';
    const channel = emailChannel(withCredentials(smtp.url, auth.user, wrong));

    const err = await deliveryError(channel, emailRow());

    expect(err.message).toContain('you sent AUTH PLAIN [redacted], password [redacted]');
    for (const text of [wrong, Buffer.from(`\0${auth.user}\0${wrong}`).toString('base64'), Buffer.from(wrong).toString('base64'), encodeURIComponent(wrong)]) {
      expect(err.message).not.toContain(text);
    }
  });
});

describe('EmailChannel refusals', () => {
  it('treats a 450 for the recipient as worth retrying, naming the code and the server text', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);
    smtp.respondWith(450, '4.2.1 mailbox busy, try later');

    const err = await deliveryError(channel, emailRow());

    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('SMTP server refused recipient: 450 4.2.1 mailbox busy, try later');
    expect(smtp.received).toHaveLength(0);
  });

  it('treats a 550 for the recipient as permanent', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);
    smtp.respondWith(550, '5.1.1 no such user');

    const err = await deliveryError(channel, emailRow());

    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('SMTP server refused recipient: 550 5.1.1 no such user');
    expect(smtp.received).toHaveLength(0);
  });

  it('treats a 451 after the message data as worth retrying', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);
    smtp.respondWith(451, '4.3.0 local problem', 'DATA');

    const err = await deliveryError(channel, emailRow());

    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('SMTP server refused the message: 451 4.3.0 local problem');
  });

  it('treats a 554 after the message data as permanent', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);
    smtp.respondWith(554, '5.7.1 message refused as spam', 'DATA');

    const err = await deliveryError(channel, emailRow());

    expect(err).toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('SMTP server refused the message: 554 5.7.1 message refused as spam');
  });

  it('still sends the next message after a refusal', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);
    smtp.respondWith(550, '5.1.1 no such user');
    await deliveryError(channel, emailRow());

    const row = emailRow();
    await channel.deliver(row, new AbortController().signal);

    expect(smtp.forId(row.id)).toHaveLength(1);
  });
});

describe('EmailChannel connection failures, timeouts and aborts', () => {
  it('fails retryably, saying the connection was refused, when nothing listens', async () => {
    const port = await closedPort();
    const channel = emailChannel(`smtp://127.0.0.1:${port}`);

    const err = await deliveryError(channel, emailRow());

    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toMatch(/^SMTP connection failed: .*ECONNREFUSED/);
  });

  it('gives up at its time limit on a server that never answers, retryably', async () => {
    const silent = await startSilent();
    const channel = emailChannel(silent.url, { timeoutMs: 300 });

    const startedAt = Date.now();
    const err = await deliveryError(channel, emailRow());
    const elapsed = Date.now() - startedAt;

    expect(silent.acceptedCount).toBe(1);
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toMatch(/timed out/);
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1500);
    await expect.poll(() => silent.closedCount, { timeout: 5000 }).toBe(1);
  });

  it('gives up as soon as the caller aborts, with the caller\'s reason, and drops the connection', async () => {
    const silent = await startSilent();
    const channel = emailChannel(silent.url, { timeoutMs: 30_000 });

    const { err, msAfterAbort } = await abortedMidway((signal) => deliveryError(channel, emailRow(), signal), () => silent.acceptedCount === 1);

    expect(msAfterAbort).toBeLessThan(1000);
    expect(err).not.toBeInstanceOf(PermanentDeliveryError);
    expect(err.message).toBe('SMTP send gave up: worker is stopping');
    await expect.poll(() => silent.closedCount, { timeout: 5000 }).toBe(1);
  });

  it('does not send at all when the signal is already aborted', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url);

    const err = await deliveryError(channel, emailRow(), AbortSignal.abort(new Error('lease lost')));

    expect(err.message).toBe('SMTP send gave up: lease lost');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(smtp.received).toHaveLength(0);
  });
});

describe('EmailChannel.checkAddress', () => {
  const channel = new EmailChannel({ smtpUrl: 'smtp://127.0.0.1:1', from: FROM, timeoutMs: 1000 });
  afterAll(() => channel.close());

  const refusal = (to: string | undefined) => thrownBy(ValidationError, () => channel.checkAddress(to), JSON.stringify(to));

  it('is the EMAIL channel and looks for the profile\'s email', () => {
    expect(channel.channel).toBe('EMAIL');
    expect(channel.profileAddress).toBe('email');
  });

  it.each([
    ['ada@example.com', 'ada@example.com'],
    ['  ada@example.com\n', 'ada@example.com'],
    ['o.brien+alerts@mail.example.co.uk', 'o.brien+alerts@mail.example.co.uk'],
  ])('accepts %j as %j', (to, stored) => {
    expect(channel.checkAddress(to)).toBe(stored);
  });

  it('asks for an address when there is none, pointing at "to" and the user profile', () => {
    const err = refusal(undefined);
    expect(err.message).toBe('EMAIL needs an email address: give "to" or set the user\'s email with PUT /users/:id');
    expect(err.code).toBe('invalid_request');
    expect(err.details).toEqual([{ path: 'to', message: expect.any(String) }]);
  });

  it.each([
    '',
    'not an email',
    'ada@',
    '@example.com',
    'ada@localhost',
    'Ada <ada@example.com>',
    'ada@example.com, bob@example.com',
    'ada@example.com\r\nRCPT TO:<eve@example.com>',
    `${'a'.repeat(250)}@example.com`,
  ])('refuses %j with details on "to"', (to) => {
    const err = refusal(to);
    expect(err.code).toBe('invalid_request');
    expect(err.details).toEqual([{ path: 'to', message: expect.any(String) }]);
  });
});

describe('EmailChannel configuration', () => {
  it.each(['Acme Alerts', 'no-reply@', '<>'])('refuses a From without an email address: %j', (from) => {
    expect(() => new EmailChannel({ smtpUrl: 'smtp://127.0.0.1:1', from, timeoutMs: 1000 })).toThrow(/EMAIL_FROM/);
  });

  it('takes the Message-ID domain from the From address, display name or not', async () => {
    const smtp = await startSmtp();
    const channel = emailChannel(smtp.url, { from: 'alerts@notify.acme.example' });
    const row = emailRow();

    await channel.deliver(row, new AbortController().signal);

    const [message] = smtp.forId(row.id);
    expect(message!.parsed.messageId).toBe(`<${row.id}@notify.acme.example>`);
    expect(message!.mailFrom).toBe('alerts@notify.acme.example');
  });
});
