import { E164 } from '../domain/addressFormats.ts';
import { ValidationError } from '../domain/errors.ts';
import type { NotificationRow } from '../domain/notification.ts';
import type { ChannelProvider, NotificationContent } from './channelProvider.ts';
import { describeNetworkError } from './transport/networkError.ts';
import { PermanentDeliveryError } from './permanentDeliveryError.ts';
import { parseRetryAfter } from './transport/retryAfter.ts';
import { RetryLaterError } from './retryLaterError.ts';
import { secretRedactor } from './secretRedactor.ts';
import { withTimeLimit } from './transport/timeLimit.ts';

/** Twilio refuses a longer Body (error 21617). */
const MAX_SMS_LENGTH = 1600;

export interface SmsOptions {
  /** SMS_PROVIDER_URL: the Messages API's base; a path prefix is kept, for providers that mount the API under one. */
  baseUrl: string;
  accountSid: string;
  authToken: string;
  /** SMS_FROM: an E.164 number or alphanumeric sender id, or a messaging service id (`MG...`). */
  from: string;
  /** One attempt's time limit, the answer's body included. */
  timeoutMs: number;
}

/** Provider text goes into `error_reason`; a page of HTML from a proxy should not. */
const MAX_DETAIL_LENGTH = 300;

/** Twilio's error body, which compatible providers copy. */
interface ProviderError {
  code?: unknown;
  message?: unknown;
}

/**
 * SMS through a Twilio-compatible Messages API (`POST /2010-04-01/Accounts/{sid}/Messages.json`),
 * the interface most SMS providers mirror. The provider accepting the message (201, status
 * `queued`) counts as delivered: what happens on the carrier's side arrives later, by status
 * callback, if at all.
 */
export class SmsChannel implements ChannelProvider {
  readonly channel = 'SMS' as const;
  readonly profileAddress = 'phone' as const;
  private readonly endpoint: string;
  private readonly authorization: string;
  /** Takes the token, in every encoding a provider or proxy might echo it in, out of a text bound for `error_reason`. */
  private readonly redact: (text: string) => string;

  constructor(private readonly options: SmsOptions) {
    this.redact = secretRedactor({ user: options.accountSid, secret: options.authToken });
    this.endpoint = `${options.baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(options.accountSid)}/Messages.json`;
    this.authorization = `Basic ${Buffer.from(`${options.accountSid}:${options.authToken}`).toString('base64')}`;
  }

  checkAddress(to: string | undefined): string {
    if (to === undefined) {
      const message = 'SMS needs a phone number: give "to" or set the user\'s phone with PUT /users/:id';
      throw new ValidationError(message, 'invalid_request', [{ path: 'to', message }]);
    }
    if (!E164.test(to)) {
      const message = 'must be a phone number in E.164 form: + and country code, no spaces, e.g. +14155550123';
      throw new ValidationError(`SMS "to" ${message}`, 'invalid_request', [{ path: 'to', message }]);
    }
    return to;
  }

  async deliver(notification: NotificationRow, signal: AbortSignal): Promise<void> {
    return withTimeLimit(signal, this.options.timeoutMs, async (attempt) => {
      const response = await fetch(this.endpoint, {
        method: 'POST',
        body: this.form(notification),
        headers: {
          authorization: this.authorization,
          accept: 'application/json',
          'user-agent': 'herald-sms',
        },
        // An API that redirects is a wrong SMS_PROVIDER_URL; following it would resend the
        // credentials to wherever it points.
        redirect: 'manual',
        signal: attempt,
      }).catch((err: unknown) => {
        throw new Error(this.redact(`SMS request failed: ${describeNetworkError(err)}`), { cause: err });
      });
      if (response.ok) {
        await response.body?.cancel().catch(() => {});
        return;
      }
      const text = await response.text().catch((err: unknown) => {
        throw new Error(this.redact(`SMS provider answered ${response.status}, then the request failed: ${describeNetworkError(err)}`), { cause: err });
      });
      // Redacted before it is cut short, or a secret cut in two would keep its first half.
      throw this.failure(response.status, response.headers.get('retry-after'), this.redact(text));
    });
  }

  checkContent(content: NotificationContent): void {
    const length = smsText(content).length;
    if (length > MAX_SMS_LENGTH) {
      throw new ValidationError(`an SMS carries at most ${MAX_SMS_LENGTH} characters; title and body make ${length}`, 'invalid_request', [
        { path: 'body', message: `too long for SMS (${length} > ${MAX_SMS_LENGTH} with the title)` },
      ]);
    }
  }

  /** Twilio takes `From` or, for a messaging service that picks the sender itself, `MessagingServiceSid`. */
  private form(notification: NotificationRow): URLSearchParams {
    const form = new URLSearchParams();
    form.set('To', notification.recipient ?? '');
    if (this.options.from.startsWith('MG')) form.set('MessagingServiceSid', this.options.from);
    else form.set('From', this.options.from);
    form.set('Body', smsText(notification));
    return form;
  }

  /** The error a non-2xx answer becomes; see `ChannelProvider.deliver` for what each kind means. */
  private failure(status: number, retryAfter: string | null, text: string): Error {
    const detail = providerDetail(text, this.redact);
    const said = detail ? `: ${detail}` : '';
    if (status === 429 || status === 503) {
      const message = this.redact(`SMS provider answered ${status}${said}`);
      const waitMs = parseRetryAfter(retryAfter);
      return waitMs === undefined ? new Error(message) : new RetryLaterError(message, waitMs);
    }
    if (status === 408 || status >= 500) return new Error(this.redact(`SMS provider answered ${status}${said}`));
    if (status === 401 || status === 403) {
      return new PermanentDeliveryError(
        this.redact(`SMS provider refused the credentials (${status}${said}): check SMS_ACCOUNT_SID and SMS_AUTH_TOKEN`),
      );
    }
    if (status < 400) {
      return new PermanentDeliveryError(`SMS provider answered ${status}, a redirect: check SMS_PROVIDER_URL`);
    }
    return new PermanentDeliveryError(this.redact(`SMS provider refused: ${detail ? `${detail} (HTTP ${status})` : `HTTP ${status}`}`));
  }
}

/**
 * "21211 The 'To' number ... is not a valid phone number" from Twilio's JSON, else the start of a
 * plain-text answer. An HTML page (a proxy's error page) says nothing the status does not.
 */
function providerDetail(text: string, redact: (text: string) => string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const plain = text.replace(/\s+/g, ' ').trim();
    return plain && !plain.startsWith('<') ? clip(redact(plain)) : undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { code, message } = parsed as ProviderError;
  const parts = [code, message].filter((p) => typeof p === 'number' || (typeof p === 'string' && p !== ''));
  // JSON may have spelled the secret with escapes that parsing undid: redacted again, before the cut.
  return parts.length ? clip(redact(parts.join(' '))) : undefined;
}

function clip(text: string): string {
  return text.length > MAX_DETAIL_LENGTH ? `${text.slice(0, MAX_DETAIL_LENGTH)}...` : text;
}

/** The message text: the title on its own line above the body, when there is one. */
function smsText({ title, body }: Pick<NotificationContent, 'title' | 'body'>): string {
  return title ? `${title}\n${body}` : body;
}
