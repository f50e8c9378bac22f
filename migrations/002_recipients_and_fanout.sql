-- Recipients (where each channel reaches a user), their opt-outs, topics, and fan-outs that
-- turn one request into a notification per user.

-- SKIPPED: not delivered on purpose (the user opted out of the channel, or has no address for
-- it); error_reason says which.
alter table notifications drop constraint notifications_status_check;
alter table notifications add constraint notifications_status_check
  check (status in ('PENDING', 'PROCESSING', 'SENT', 'FAILED', 'SKIPPED'));
alter table notification_attempts drop constraint notification_attempts_outcome_check;
alter table notification_attempts add constraint notification_attempts_outcome_check
  check (outcome in ('SENT', 'RETRY', 'FAILED', 'RELEASED', 'LEASE_EXPIRED', 'SKIPPED'));

alter table notifications
  -- EMAIL's HTML part, beside the plain-text body.
  add column html text,
  -- Delivered even to a user who opted out of the channel (a one-time code, a security alert).
  add column critical boolean not null default false,
  -- The fan-out that created it, if any.
  add column fanout_id uuid;

-- One notification per user per fan-out, whatever happens to the process creating them.
create unique index notifications_fanout_user on notifications (fanout_id, user_id) where fanout_id is not null;

-- A user's profile: the addresses a notification without "to" goes to.
create table recipients (
  user_id     text primary key,
  email       text,
  phone       text,
  webhook_url text,
  locale      text,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now()
);

-- Web Push subscriptions (a browser's PushSubscription); a PUSH goes to each of its user's.
create table push_subscriptions (
  user_id    text not null,
  endpoint   text not null,
  p256dh     text not null,
  auth       text not null,
  created_at timestamptz not null default now(),
  primary key (user_id, endpoint)
);

-- A row means the user does not want this channel (unless a notification is critical).
create table channel_opt_outs (
  user_id    text not null,
  channel    text not null check (channel in ('EMAIL', 'SMS', 'PUSH', 'IN_APP', 'WEBHOOK')),
  created_at timestamptz not null default now(),
  primary key (user_id, channel)
);

create table topic_subscriptions (
  topic         text not null,
  user_id       text not null,
  subscribed_at timestamptz not null default now(),
  primary key (topic, user_id)
);

-- One request that creates a notification per user: a list of user_ids (created at once, DONE)
-- or a topic's subscribers (created by workers in batches, RUNNING until the last batch).
create table fanouts (
  id               uuid primary key,
  topic            text,
  type             text not null check (type in ('EMAIL', 'SMS', 'PUSH', 'IN_APP', 'WEBHOOK')),
  title            text,
  body             text not null,
  html             text,
  data             jsonb,
  critical         boolean not null default false,
  status           text not null check (status in ('RUNNING', 'DONE')),
  -- The last user_id handled, in user_id order: the next batch starts after it.
  cursor           text,
  created_count    int not null default 0,
  -- A worker's hold on a RUNNING fan-out, fenced like a notification's claim.
  attempt          int not null default 0,
  locked_by        text,
  lease_expires_at timestamptz,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  finished_at      timestamptz
);
create index fanouts_running on fanouts (created_at) where status = 'RUNNING';

-- An Idempotency-Key names either one notification or one fan-out.
alter table idempotency_keys alter column notification_id drop not null;
alter table idempotency_keys
  add column fanout_id uuid references fanouts (id) on delete cascade deferrable initially deferred,
  add constraint idempotency_keys_target check ((notification_id is null) <> (fanout_id is null));
