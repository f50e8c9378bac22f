import type { Response } from 'undici';
import webpush from 'web-push';
import { ValidationError } from '../domain/errors.ts';
import type { NotificationRow } from '../domain/notification.ts';
import type { PushSubscription } from '../domain/recipient.ts';
import type { ChannelProvider, DeliveryChanges, NotificationContent, RecipientData } from './channelProvider.ts';
import { withFailureChanges } from './failureChanges.ts';
import { describeNetworkError } from './transport/networkError.ts';
import { NonPublicAddressError } from './transport/nonPublicAddressError.ts';
import { PermanentDeliveryError } from './permanentDeliveryError.ts';
import { parseRetryAfter } from './transport/retryAfter.ts';
import { RetryLaterError } from './retryLaterError.ts';
import { TargetClient } from './transport/targetClient.ts';
import { withTimeLimit } from './transport/timeLimit.ts';
import type { AddressPolicy } from './transport/addressPolicy.ts';
import { secretRedactor } from './secretRedactor.ts';

export interface PushOptions extends AddressPolicy {
  /** The VAPID key pair (URL-safe base64) and the contact push services are given (RFC 8292). */
  vapid: { publicKey: string; privateKey: string; subject: string };
  /** One attempt's limit, for all of the user's subscriptions together. */
  timeoutMs: number;
  /** Lets endpoints resolve to private or loopback addresses (tests, a push service of one's own), checking none. */
  allowPrivate: boolean;
}

/**
 * How long a push service keeps a message for a device that is offline. A notification seen days
 * late does more harm than good, and the worker already retried it for the minutes that matter.
 */
const TTL_SECONDS = 24 * 60 * 60;

/**
 * The longest payload Web Push carries: push services take 4096 bytes of aes128gcm body (RFC 8030
 * §7.2), less the 86-byte header, the 16-byte tag and the padding delimiter (RFC 8291 §4).
 */
const MAX_PAYLOAD_BYTES = 3993;
const ID_PLACEHOLDER = '00000000-0000-0000-0000-000000000000';

/** Subscriptions named in one error message; a user with many devices must not flood error_reason. */
const MAX_DESCRIBED = 3;

/** How much of a refusal's body goes into the message: push services explain 400s and 403s there. */
const MAX_ANSWER_CHARS = 120;
/** Longer than any VAPID token web-push makes (a JWT of about 250 characters). */
const MAX_CREDENTIAL_CHARS = 1024;

/** What became of one subscription in one attempt. */
type Outcome =
  | { kind: 'delivered' }
  | { kind: 'expired'; detail: string }
  | { kind: 'retry'; detail: string; retryAfterMs?: number }
  | { kind: 'failed'; detail: string };

/** Answers worth another attempt: the push service is overloaded, timed out or broken for now. */
function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * PUSH: a Web Push message (RFC 8030) to each of the user's subscriptions, encrypted for the browser
 * (RFC 8291, aes128gcm) and signed with the server's VAPID key (RFC 8292). One delivered copy is a
 * delivered notification. The caller passes the user's subscriptions in, and is answered those their
 * push service says are gone, to remove them.
 */
export class PushChannel implements ChannelProvider {
  readonly channel = 'PUSH' as const;
  readonly profileAddress = 'push_subscriptions' as const;
  readonly attemptTimeoutMs: number;
  private readonly client: TargetClient;

  constructor(private readonly options: PushOptions) {
    // Keys that cannot sign would fail every delivery one by one; refusing them here stops the process
    // at start with the reason instead.
    const { subject, publicKey, privateKey } = options.vapid;
    try {
      webpush.getVapidHeaders('https://push.example', subject, publicKey, privateKey, 'aes128gcm');
    } catch (err) {
      throw new Error(`invalid VAPID configuration: ${describeNetworkError(err)}`, { cause: err });
    }
    this.client = new TargetClient(options);
    this.attemptTimeoutMs = options.timeoutMs;
  }

  checkAddress(to: string | undefined): null {
    if (to !== undefined) {
      throw new ValidationError('PUSH goes to the user\'s push subscriptions (PUT /users/:id); it takes no "to"', 'invalid_request', [
        { path: 'to', message: 'not used by PUSH' },
      ]);
    }
    return null;
  }

