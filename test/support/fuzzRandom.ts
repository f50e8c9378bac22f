import { randomInt } from 'node:crypto';

/**
 * A small seeded PRNG (sfc32, seeded through splitmix32) and the value generators the HTTP fuzz
 * test builds its requests from. Everything random in a fuzz run comes from one `Random`, so the
 * seed printed with a failure replays the same requests.
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    let s = seed >>> 0;
    const split = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = split();
    this.b = split();
    this.c = split();
    this.d = split();
    for (let i = 0; i < 12; i++) this.next();
  }

  /** A float in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** One of `choices`, each drawn in proportion to its weight; the chosen function is called. */
  weighted<T>(choices: readonly (readonly [number, () => T])[]): T {
    const total = choices.reduce((sum, [w]) => sum + w, 0);
    let roll = this.next() * total;
    for (const [w, make] of choices) {
      roll -= w;
      if (roll < 0) return make();
    }
    return choices.at(-1)![1]();
  }

  /** A length biased towards the small, now and then the edges 0 and `max`. */
  length(max: number): number {
    return this.weighted([
      [6, () => this.int(0, Math.min(max, 8))],
      [2, () => this.int(0, Math.min(max, 64))],
      [1, () => this.int(0, max)],
      [1, () => this.pick([0, 1, max])],
    ]);
  }
}

/** FUZZ_SEED when set (a decimal integer), otherwise a fresh one. */
export function fuzzSeed(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.FUZZ_SEED;
  if (given === undefined || given === '') return randomInt(0, 2 ** 32);
  const seed = Number(given);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`FUZZ_SEED must be a non-negative integer, not "${given}"`);
  return seed >>> 0;
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const PUNCTUATION = ' !"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~\t';

/** Single characters that tend to break things: control, invisible, combining, astral, lone surrogate halves. */
const ODD_CHARACTERS = [
  '\u0000', '\u0001', '\u0007', '\b', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u00a0', '\u00ad', '\u00ff',
  '\u0301', '\u200b', '\u200d', '\u202e', '\u2028', '\u2029', '\ufeff', '\ufffd', '\uffff', '\ud83d\ude00',
  '\ud800', '\udbff', '\udc00', '\udfff', 'é', 'ß', 'İ', 'ǅ', 'Ω', '中', 'ﷺ', '𝕏', '\u{10ffff}',
];

/** Whole strings with a meaning somewhere: numbers that are not, JSON words, paths, markup, injections. */
const NOTABLE_STRINGS = [
  '', ' ', '  ', '\t', 'null', 'true', 'false', 'undefined', 'NaN', '-NaN', 'Infinity', '-Infinity', '0', '-0',
  '1e309', '-1e309', '0x10', '1_000', '9007199254740993', '2147483648', '-1', '00', '.', '..', '../..', '/',
  '//', '%', '%00', '%zz', '%2e%2e', '%2F', '%ED%A0%80', '?', '#', '&', '=', '\\', '__proto__', 'constructor',
  'prototype', 'toString', 'hasOwnProperty', "' or 1=1 --", '%_\\', '${7*7}', '{{7*7}}', '<script>', '\u0000',
  'a\u0000b', '\ud800', 'x\udc00y', 'AUX', 'CON', '💩', 'Ⅻ', '١٢٣',
];

/** A string of any kind: plain, punctuation, unicode, odd characters, notable words, very long. */
export function fuzzString(r: Random, maxLength = 300): string {
  return r.weighted([
    [4, () => fromAlphabet(r, ALNUM, r.int(1, Math.min(maxLength, 16)))],
    [2, () => fromAlphabet(r, ALNUM + PUNCTUATION, r.length(Math.min(maxLength, 40)))],
    [3, () => r.pick(NOTABLE_STRINGS)],
    [3, () => mixed(r, r.length(Math.min(maxLength, 40)))],
    [1, () => r.pick(['a', 'é', '💩', ' ', '\u0000', '\ud800']).repeat(r.pick([255, 256, 1000, 5000, 70_000]))],
    [1, () => fromAlphabet(r, ALNUM, r.pick([254, 255, 256, 1000, 2048, 2049]))],
  ]);
}

/** A string made only of characters from `alphabet`. */
export function fromAlphabet(r: Random, alphabet: string, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += alphabet[r.int(0, alphabet.length - 1)];
  return s;
}

function mixed(r: Random, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) {
    s += r.weighted([
      [3, () => r.pick([...ALNUM])],
      [1, () => r.pick([...PUNCTUATION])],
      [2, () => r.pick(ODD_CHARACTERS)],
      [1, () => String.fromCharCode(r.int(0x80, 0xffff))],
    ]);
  }
  return s;
}

/** A UUID-shaped string (version 4 bits), from this generator so that runs repeat. */
export function fuzzUuid(r: Random): string {
  const hex = () => r.int(0, 0xffff).toString(16).padStart(4, '0');
  return `${hex()}${hex()}-${hex()}-4${hex().slice(1)}-${r.pick(['8', '9', 'a', 'b'])}${hex().slice(1)}-${hex()}${hex()}${hex()}`;
}

/** Number literals, as JSON text, including the ones `JSON.stringify` cannot write. */
const NUMBER_LITERALS = [
  '0', '-0', '1', '-1', '0.5', '-0.0', '1e308', '1e309', '-1e309', '5e-324', '1e-400', '2147483647', '2147483648',
  '9007199254740991', '9007199254740993', '-9223372036854775809', '123456789012345678901234567890123456789', '1E2',
  '0.1e1', '1.0',
];

