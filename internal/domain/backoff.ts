/**
 * How long to wait before the next attempt after the `failedAttempts`-th failure: a uniformly random
 * time between half and all of min(base * 2^(failedAttempts-1), max). The random half spreads out
 * retries of notifications that failed together, so they do not hit a recovering receiver at once.
 */
export function retryDelayMs(
  failedAttempts: number,
  policy: { baseMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  if (!Number.isInteger(failedAttempts) || failedAttempts < 1) {
    throw new RangeError(`failedAttempts must be a positive integer, got ${failedAttempts}`);
  }
  // 2^(n-1) overflows to Infinity for large n; min() then caps it.
  const ceiling = Math.min(policy.baseMs * 2 ** (failedAttempts - 1), policy.maxMs);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