  checkContent(content: NotificationContent): void {
    // Any id has the same length, so a placeholder measures the payload every user will get.
    const size = Buffer.byteLength(pushPayload({ id: ID_PLACEHOLDER, ...content }));
    if (size > MAX_PAYLOAD_BYTES) {
      throw new ValidationError(`a PUSH payload (id, title, body and data as JSON) carries at most ${MAX_PAYLOAD_BYTES} bytes; this one is ${size}`, 'invalid_request', [
        { path: 'body', message: `too large for Web Push (${size} > ${MAX_PAYLOAD_BYTES} bytes with title and data)` },
      ]);
    }
  }

  async deliver(notification: NotificationRow, signal: AbortSignal, recipient: RecipientData): Promise<DeliveryChanges> {
    const userId = notification.user_id;
    const payload = pushPayload(notification);
    const size = Buffer.byteLength(payload);
    if (size > MAX_PAYLOAD_BYTES) {
      throw new PermanentDeliveryError(`PUSH payload (id, title, body and data as JSON) is ${size} bytes; Web Push carries at most ${MAX_PAYLOAD_BYTES}`);
    }
    const subscriptions = recipient.pushSubscriptions ?? [];
    if (subscriptions.length === 0) throw new PermanentDeliveryError(`user ${userId} has no push subscriptions`);
    // One limit for the whole attempt: it covers DNS too, so an attempt never outlives
    // PROVIDER_TIMEOUT_MS (and the lease). The caller's reading of the subscriptions counts against
    // the same limit (`attemptTimeoutMs`).
    return withTimeLimit(signal, this.options.timeoutMs, async (attempt) => {
      // A push message's Topic replaces an undelivered one with the same Topic (RFC 8030 §5.4): a copy
      // resent by a retry does not reach an offline device twice.
      const topic = notification.id.replaceAll('-', '');
      const settled = await Promise.allSettled(subscriptions.map((s) => this.send(s, payload, topic, attempt)));
      const outcomes = settled.map((r): Outcome => (r.status === 'fulfilled' ? r.value : { kind: 'retry', detail: describeNetworkError(r.reason) }));
      const changes = { expiredPushSubscriptions: subscriptions.filter((_, i) => outcomes[i]!.kind === 'expired') };
      try {
        conclude(userId, subscriptions, outcomes);
      } catch (err) {
        throw withFailureChanges(err, changes);
      }
      return changes;
    });
  }

  close(): Promise<void> {
    return this.client.close();
  }

  private async send(subscription: PushSubscription, payload: string, topic: string, signal: AbortSignal): Promise<Outcome> {
    const url = parseEndpoint(subscription.endpoint);
    if (!url) return { kind: 'failed', detail: 'endpoint is not an http(s) URL' };

    let request: webpush.RequestDetails;
    try {
      request = webpush.generateRequestDetails(
        { endpoint: subscription.endpoint, keys: { p256dh: subscription.p256dh, auth: subscription.auth } },
        payload,
        { vapidDetails: this.options.vapid, TTL: TTL_SECONDS, contentEncoding: 'aes128gcm', topic },
      );
    } catch (err) {
      return { kind: 'failed', detail: `cannot encrypt for it: ${describeNetworkError(err)}` };
    }

    let response: Response;
    try {
      // Endpoints are checked as webhook targets are, when connecting (see TargetClient).
      response = await this.client.fetch(url, {
        method: 'POST',
        headers: requestHeaders(request.headers),
        body: request.body ? new Uint8Array(request.body) : undefined,
        redirect: 'manual',
        signal,
      });
    } catch (err) {
      if (err instanceof NonPublicAddressError) return { kind: 'failed', detail: `resolves to non-public address ${err.address}` };
      return { kind: 'retry', detail: `request failed: ${describeNetworkError(err)}` };
    }

    const status = response.status;
    if (response.ok || status === 404 || status === 410) {
      // Read and drop the answer so the connection can be reused.
      await response.body?.cancel().catch(() => {});
      if (response.ok) return { kind: 'delivered' };
      return { kind: 'expired', detail: `answered ${status}, expired and removed` };
    }
    const answer = `answered ${status}${await answerText(response, vapidRedactor(request.headers))}`;
    const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(response.headers.get('retry-after')) : undefined;
    if (retryAfterMs !== undefined) return { kind: 'retry', detail: `${answer} (retry after ${Math.ceil(retryAfterMs / 1000)} s)`, retryAfterMs };
    if (isRetryableStatus(status)) return { kind: 'retry', detail: answer };
    return { kind: 'failed', detail: answer };
  }
}

