import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from '../../internal/channels/transport/retryAfter.ts';

const now = Date.parse('2025-03-10T12:00:00Z');

describe('parseRetryAfter', () => {
  it('reads delay-seconds as milliseconds, surrounding spaces allowed', () => {
    expect(parseRetryAfter('2', now)).toBe(2000);
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 120 ', now)).toBe(120_000);
  });

  it('reads an HTTP-date as the time left until it, in the IMF-fixdate and obsolete RFC 850 forms', () => {
    expect(parseRetryAfter('Mon, 10 Mar 2025 12:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Monday, 10-Mar-25 12:01:00 GMT', now)).toBe(60_000);
  });

  it('measures an HTTP-date from the given now, not the clock', () => {
    expect(parseRetryAfter('Mon, 10 Mar 2025 12:00:30 GMT', now - 10_000)).toBe(40_000);
  });

  it('reads a date already past as no wait at all', () => {
    expect(parseRetryAfter('Mon, 10 Mar 2025 11:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 1970 00:00:00 GMT', now)).toBe(0);
  });

  it.each([undefined, null, '', '   ', 'soon', 'tomorrow', '1e3', '0x10', 'NaN'])('gives undefined for %j', (value) => {
    expect(parseRetryAfter(value, now)).toBeUndefined();
  });

  it('trusts up to a day and gives undefined beyond, as seconds or as a date', () => {
    expect(parseRetryAfter('86400', now)).toBe(86_400_000);
    expect(parseRetryAfter('86401', now)).toBeUndefined();
    expect(parseRetryAfter('99999999999999999999', now)).toBeUndefined();
    expect(parseRetryAfter('Tue, 11 Mar 2025 12:00:00 GMT', now)).toBe(86_400_000);
    expect(parseRetryAfter('Tue, 11 Mar 2025 12:00:01 GMT', now)).toBeUndefined();
    expect(parseRetryAfter('Fri, 01 Jan 2100 00:00:00 GMT', now)).toBeUndefined();
  });
});
