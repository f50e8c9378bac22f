import nodemailer, { type NodemailerError, type SMTPPoolOptions, type SMTPPoolSentMessageInfo, type Transporter } from 'nodemailer';
import addressparser from 'nodemailer/lib/addressparser';
import { emailAddressSchema } from '../domain/addressFormats.ts';
import { ValidationError } from '../domain/errors.ts';
import type { NotificationRow } from '../domain/notification.ts';
import type { ChannelProvider } from './channelProvider.ts';
import { PermanentDeliveryError } from './permanentDeliveryError.ts';
import { secretRedactor, type Credentials } from './secretRedactor.ts';
import { withTimeLimit } from './transport/timeLimit.ts';
import { untilAborted } from './transport/untilAborted.ts';

export interface EmailOptions {
  /** `smtp://` or `smtps://`, with the login as the URL's user and password when the server needs one. */
  smtpUrl: string;
  /** The From header, e.g. `Acme <no-reply@acme.example>`; its address is also the envelope sender. */
  from: string;
  /** One attempt's time limit, connecting and waiting in the pool included. */
  timeoutMs: number;
}

/** Longest server reply kept in an error; the rest of a chatty reply tells an operator nothing more. */
const MAX_REPLY_LENGTH = 300;

/**
 * EMAIL over SMTP. Every attempt sends the same Message-ID, `<notification id@From domain>`, and an
 * `X-Notification-Id` header: an attempt that gives up may still have been delivered, and a receiver
 * (or a person reading headers) can then recognise the resend.
 */
export class EmailChannel implements ChannelProvider {
  readonly channel = 'EMAIL' as const;
  readonly profileAddress = 'email' as const;
  private readonly transport: Transporter<SMTPPoolSentMessageInfo, SMTPPoolOptions>;
  private readonly messageIdDomain: string;
  /** Takes the SMTP password, in every encoding a server might echo it in (AUTH PLAIN is base64), out of an error. */
  private readonly redact: (text: string) => string;

  constructor(private readonly options: EmailOptions) {
    this.redact = secretRedactor(smtpCredentials(options.smtpUrl));
    const [sender] = addressparser(options.from, { flatten: true });
    const at = sender?.address.lastIndexOf('@') ?? -1;
    if (!sender || at < 1 || at === sender.address.length - 1) {
      throw new Error(`EMAIL_FROM must contain an email address, e.g. "Acme <no-reply@acme.example>"; got "${options.from}"`);
    }
    this.messageIdDomain = sender.address.slice(at + 1);
    this.transport = nodemailer.createTransport({
      url: options.smtpUrl,
      // A connection per message would cost a TCP (and TLS) handshake and a login every time.
      pool: true,
      connectionTimeout: options.timeoutMs,
      greetingTimeout: options.timeoutMs,
      dnsTimeout: options.timeoutMs,
      // A silent server mid-conversation. It also closes a pooled connection idle this long
      // (instead of the pool's 4 minutes), so connections are reused while mail keeps flowing.
      socketTimeout: options.timeoutMs,
    });
  }

  checkAddress(to: string | undefined): string {
    if (to === undefined) {
      throw new ValidationError(
        'EMAIL needs an email address: give "to" or set the user\'s email with PUT /users/:id',
        'invalid_request',
        [{ path: 'to', message: 'required for EMAIL when the user has no email' }],
      );
    }
    const address = to.trim();
    if (!emailAddressSchema.safeParse(address).success) {
      throw new ValidationError('EMAIL needs "to": an email address such as ada@example.com', 'invalid_request', [
        { path: 'to', message: 'must be an email address, without a display name' },
      ]);
    }
    return address;
  }

