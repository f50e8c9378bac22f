-- Operating herald over time: dead letters answered from PostgreSQL, every replay recorded, and
-- finished notifications deleted once they are older than RETENTION_DAYS.

-- One row per replay of dead letters, dry runs included: who asked (an API key's name, or
-- 'script' for npm run dlq), what they selected, and how many notifications it put back (or would).
create table dead_letter_replays (
  id           uuid primary key default gen_random_uuid(),
  requested_by text not null,
  -- {"ids": [...]}, or {"all": true} with the filters given (channel, error, since, until).
  filter       jsonb not null,
  count        int not null check (count >= 0),
  dry_run      boolean not null,
  created_at   timestamptz not null default now()
);

-- The indexes below are built inside the migration's transaction, which holds off writes to the
-- table while they build. On a large table, build them beforehand with CREATE INDEX CONCURRENTLY
-- and these same definitions: the migration then finds them and moves on.

-- The dead-letter listing: FAILED rows newest first, by when they failed, with the id breaking ties
-- so a cursor is exact. FAILED rows are few, so the index is small.
create index if not exists notifications_failed on notifications (updated_at, id) where status = 'FAILED';

-- Retention takes the oldest finished rows first. For a finished row updated_at is when it finished.
create index if not exists notifications_finished on notifications (updated_at)
  where status in ('SENT', 'FAILED', 'SKIPPED');

-- Deleting a notification cascades to the Idempotency-Key naming it; without this index each
-- deleted row would scan the whole idempotency_keys table.
create index if not exists idempotency_keys_notification on idempotency_keys (notification_id) where notification_id is not null;

-- An inbox item belongs to the user, not to the notification it came from: it holds its own copy of
-- the title, body and data, and the user reads and archives it for as long as they like. So the
-- notification's deletion by retention must not take it along. notification_id stays its key (ids
-- are never reused), just no longer a reference.
alter table inbox_items drop constraint inbox_items_notification_id_fkey;
