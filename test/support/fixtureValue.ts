import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';

/** `file`: made once in `beforeAll`, released in `afterAll`; `test`: made and released around each test. */
export type FixtureLifetime = 'file' | 'test';

/**
 * Registers the hooks that make a value and release it, and returns a getter for it. The getter
 * throws, naming the fixture, when read outside a test or after its set-up failed, so a test never
 * runs on a value that was not made (vitest reports the set-up's own error first).
 */
export function fixtureValue<T>(
  what: string,
  lifetime: FixtureLifetime,
  make: () => Promise<T> | T,
  release: (value: T) => Promise<unknown> | unknown,
): () => T {
  let value: T | undefined;
  let made = false;
  const [before, after] = lifetime === 'file' ? [beforeAll, afterAll] : [beforeEach, afterEach];
  before(async () => {
    value = await make();
    made = true;
  });
  after(async () => {
    if (!made) return;
    made = false;
    await release(value as T);
  });
  return () => {
    if (!made) throw new Error(`${what} is not set up: read it inside a test or hook, after its own set-up succeeded`);
    return value as T;
  };
}

/**
 * An object whose `keys` read through to the fixture's current value, so a file can hold its
 * fixture in a `const` at the top and use its fields once the hooks have made it.
 */
export function fixtureFields<T extends object, K extends keyof T>(current: () => T, keys: readonly K[]): Pick<T, K> {
  const fields = {} as Pick<T, K>;
  for (const key of keys) Object.defineProperty(fields, key, { get: () => current()[key], enumerable: true });
  return fields;
}