/**
 * JSON text for a value of any type, `depth` levels at most: what JSON.stringify writes and what
 * it cannot (`-0`, `1e309`, duplicate keys, `\u0000` and lone surrogate escapes, prototype keys).
 */
export function jsonText(r: Random, depth: number): string {
  const leaf = depth <= 0;
  return r.weighted([
    [1, () => 'null'],
    [1, () => r.pick(['true', 'false'])],
    [2, () => r.pick(NUMBER_LITERALS)],
    [1, () => String(r.int(-1_000_000, 1_000_000))],
    [4, () => JSON.stringify(fuzzString(r, 100))],
    [leaf ? 0 : 2, () => `[${Array.from({ length: r.length(6) }, () => jsonText(r, depth - 1)).join(',')}]`],
    [leaf ? 0 : 3, () => objectText(r, depth - 1)],
  ]);
}

function objectText(r: Random, depth: number): string {
  const keys = Array.from({ length: r.length(6) }, () => fuzzKey(r));
  if (keys.length > 0 && r.chance(0.15)) keys.push(r.pick(keys));
  return `{${keys.map((k) => `${JSON.stringify(k)}:${jsonText(r, depth)}`).join(',')}}`;
}

/** An object key: plain, a prototype name, or odd text. */
export function fuzzKey(r: Random): string {
  return r.weighted([
    [4, () => fromAlphabet(r, ALNUM, r.int(1, 8))],
    [2, () => r.pick(['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', 'length', '0'])],
    [2, () => fuzzString(r, 40)],
  ]);
}

/**
 * JSON text for an object that poses as a string, array or number: `length`, `toString`, `valueOf`,
 * `toJSON`, `then` as its own members, with values that are not what code reading them expects.
 */
export function impostorText(r: Random): string {
  const names = ['length', 'toString', 'valueOf', 'toJSON', 'then', 'constructor', '__proto__', 'trim', '0'];
  const value = () => r.pick(['null', '1', '-1', '1e309', '"x"', '{}', '[]', 'true', '{"toString":null}', '{"valueOf":null,"toString":null}']);
  const members = names.filter(() => r.chance(0.4));
  if (members.length === 0) members.push(r.pick(names));
  return `{${members.map((n) => `${JSON.stringify(n)}:${value()}`).join(',')}}`;
}

/** JSON text nested `depth` levels: arrays, objects, or both, around a leaf. */
export function deeplyNested(r: Random, depth: number): string {
  const kind = r.pick(['array', 'object', 'mixed'] as const);
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    const asArray = kind === 'array' || (kind === 'mixed' && i % 2 === 0);
    open += asArray ? '[' : '{"a":';
    close = (asArray ? ']' : '}') + close;
  }
  return open + r.pick(['1', 'null', '"x"', '[]', '{}']) + close;
}

/** Text that is not one JSON value: truncated, relaxed syntax, other formats, garbage. */
export function notJsonText(r: Random, validText: string): string {
  return r.weighted([
    [3, () => validText.slice(0, r.int(0, Math.max(0, validText.length - 1)))],
    [1, () => `${validText},`],
    [1, () => `${validText}${validText}`],
    [1, () => `\ufeff${validText}`],
    [1, () => validText.replace(/"/g, "'")],
    [2, () => r.pick(['{', '}', '[', '{]', '{"a":}', '{"a" 1}', '{a:1}', "{'a':1}", 'NaN', 'undefined', '01', '.5', '+1', '--1', '"\\x41"', '"\\u12"', '"unterminated', '[1,]', '{"a":1,}', '/* */{}', '\u0000', 'true false', '<xml/>', 'a=1&b=2'])],
    [1, () => fuzzString(r, 200)],
  ]);
}

/** Bytes that are not UTF-8 text, or are, with a byte order mark or NULs. */
export function oddBytes(r: Random): Uint8Array<ArrayBuffer> {
  return r.weighted([
    [2, () => Uint8Array.from({ length: r.int(1, 64) }, () => r.int(0, 255))],
    [1, () => Uint8Array.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00])],
    [1, () => Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d])],
    [1, () => Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d])],
  ]);
}

/** An RFC 3339 time, usually plain, now and then one at or past the edges of what readers take. */
export function fuzzDateTime(r: Random): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const offset = r.pick(['Z', '+00:00', '-23:59', '+23:59', '+05:30', 'z', '']);
  return r.weighted([
    [4, () => `${pad(r.int(1970, 2100), 4)}-${pad(r.int(1, 12))}-${pad(r.int(1, 28))}T${pad(r.int(0, 23))}:${pad(r.int(0, 59))}:${pad(r.int(0, 59))}${r.chance(0.3) ? `.${pad(r.int(0, 999999), 6)}` : ''}${offset}`],
    [2, () => r.pick(['0000-01-01T00:00:00Z', '0001-01-01T00:00:00Z', '9999-12-31T23:59:59Z', '9999-12-31T23:59:59-23:59', '4713-01-01T00:00:00Z', '1969-12-31T23:59:59.999999999Z', '2024-02-29T12:00:00Z', '2023-02-29T12:00:00Z', '2024-13-01T00:00:00Z', '2024-01-01T24:00:00Z', '2024-01-01T23:59:60Z', '2024-01-01', 'now', 'infinity', '-infinity', 'epoch', '1700000000'])],
  ]);
}
