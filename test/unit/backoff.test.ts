import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../../internal/domain/backoff.ts';

const policy = { baseMs: 1000, maxMs: 300_000 };
const lowest = () => 0;
const highest = () => 1;

describe('retryDelayMs', () => {
  it('waits between half and all of the base after the first failure', () => {
    expect(retryDelayMs(1, policy, lowest)).toBe(500);
    expect(retryDelayMs(1, policy, highest)).toBe(1000);
    expect(retryDelayMs(1, policy, () => 0.5)).toBe(750);
  });

  it('doubles the ceiling with each further failure', () => {
    const ceilings = [1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, policy, highest));
    expect(ceilings).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000]);
    const floors = [1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, policy, lowest));
    expect(floors).toEqual([500, 1000, 2000, 4000, 8000, 16_000]);
  });

  it('caps the ceiling at maxMs', () => {
    expect(retryDelayMs(10, policy, highest)).toBe(300_000);
    expect(retryDelayMs(10, policy, lowest)).toBe(150_000);
    expect(retryDelayMs(20, { baseMs: 100, maxMs: 1500 }, highest)).toBe(1500);
  });

  it('stays finite and capped for huge attempt counts', () => {
    for (const n of [1024, 1025, 10_000, Number.MAX_SAFE_INTEGER]) {
      const high = retryDelayMs(n, policy, highest);
      const low = retryDelayMs(n, policy, lowest);
      expect(Number.isFinite(high)).toBe(true);
      expect(high).toBe(300_000);
      expect(low).toBe(150_000);
    }
  });

  it('always returns a whole number of milliseconds inside [ceiling/2, ceiling]', () => {
    const small = { baseMs: 7, maxMs: 1000 };
    for (let n = 1; n <= 12; n++) {
      const ceiling = Math.min(7 * 2 ** (n - 1), 1000);
      for (const r of [0, 0.1, 0.3333, 0.5, 0.77, 0.999999, 1]) {
        const delay = retryDelayMs(n, small, () => r);
        expect(Number.isInteger(delay)).toBe(true);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('uses Math.random by default and stays in range', () => {
    for (let i = 0; i < 200; i++) {
      const delay = retryDelayMs(3, policy);
      expect(delay).toBeGreaterThanOrEqual(2000);
      expect(delay).toBeLessThanOrEqual(4000);
    }
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])('refuses failedAttempts = %s', (n) => {
    expect(() => retryDelayMs(n, policy, lowest)).toThrow(RangeError);
    expect(() => retryDelayMs(n, policy, lowest)).toThrow(/failedAttempts must be a positive integer/);
  });
});