/**
 * The attempt's verdict: one delivered copy is enough; otherwise anything worth retrying makes the
 * whole attempt worth retrying (waiting for the longest Retry-After given); otherwise it failed for good.
 */
function conclude(userId: string, subscriptions: PushSubscription[], outcomes: Outcome[]): void {
  if (outcomes.some((o) => o.kind === 'delivered')) return;
  const summary = summarise(subscriptions, outcomes);
  const waits = outcomes.flatMap((o) => (o.kind === 'retry' && o.retryAfterMs !== undefined ? [o.retryAfterMs] : []));
  if (outcomes.some((o) => o.kind === 'retry')) {
    const message = `push to user ${userId} failed: ${summary}`;
    throw waits.length > 0 ? new RetryLaterError(message, Math.max(...waits)) : new Error(message);
  }
  if (outcomes.every((o) => o.kind === 'expired')) {
    throw new PermanentDeliveryError(`every push subscription of user ${userId} has expired; they were removed`);
  }
  throw new PermanentDeliveryError(`push to user ${userId} failed: ${summary}`);
}

function summarise(subscriptions: PushSubscription[], outcomes: Outcome[]): string {
  const parts = outcomes.flatMap((o, i) => (o.kind === 'delivered' ? [] : [`${label(subscriptions[i]!.endpoint)} ${o.detail}`]));
  const shown = parts.slice(0, MAX_DESCRIBED).join('; ');
  return parts.length > MAX_DESCRIBED ? `${shown}; and ${parts.length - MAX_DESCRIBED} more` : shown;
}

/**
 * Names a subscription for an operator: its push service's host and the end of its endpoint, enough
 * to find the row (a user's browsers often share one push service) without spelling out the URL.
 */
function label(endpoint: string): string {
  const url = parseEndpoint(endpoint);
  return url ? `${url.host}/…${endpoint.slice(-6)}` : `endpoint …${endpoint.slice(-6)}`;
}

function parseEndpoint(endpoint: string): URL | undefined {
  try {
    const url = new URL(endpoint);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url : undefined;
  } catch {
    return undefined;
  }
}

/**
 * web-push's headers as fetch takes them. Content-Length is left to fetch, which knows the body;
 * web-push's numbers (TTL) become strings.
 */
function requestHeaders(headers: webpush.RequestDetails['headers']): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers)
      .filter(([name]) => name.toLowerCase() !== 'content-length')
      .map(([name, value]) => [name, String(value)]),
  );
}

/** The start of a refusal's body, or its status text; a push service's reason is worth an operator's eye. */
async function answerText(response: Response, redact: (text: string) => string): Promise<string> {
  let text = '';
  try {
    const reader = response.body?.getReader();
    const decoder = new TextDecoder();
    // Read past what is kept by a credential's length, so one that starts in the kept part is
    // whole when it is redacted.
    while (reader && text.length < MAX_ANSWER_CHARS + MAX_CREDENTIAL_CHARS) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await reader?.cancel();
  } catch {
    // The status says enough.
  }
  text = redact(text).replace(/\s+/g, ' ').trim().slice(0, MAX_ANSWER_CHARS);
  if (text) return `: ${text}`;
  return response.statusText ? ` ${response.statusText}` : '';
}

/**
 * Takes the request's VAPID token (`Authorization: vapid t=<JWT>, k=<public key>`) out of a push
 * service's answer, whole or its signature alone, in any encoding: the token lets whoever holds it
 * send to this push service as us until it expires, and the answer ends up in `error_reason`.
 */
function vapidRedactor(headers: webpush.RequestDetails['headers']): (text: string) => string {
  const authorization = Object.entries(headers).find(([name]) => name.toLowerCase() === 'authorization')?.[1];
  const token = /\bt=([^,\s]+)/.exec(String(authorization ?? ''))?.[1] ?? '';
  const whole = secretRedactor({ secret: token });
  const signature = secretRedactor({ secret: token.split('.')[2] ?? '' });
  return (text) => signature(whole(text));
}

/** What a subscription receives (and a service worker reads): the notification as JSON. */
function pushPayload({ id, title, body, data }: Pick<NotificationRow, 'id' | 'title' | 'body' | 'data'>): string {
  return JSON.stringify({ id, title, body, data });
}
