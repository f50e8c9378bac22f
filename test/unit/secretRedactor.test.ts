import { describe, expect, it } from 'vitest';
import { REDACTED, secretRedactor } from '../../internal/channels/secretRedactor.ts';

const secret = 'a9/Zq+81 x&y=z%c0ffee';
const redact = secretRedactor({ user: 'AC123', secret });

/** How much of `encoded` (the secret in some encoding) is left in the redacted text, as its longest surviving piece. */
function longestSurvivingPiece(text: string, encoded: string): number {
  let longest = 0;
  for (let start = 0; start < encoded.length; start++) {
    for (let end = start + longest + 1; end <= encoded.length && text.includes(encoded.slice(start, end)); end++) longest = end - start;
  }
  return longest;
}

describe('secretRedactor', () => {
  it.each([
    ['raw', secret],
    ['URI component', encodeURIComponent(secret)],
    ['URI component, lower-case hex', encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (e) => e.toLowerCase())],
    ['form field', new URLSearchParams({ s: secret }).toString().slice(2)],
    ['hex', Buffer.from(secret).toString('hex')],
    ['base64', Buffer.from(secret).toString('base64')],
    ['base64url', Buffer.from(secret).toString('base64url')],
    ['Basic value', Buffer.from(`AC123:${secret}`).toString('base64')],
    ['AUTH PLAIN', Buffer.from(`\0AC123\0${secret}`).toString('base64')],
  ])('takes the %s form out of a text and leaves the rest', (_, encoded) => {
    expect(redact(`before ${encoded} after`)).toBe(`before ${REDACTED} after`);
  });

  // A secret inside any text that was base64-encoded whole, at each of the three alignments.
  it.each([0, 1, 2, 3, 4, 5])('leaves at most the edges of the secret in base64 of a text with %i bytes before it', (before) => {
    const encoded = Buffer.from(`${'p'.repeat(before)}${secret} and more`).toString('base64');
    const redacted = redact(`echo ${encoded}`);
    expect(redacted).toContain(REDACTED);
    // The characters that stand for the secret's bytes alone; only those shared with the bytes on
    // either side of it may stay.
    const secretOnly = encoded.slice(Math.ceil(before / 3) * 4, Math.floor((before + Buffer.byteLength(secret)) / 3) * 4);
    expect(secretOnly.length).toBeGreaterThan(16);
    expect(longestSurvivingPiece(redacted, secretOnly)).toBeLessThan(4);
  });

  it('changes nothing without a secret', () => {
    expect(secretRedactor({ secret: '' })('anything at all')).toBe('anything at all');
  });
});
