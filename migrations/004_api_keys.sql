-- Producers' API keys. Only a hash of each key is stored; the key itself is shown once, when created.
create table api_keys (
  id           uuid primary key,
  name         text not null,
  -- SHA-256 of the whole key, hex. Keys are 256 random bits, so a fast hash is enough.
  key_hash     text not null unique,
  -- The key's first characters, to recognise it in listings and logs without revealing it.
  prefix       text not null,
  scopes       text[] not null check (cardinality(scopes) > 0 and scopes <@ array['send', 'read', 'admin']),
  created_at   timestamptz not null default now(),
  revoked_at   timestamptz,
  last_used_at timestamptz
);
