import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

/** A one-shot script's command line, and how it refuses a wrong one. */
export interface ScriptArguments<O extends Options> {
  values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true }>>['values'];
  positionals: string[];
}

/**
 * Parses `process.argv` for a script (`npm run dlq`, `npm run apikey`): `--help` prints `usage` and
 * exits 0; an unknown or malformed option exits 2 with one line naming it, then the usage.
 */
export function parseScriptArguments<O extends Options>(usage: string, options: O): ScriptArguments<O> {
  let parsed;
  try {
    parsed = parseArgs({ allowPositionals: true, options: { ...options, help: { type: 'boolean' } } });
  } catch (err) {
    return failScript(usage, (err as Error).message);
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(usage);
    process.exit(0);
  }
  return { values: parsed.values as ScriptArguments<O>['values'], positionals: parsed.positionals };
}

/** Ends a script whose command line is wrong: exit code 2, `message` and the usage on stderr. */
export function failScript(usage: string, message: string): never {
  console.error(`${message}\n\n${usage}`);
  process.exit(2);
}
