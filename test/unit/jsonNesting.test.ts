import { describe, expect, it } from 'vitest';
import { deepNesting } from '../../internal/http/request/jsonNesting.ts';

/** `levels` arrays around a leaf: `[[[1]]]` is three levels. */
const arrays = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;
/** `levels` objects: `{"a":{"a":{}}}` is three levels. */
const objects = (levels: number) => `${'{"a":'.repeat(levels - 1)}{}${'}'.repeat(levels - 1)}`;

describe('deepNesting', () => {
  it.each([
    ['arrays', arrays, ''],
    ['objects', objects, 'a'],
  ])('accepts %s nested exactly at the limit and refuses one level more', (_, nested, field) => {
    expect(deepNesting(nested(4), 4)).toBeUndefined();
    expect(deepNesting(nested(5), 4)).toEqual({ field });
    // The scan measures the text as JSON.parse would build it.
    expect(() => JSON.parse(nested(5))).not.toThrow();
  });

  it('counts the deepest point, not every bracket: siblings at the same level do not add up', () => {
    const wide = `[${Array.from({ length: 1000 }, () => arrays(3)).join(',')}]`;
    expect(deepNesting(wide, 4)).toBeUndefined();
    expect(deepNesting(`{"a":${arrays(3)},"b":{"c":${arrays(4)}}}`, 5)).toEqual({ field: 'b' });
    expect(deepNesting(`{"a":${arrays(3)},"b":{"c":${arrays(4)}}}`, 6)).toBeUndefined();
  });

  it('does not count brackets inside strings, keys or values', () => {
    const brackets = '[[[[[[{{{{{{';
    expect(deepNesting(JSON.stringify({ [brackets]: brackets, list: [brackets, `${brackets}]]]]`] }), 2)).toBeUndefined();
    expect(deepNesting(JSON.stringify(brackets.repeat(1000)), 1)).toBeUndefined();
  });

  it('reads escapes: an escaped quote does not end a string, an escaped backslash before a quote does', () => {
    // "\"[[[" is one string; "\\" ends at its second quote, so the brackets after it count.
    expect(deepNesting(JSON.stringify({ a: '"[[[[[[', b: '\\' }), 1)).toBeUndefined();
    expect(deepNesting(JSON.stringify({ a: '\\"[[[[[[' }), 1)).toBeUndefined();
    expect(deepNesting(`{"a":"\\\\","b":${'['.repeat(5)}`, 3)).toEqual({ field: 'b' });
    expect(deepNesting(`{"a":"\\u005b\\u005b\\u005b"}`, 1)).toBeUndefined();
    expect(JSON.parse(`{"a":"\\u005b\\u005b\\u005b"}`)).toEqual({ a: '[[[' });
  });

  it('names the top-level field the deep value is under, decoded, and none for a top-level array or an overlong key', () => {
    expect(deepNesting(`{"user_id":"u","type":"IN_APP","data":${objects(40)}}`, 32)).toEqual({ field: 'data' });
    expect(deepNesting(`{"d\\u00e4ta":${arrays(10)}}`, 5)).toEqual({ field: 'däta' });
    expect(deepNesting(`["data",${arrays(10)}]`, 5)).toEqual({ field: '' });
    expect(deepNesting(`{"${'k'.repeat(300)}":${arrays(10)}}`, 5)).toEqual({ field: '' });
  });

  it('refuses a megabyte of opening brackets', () => {
    const huge = '['.repeat(1024 * 1024);
    expect(deepNesting(huge, 64)).toEqual({ field: '' });
  });

  it('leaves text that is not JSON to the parser after it', () => {
    for (const text of ['', 'x', '"unterminated [[[[[[', '{"a": [1, 2', ']]]]]]']) expect(deepNesting(text, 2)).toBeUndefined();
  });
});
