import { Webhook } from 'standardwebhooks';
import { ValidationError } from '../domain/errors.ts';
import { toNotificationJson, type NotificationRow } from '../domain/notification.ts';
import type { ChannelProvider } from './channelProvider.ts';
import { describeNetworkError } from './transport/networkError.ts';
import { NonPublicAddressError } from './transport/nonPublicAddressError.ts';
import { PermanentDeliveryError } from './permanentDeliveryError.ts';
import { TargetClient } from './transport/targetClient.ts';
import { withTimeLimit } from './transport/timeLimit.ts';
import { isPublicAddress, literalAddress, type AddressPolicy } from './transport/addressPolicy.ts';

export interface WebhookOptions extends AddressPolicy {
  timeoutMs: number;
  /** `whsec_...`; when set, every request carries a Standard Webhooks `webhook-signature`. */
  secret?: string;
  /** Lets targets be on loopback or private networks, checking no address at all. */
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
  private readonly client: TargetClient;

  constructor(private readonly options: WebhookOptions) {
    this.signer = options.secret ? new Webhook(options.secret) : undefined;
    this.client = new TargetClient(options);
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
    // The limit covers the DNS lookup (made while connecting) too, so one attempt never outlives
    // WEBHOOK_TIMEOUT_MS (and the lease).
    return withTimeLimit(signal, this.options.timeoutMs, async (attempt) => {
      const body = JSON.stringify(toNotificationJson(notification));
      const response = await this.client
        .fetch(url, {
          method: 'POST',
          body,
          headers: this.headers(notification.id, body),
          redirect: 'manual',
          signal: attempt,
        })
        .catch((err: unknown) => {
          if (err instanceof NonPublicAddressError) {
            throw new PermanentDeliveryError(`webhook target ${err.host} resolves to non-public address ${err.address}`, { cause: err });
          }
          throw new Error(`webhook request failed: ${describeNetworkError(err)}`, { cause: err });
        });
      // Read and drop the answer so the connection can be reused.
      await response.body?.cancel().catch(() => {});
      if (response.ok) return;
      const message = `webhook answered ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
      if (isRetryableStatus(response.status)) throw new Error(message);
      throw new PermanentDeliveryError(message);
    });
  }

  close(): Promise<void> {
    return this.client.close();
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

