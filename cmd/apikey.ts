import { createApiKey } from '../internal/service/apiKeyService.ts';
import { connectDatabase } from '../internal/platform/database.ts';
import { loadConfigOrExit } from '../internal/platform/processLifecycle.ts';
import { failScript, parseScriptArguments } from '../internal/platform/scriptArguments.ts';
import { listApiKeys, revokeApiKey, SCOPES, type ApiKeyRow, type Scope } from '../internal/repository/apiKeys.ts';

const USAGE = `usage: npm run apikey -- <command>
  create NAME [--scopes send,read,admin]   a new key (default scopes: send,read); printed once, stored hashed
  list                                     every key: prefix, name, scopes, created, last used, revoked
  revoke ID|PREFIX                         revoke a key (its id, or its prefix as list shows it)
  --quiet                                  with create: print the key alone (for scripts)
Scopes: send (create notifications, change profiles and topics), read (GET), admin (everything).`;

function fail(message: string): never {
  return failScript(USAGE, message);
}

const { values, positionals } = parseScriptArguments(USAGE, { scopes: { type: 'string', default: 'send,read' }, quiet: { type: 'boolean', default: false } } as const);
const [command, argument, ...extra] = positionals;
if (extra.length > 0) fail(`unexpected arguments: ${extra.join(' ')}`);

const scopes = values.scopes.split(',').map((s) => s.trim()).filter(Boolean);
const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
if (unknown.length > 0 || scopes.length === 0) fail(`unknown scope: ${unknown.join(', ') || '(none given)'}; use ${SCOPES.join(', ')}`);

const config = loadConfigOrExit();
const sql = connectDatabase(config.DATABASE_URL, { max: 1 });

function describe(k: ApiKeyRow): string {
  const used = k.last_used_at ? `used ${k.last_used_at.toISOString()}` : 'never used';
  const revoked = k.revoked_at ? `  REVOKED ${k.revoked_at.toISOString()}` : '';
  return `${k.prefix}…  ${k.id}  ${k.name}  [${k.scopes.join(',')}]  created ${k.created_at.toISOString()}  ${used}${revoked}`;
}

try {
  switch (command) {
    case 'create': {
      if (!argument) fail('create needs a NAME (who or what uses the key)');
      const { key, row } = await createApiKey(sql, argument, scopes as Scope[]);
      if (values.quiet) console.log(key);
      else console.log(`${key}\n\ncreated ${describe(row)}\nThis is the only time the key is shown; it is stored hashed.`);
      break;
    }
    case 'list': {
      const keys = await listApiKeys(sql);
      for (const k of keys) console.log(describe(k));
      console.log(`${keys.length} key(s)`);
      break;
    }
    case 'revoke': {
      if (!argument) fail('revoke needs the key\'s id or prefix (see list)');
      const revoked = await revokeApiKey(sql, argument.replace(/…$/, ''));
      if (revoked.length === 0) {
        console.error(`no live key with id or prefix "${argument}"`);
        process.exitCode = 1;
      }
      for (const k of revoked) console.log(`revoked ${describe(k)}`);
      break;
    }
    default:
      fail(command ? `unknown command "${command}"` : 'no command given');
  }
} finally {
  await sql.end({ timeout: 5 });
}