  async deliver(notification: NotificationRow, signal: AbortSignal): Promise<void> {
    const to = notification.recipient;
    if (!to) throw new PermanentDeliveryError('EMAIL notification has no recipient address');
    // nodemailer takes the signal too, and then drops the message from the pool's queue or closes
    // the connection sending it; untilAborted makes sure the attempt ends on time even where it does not.
    return withTimeLimit(signal, this.options.timeoutMs, async (attempt) => {
      try {
        const sending = this.transport.sendMail({
          from: this.options.from,
          to,
          subject: notification.title ?? '',
          text: notification.body,
          html: notification.html ?? undefined,
          messageId: `<${notification.id}@${this.messageIdDomain}>`,
          headers: { 'X-Notification-Id': notification.id },
          signal: attempt,
        });
        await untilAborted(sending, attempt);
      } catch (err) {
        if (attempt.aborted) {
          // The message may have reached the server before the abort; the Message-ID makes a resend recognisable.
          throw new Error(this.redact(`SMTP send gave up: ${reasonText(attempt.reason)}`), { cause: err });
        }
        throw classify(err as NodemailerError, this.redact);
      }
    });
  }

  /**
   * Closes the pooled connections. A connection still sending finishes its message first; a
   * delivery given up on was already dropped when its signal aborted.
   */
  close(): void {
    this.transport.close();
  }
}

/**
 * A refusal with an SMTP reply is permanent when the reply is: a 5xx other than 503 (bad sequence
 * of commands, which a new connection fixes), as nodemailer's `permanent` flag says. A refused
 * login (535) or a server that wants one first (530) is retried although its reply is permanent:
 * it is SMTP_URL that is wrong, not this message, and an operator who fixes it should not find
 * every email sent meanwhile failed for good. Everything without a reply (connection refused,
 * timeouts, TLS) is retried.
 */
function classify(err: NodemailerError, redact: (text: string) => string): Error {
  // Redacted before the reply is cut short, or a secret cut in two would keep its first half.
  const reply = err.response ? serverText(redact(err.response)) : undefined;
  if (err.responseCode === undefined || reply === undefined) {
    return new Error(`${failedStep(err.code)}: ${redact(err.message)}`, { cause: err });
  }
  if (err.code === 'EAUTH') {
    return new Error(`SMTP server refused the login from SMTP_URL: ${reply}`, { cause: err });
  }
  if (err.responseCode === 530) {
    return new Error(`SMTP server wants a login or TLS first (see SMTP_URL): ${reply}`, { cause: err });
  }
  const refused = refusedPart(err.command);
  const message = refused ? `SMTP server refused ${refused}: ${reply}` : `SMTP server answered ${reply}`;
  const permanent = err.permanent ?? (err.responseCode >= 500 && err.responseCode !== 503);
  return permanent ? new PermanentDeliveryError(message, { cause: err }) : new Error(message, { cause: err });
}

/** The login in SMTP_URL, as nodemailer sends it (percent-decoded); no password, nothing to redact. */
function smtpCredentials(smtpUrl: string): Credentials {
  const url = new URL(smtpUrl);
  return { user: decodeURIComponent(url.username), secret: decodeURIComponent(url.password) };
}

function failedStep(code: string | undefined): string {
  switch (code) {
    case 'ETIMEDOUT':
      return 'SMTP server timed out';
    case 'ETLS':
      return 'SMTP TLS negotiation failed';
    case 'EAUTH':
    case 'ENOAUTH':
      return 'SMTP login failed';
    case 'ESOCKET':
    case 'ECONNECTION':
    case 'EDNS':
      return 'SMTP connection failed';
    default:
      return 'SMTP send failed';
  }
}

/** What a reply to `command` refused; undefined for a reply that refused no particular part. */
function refusedPart(command: string | undefined): string | undefined {
  if (command === 'MAIL FROM') return 'the sender';
  if (command === 'RCPT TO') return 'recipient';
  if (command === 'DATA') return 'the message';
  return undefined;
}

/** The server's reply on one line, without control characters (it ends up in `error_reason`). */
function serverText(reply: string): string {
  const text = reply.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return text.length > MAX_REPLY_LENGTH ? `${text.slice(0, MAX_REPLY_LENGTH)}…` : text;
}

function reasonText(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}
