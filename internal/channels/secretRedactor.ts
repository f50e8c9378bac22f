/** What stands in a text where a secret was. */
export const REDACTED = '[redacted]';

/**
 * Shortest run of base64 characters worth redacting on its own: shorter runs, cut from a short
 * secret, would match ordinary words in the text and say little about the secret.
 */
const MIN_BASE64_RUN = 8;

export interface Credentials {
  /** The login that goes with the secret (an account SID, an SMTP user), if there is one. */
  user?: string;
  secret: string;
}

/**
 * A function that takes every encoding of `credentials.secret` a server might echo out of a text:
 * the secret itself; percent-encoded (as in a URL or a form, hex in either case); as hex; and in
 * base64 (standard and URL-safe, padded or not) on its own, as a Basic `user:secret` value, as an
 * SMTP AUTH PLAIN `\0user\0secret`, and inside any other text that was base64-encoded whole (at
 * each of the three alignments the secret can have there). A provider's error text ends up in
 * `error_reason`, which every key with the `read` scope and the dashboard show; one that echoes
 * the request's Authorization header must not hand the credentials to them.
 */
export function secretRedactor({ user, secret }: Credentials): (text: string) => string {
  if (!secret) return (text) => text;
  const forms = new Set<string>([secret, ...percentEncodings(secret), ...hexEncodings(secret)]);
  const wholes = [secret, `${user ?? ''}:${secret}`, `\0${user ?? ''}\0${secret}`, `${user ?? ''}\0${secret}`];
  for (const whole of wholes) for (const form of base64Encodings(Buffer.from(whole))) forms.add(form);
  for (const run of alignedBase64Runs(Buffer.from(secret))) forms.add(run);
  // Longest first, so a Basic value is taken whole rather than around the secret's own encoding.
  const pattern = new RegExp([...forms].filter(Boolean).sort((a, b) => b.length - a.length).map(escapeRegExp).join('|'), 'g');
  return (text) => text.replace(pattern, REDACTED);
}

/** encodeURIComponent's and a form's (`+` for a space) spellings, with upper- and lower-case hex. */
function percentEncodings(secret: string): string[] {
  const uri = encodeURIComponent(secret);
  const form = new URLSearchParams({ s: secret }).toString().slice('s='.length);
  return [uri, form].flatMap((encoded) => [encoded, encoded.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase())]);
}

function hexEncodings(secret: string): string[] {
  const hex = Buffer.from(secret).toString('hex');
  return [hex, hex.toUpperCase()];
}

/** Standard and URL-safe base64, each with and without padding. */
function base64Encodings(bytes: Buffer): string[] {
  const standard = bytes.toString('base64');
  const urlSafe = bytes.toString('base64url');
  return [standard, standard.replace(/=+$/, ''), urlSafe];
}

/**
 * The base64 characters that stand for `secret` wherever it sits inside a longer text encoded
 * whole: base64 turns each 3 bytes into 4 characters, so the secret starts at one of three
 * alignments, and at each the groups made only of its bytes come out the same whatever surrounds
 * it. (The characters at either end, shared with the bytes around it, stay.)
 */
function alignedBase64Runs(secret: Buffer): string[] {
  const runs: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), secret]).toString('base64');
    const fullGroups = Math.floor((offset + secret.length) / 3);
    const run = encoded.slice(offset === 0 ? 0 : 4, fullGroups * 4);
    if (run.length >= MIN_BASE64_RUN) runs.push(run, run.replaceAll('+', '-').replaceAll('/', '_'));
  }
  return runs;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
