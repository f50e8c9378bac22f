import { retryDelayMs } from '../domain/backoff.ts';
import type { Config } from '../platform/config.ts';

/** The lifecycle limits a worker applies, taken from the configuration. */
export interface RetryPolicy {
  maxRetries: number;
  baseMs: number;
  maxMs: number;
}

export function retryPolicyFrom(config: Config): RetryPolicy {
  return { maxRetries: config.MAX_RETRIES, baseMs: config.RETRY_BASE_MS, maxMs: config.RETRY_MAX_MS };
}

/** The wait before the next attempt of a notification that has failed `previousFailures` times before this one. */
export function nextRetryDelayMs(policy: RetryPolicy, previousFailures: number): number {
  return retryDelayMs(previousFailures + 1, policy);
}
