/**
 * A fixture that could not be set up (a server not reachable, a database not created): one line
 * naming what was tried, where, and what the server said. The stack is left out on purpose: it
 * points into this harness, not at the test, and would bury the one line that says what to fix.
 */
export class FixtureError extends Error {
  constructor(what: string, cause: unknown) {
    super(`${what}: ${oneLine(cause)}`);
    this.name = 'FixtureError';
    this.stack = `${this.name}: ${this.message}`;
  }
}

function oneLine(cause: unknown): string {
  const text = cause instanceof AggregateError && cause.errors.length ? cause.errors.map(oneLine).join('; ') : messageOf(cause);
  return text.replace(/\s*\n\s*/g, ' ');
}

function messageOf(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const code = (cause as { code?: unknown }).code;
  return cause.message || (typeof code === 'string' ? code : cause.name);
}
