/**
 * Runs one delivery attempt under the caller's `signal` (the worker stopping, the lease lost) and a
 * limit of `timeoutMs`, whichever ends it first. The limit aborts the attempt's signal with a
 * `TimeoutError` whose message, `timed out after <timeoutMs> ms`, is what `error_reason` shows. It
 * lasts until `attempt` settles, so it bounds all the attempt awaits: DNS, the database, an
 * answer's body.
 */
export async function withTimeLimit<T>(
  signal: AbortSignal,
  timeoutMs: number,
  attempt: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  // A timer of our own rather than AbortSignal.timeout(): inside AbortSignal.any() Node can
  // garbage-collect a timeout signal before it fires (nodejs/node#57736), and the attempt would
  // then never time out. The timer's closure keeps this controller alive until it is cleared.
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
  try {
    return await attempt(AbortSignal.any([signal, timeout.signal]));
  } finally {
    clearTimeout(timer);
  }
}
