/**
 * A target (a webhook URL, a push endpoint) whose host is, or resolves to, an address the service
 * must not reach. Thrown before any connection is made; the channels turn it into a permanent failure.
 */
export class NonPublicAddressError extends Error {
  override name = 'NonPublicAddressError';

  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`${host} resolves to non-public address ${address}`);
  }
}

/**
 * The refusal behind an error, if there is one. fetch rejects with a bare "fetch failed" and keeps
 * what the connector threw in its cause, so the cause chain is searched.
 */
export function nonPublicAddressIn(err: unknown): NonPublicAddressError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof NonPublicAddressError) return e;
  }
  return undefined;
}
