/** The longest wait a provider's Retry-After is trusted with; beyond it the backoff decides. */
const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1000;

/**
 * Reads an HTTP `Retry-After` value (delay-seconds or an HTTP-date, RFC 9110 §10.2.3) as
 * milliseconds from `now`; undefined when absent, unreadable or absurdly far.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const text = value.trim();
  // Only the GMT forms of HTTP-date: Date.parse reads almost anything as some date, and a date
  // without a zone (asctime) as local time.
  if (!/^\d+$/.test(text) && !/ GMT$/.test(text)) return undefined;
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  if (!Number.isFinite(ms) || ms > MAX_RETRY_AFTER_MS) return undefined;
  return Math.max(0, ms);
}
