/**
 * How deeply a request body may nest objects and arrays. Twice what any route takes (`data` nests
 * at most 32 levels, inside the body's own), and far below where parsing costs: JSON.parse builds
 * every level before any schema can refuse the body, and 1 MB of brackets took it and the checks
 * after it a third of a second of CPU per request.
 */
export const MAX_JSON_DEPTH = 64;

/** Keys longer than this are not quoted back in a refusal. */
const MAX_QUOTED_KEY = 255;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;

/** Where a body nests too deeply: the top-level field it happens under ('' when none can be named). */
export interface DeepNesting {
  field: string;
}

/**
 * Whether JSON text nests objects and arrays deeper than `limit`, found in one pass over the raw
 * text, before anything parses it: brackets inside strings (escaped quotes included) do not count.
 * The text need not be valid JSON; parsing it afterwards still decides that.
 */
export function deepNesting(text: string, limit: number): DeepNesting | undefined {
  let depth = 0;
  let topIsObject = false;
  // The last string at the top object's level: the key of the value being read, once inside it.
  let lastTopString: [number, number] | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === QUOTE) {
      const start = i;
      for (i++; i < text.length; i++) {
        const inner = text.charCodeAt(i);
        if (inner === BACKSLASH) i++;
        else if (inner === QUOTE) break;
      }
      if (depth === 1 && topIsObject) lastTopString = [start, i + 1];
    } else if (ch === OPEN_OBJECT || ch === OPEN_ARRAY) {
      depth++;
      if (depth === 1) topIsObject = ch === OPEN_OBJECT;
      if (depth > limit) return { field: lastTopString ? keyText(text.slice(...lastTopString)) : '' };
    } else if (ch === CLOSE_OBJECT || ch === CLOSE_ARRAY) {
      depth--;
    }
  }
  return undefined;
}

/** A quoted key as its text; '' when it is too long to quote back or not a valid JSON string. */
function keyText(quoted: string): string {
  if (quoted.length > MAX_QUOTED_KEY + 2) return '';
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return '';
  }
}
