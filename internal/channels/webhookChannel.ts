import { Webhook } from 'standardwebhooks';
import { ValidationError } from '../errors.ts';
import { toNotificationJson, type NotificationRow } from '../notification.ts';
import type { ChannelProvider } from './channelProvider.ts';
import { PermanentDeliveryError } from './permanentDeliveryError.ts';
import { findNonPublicAddress, isPublicAddress, literalAddress } from './webhookTarget.ts';

export interface WebhookOptions {
  timeoutMs: number;
  /** `whsec_...`; when set, every request carries a Standard Webhooks `webhook-signature`. */
  secret?: string;
  allowPrivate: boolean;
}

/** Answers worth another attempt: the receiver is overloaded, timed out or broken for now. */
function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * WEBHOOK: an HTTP POST of the notification as JSON to `to`, with the Standard Webhooks headers.
 * `webhook-id` is the notification id on every attempt, so a receiver can drop repeats.
 */
export class WebhookChannel implements ChannelProvider {
  readonly channel = 'WEBHOOK' as const;
  readonly profileAddress = 'webhook_url' as const;
  private readonly signer: Webhook | undefined;

  constructor(private readonly options: WebhookOptions) {
    this.signer = options.secret ? new Webhook(options.secret) : undefined;
  }

  checkAddress(to: string | undefined): string {
    const url = parseUrl(to);
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new ValidationError('WEBHOOK needs "to": an http or https URL', 'invalid_request', [
        { path: 'to', message: 'must be an http(s) URL' },
      ]);
    }
    const literal = literalAddress(url);
    const local = isLocalhostName(url.hostname) || (literal !== undefined && !isPublicAddress(literal));
    if (local && !this.options.allowPrivate) {
      throw new ValidationError(
        `webhook target ${url.hostname} is a private or loopback address; set WEBHOOK_ALLOW_PRIVATE=true to allow it`,
        'webhook_target_not_allowed',
      );
    }
    return url.toString();
  }

  async deliver(notification: NotificationRow, signal: AbortSignal): Promise<void> {
    const url = new URL(notification.recipient ?? '');
    // A timer of our own rather than AbortSignal.timeout(): inside AbortSignal.any() Node can
    // garbage-collect a timeout signal before it fires (nodejs/node#57736), and the request would
    // then never time out. The timer's closure keeps this controller alive until it is cleared.
    // It covers the DNS check too, so one attempt never outlives WEBHOOK_TIMEOUT_MS (and the lease).
    const timeout = new AbortController();
    const timer = setTimeout(
      () => timeout.abort(new DOMException(`timed out after ${this.options.timeoutMs} ms`, 'TimeoutError')),
      this.options.timeoutMs,
    );
    const attempt = AbortSignal.any([signal, timeout.signal]);
    try {
      if (!this.options.allowPrivate) await this.refuseNonPublicTarget(url, attempt);
      const body = JSON.stringify(toNotificationJson(notification));
      const response = await fetch(url, {
        method: 'POST',
        body,
        headers: this.headers(notification.id, body),
        redirect: 'manual',
        signal: attempt,
      }).catch((err: unknown) => {
        throw new Error(`webhook request failed: ${this.describe(err)}`, { cause: err });
      });
      // Read and drop the answer so the connection can be reused.
      await response.body?.cancel().catch(() => {});
      if (response.ok) return;
      const message = `webhook answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
      if (isRetryableStatus(response.status)) throw new Error(message);
      throw new PermanentDeliveryError(message);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Refuses a host that resolves to a non-public address; DNS trouble is worth a retry. */
  private async refuseNonPublicTarget(url: URL, signal: AbortSignal): Promise<void> {
    const aborted = new Promise<never>((_, reject) => {
      if (signal.aborted) reject(signal.reason as Error);
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
    });
    aborted.catch(() => {});
    const blocked = await Promise.race([findNonPublicAddress(url), aborted]).catch((err: unknown) => {
      throw new Error(`webhook target lookup failed: ${this.describe(err)}`, { cause: err });
    });
    if (blocked) throw new PermanentDeliveryError(`webhook target ${url.hostname} resolves to non-public address ${blocked}`);
  }

  private describe(err: unknown): string {
    if (err instanceof Error && err.name === 'TimeoutError') return `timed out after ${this.options.timeoutMs} ms`;
    return describe(err);
  }

  private headers(id: string, body: string): Record<string, string> {
    const now = new Date();
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'herald-webhooks',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    };
    if (this.signer) headers['webhook-signature'] = this.signer.sign(id, now, body);
    return headers;
  }
}

/** `localhost`, `localhost.` and any `*.localhost` name loop back (RFC 6761). */
function isLocalhostName(hostname: string): boolean {
  return /(^|\.)localhost\.?$/i.test(hostname);
}

function parseUrl(text: string | undefined): URL | undefined {
  if (text === undefined) return undefined;
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: string; message?: string } | undefined;
  return cause?.code ? `${cause.code}${cause.message ? ` (${cause.message})` : ''}` : err.message;
}
