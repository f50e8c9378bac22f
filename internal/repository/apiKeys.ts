import type { Sql } from '../platform/database.ts';
import { isUuid } from '../domain/uuid.ts';

export const SCOPES = ['send', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKeyRow {
  id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const COLUMNS = ['id', 'name', 'prefix', 'scopes', 'created_at', 'revoked_at', 'last_used_at'];

export async function insertApiKey(
  sql: Sql,
  key: { id: string; name: string; keyHash: string; prefix: string; scopes: Scope[] },
): Promise<ApiKeyRow> {
  const [row] = await sql<ApiKeyRow[]>`
    insert into api_keys (id, name, key_hash, prefix, scopes)
    values (${key.id}, ${key.name}, ${key.keyHash}, ${key.prefix}, ${key.scopes}::text[])
    returning ${sql(COLUMNS)}`;
  return row!;
}

/** The live (not revoked) key with this hash, if any. */
export async function findLiveApiKey(sql: Sql, keyHash: string): Promise<ApiKeyRow | undefined> {
  const [row] = await sql<ApiKeyRow[]>`
    select ${sql(COLUMNS)} from api_keys where key_hash = ${keyHash} and revoked_at is null`;
  return row;
}

/** Records that keys were used; called now and then, not per request. */
export async function touchApiKeys(sql: Sql, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`update api_keys set last_used_at = now() where id = any(${ids}::uuid[])`;
}

export async function listApiKeys(sql: Sql): Promise<ApiKeyRow[]> {
  return sql<ApiKeyRow[]>`select ${sql(COLUMNS)} from api_keys order by created_at`;
}

/** Revokes the key with this id or prefix; returns the keys revoked (none when unknown or already revoked). */
export async function revokeApiKey(sql: Sql, idOrPrefix: string): Promise<ApiKeyRow[]> {
  const byId = isUuid(idOrPrefix);
  return sql<ApiKeyRow[]>`
    update api_keys set revoked_at = now()
    where revoked_at is null and ${byId ? sql`id = ${idOrPrefix}` : sql`prefix = ${idOrPrefix}`}
    returning ${sql(COLUMNS)}`;
}
