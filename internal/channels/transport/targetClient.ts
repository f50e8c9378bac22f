import { Agent, fetch, type RequestInit, type Response } from 'undici';
import { NonPublicAddressError, nonPublicAddressIn } from './nonPublicAddressError.ts';
import { guardedLookup, isPublicAddress, literalAddress, type AddressPolicy } from './addressPolicy.ts';

export interface TargetClientOptions extends AddressPolicy {
  /** Connect anywhere, checking nothing (`WEBHOOK_ALLOW_PRIVATE`: development and tests). */
  allowPrivate: boolean;
}

/**
 * HTTP to targets that producers name (webhook URLs, push endpoints), through one connection pool
 * per channel. Unless private targets are allowed, a name is resolved once, by the pool's connector,
 * and connected only to addresses that passed the check (`guardedLookup`); a separate check before
 * fetch would let fetch resolve the name again and be answered differently. TLS still verifies the
 * certificate against the host name: only where the name points is decided here.
 */
export class TargetClient {
  private readonly agent: Agent;
  private readonly isAllowed: (address: string) => boolean;

  constructor(private readonly options: TargetClientOptions) {
    this.isAllowed = options.isAllowed ?? isPublicAddress;
    this.agent = new Agent(options.allowPrivate ? {} : { connect: { lookup: guardedLookup(options) } });
  }

  /**
   * fetch through the pool. A refused target rejects with `NonPublicAddressError` before any
   * connection is made; anything else rejects as fetch does.
   */
  async fetch(url: URL, init: Omit<RequestInit, 'dispatcher'>): Promise<Response> {
    const literal = literalAddress(url);
    // An IP literal is connected to without a lookup, so it is checked here.
    if (literal !== undefined && !this.options.allowPrivate && !this.isAllowed(literal)) {
      throw new NonPublicAddressError(url.hostname, literal);
    }
    try {
      return await fetch(url, { ...init, dispatcher: this.agent });
    } catch (err) {
      throw nonPublicAddressIn(err) ?? err;
    }
  }

  /**
   * Closes the pooled connections. By then no delivery waits for an answer, so what is left (a
   * connection an aborted attempt began, a lookup that never answered) is cut, not waited for.
   */
  close(): Promise<void> {
    return this.agent.destroy();
  }
}
