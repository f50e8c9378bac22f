-- The record of every notification and of every attempt to deliver it.
-- Redis only says what to work on next; everything here survives losing Redis.

create table notifications (
  id               uuid primary key,
  user_id          text not null,
  type             text not null check (type in ('EMAIL', 'SMS', 'PUSH', 'IN_APP', 'WEBHOOK')),
  title            text,
  body             text not null,
  -- The channel address ("to" in the API): a URL for WEBHOOK.
  recipient        text,
  data             jsonb,
  status           text not null default 'PENDING'
                   check (status in ('PENDING', 'PROCESSING', 'SENT', 'FAILED')),
  -- Failed attempts so far.
  retry_count      int not null default 0 check (retry_count >= 0),
  error_reason     text,
  -- Number of the latest claim. A worker completes only the attempt it claimed, so a worker
  -- whose lease ran out cannot overwrite the outcome of the attempt that took over.
  attempt          int not null default 0 check (attempt >= 0),
  locked_by        text,
  claimed_at       timestamptz,
  lease_expires_at timestamptz,
  -- When a PENDING row may next be worked on (later than created_at while a retry waits).
  available_at     timestamptz not null default now(),
  -- When its id was last pushed to the queue; null means "due to be queued".
  queued_at        timestamptz,
  -- When its id was pushed to the dead-letter list; null on a FAILED row means "not yet".
  dead_lettered_at timestamptz,
  sent_at          timestamptz,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  check ((status = 'PROCESSING') = (lease_expires_at is not null)),
  check (status <> 'SENT' or sent_at is not null)
);

-- The sweeper's questions, each answered from a small partial index however large the table:
-- which PENDING rows wait to be queued, which were queued long ago and never claimed, which
-- claims ran out, which FAILED rows are missing from the dead-letter list.
create index notifications_unqueued on notifications (available_at)
  where status = 'PENDING' and queued_at is null;
create index notifications_queued on notifications (queued_at)
  where status = 'PENDING' and queued_at is not null;
create index notifications_processing_lease on notifications (lease_expires_at) where status = 'PROCESSING';
create index notifications_failed_undead on notifications (updated_at)
  where status = 'FAILED' and dead_lettered_at is null;

-- One row per finished attempt (an attempt under way is the row's PROCESSING state).
create table notification_attempts (
  notification_id uuid not null references notifications (id) on delete cascade,
  attempt         int not null,
  worker_id       text,
  started_at      timestamptz not null,
  finished_at     timestamptz not null default now(),
  outcome         text not null check (outcome in ('SENT', 'RETRY', 'FAILED', 'RELEASED', 'LEASE_EXPIRED')),
  error           text,
  primary key (notification_id, attempt)
);

-- Idempotency-Key → the notification it created, with a hash of the request that created it.
create table idempotency_keys (
  key             text primary key,
  request_hash    text not null,
  notification_id uuid not null references notifications (id) on delete cascade
                  deferrable initially deferred,
  created_at      timestamptz not null default now()
);
create index idempotency_keys_created on idempotency_keys (created_at);

-- The in-app inbox: an IN_APP notification is delivered when its row is here.
create table inbox_items (
  notification_id uuid primary key references notifications (id) on delete cascade,
  user_id         text not null,
  title           text,
  body            text not null,
  data            jsonb,
  created_at      timestamptz not null default now(),
  read_at         timestamptz
);
create index inbox_items_user on inbox_items (user_id, created_at desc, notification_id desc);
