-- The in-app inbox as an end user sees it: a per-user sequence number that orders items in the
-- order their transactions committed (so "everything after N" never misses one), read, archived.

alter table inbox_items
  add column seq int,
  add column archived_at timestamptz;

-- The last seq handed out per user (an int: two billion items is beyond any one inbox). Taking
-- the next ones locks the user's row until COMMIT, so a user's items commit in seq order: a
-- client that has seen N has seen everything up to N.
create table inbox_counters (
  user_id  text primary key,
  last_seq int not null
);

with numbered as (
  select notification_id, row_number() over (partition by user_id order by created_at, notification_id) as seq
  from inbox_items
)
update inbox_items i set seq = numbered.seq from numbered where i.notification_id = numbered.notification_id;
insert into inbox_counters (user_id, last_seq) select user_id, max(seq) from inbox_items group by user_id;

alter table inbox_items alter column seq set not null;
drop index inbox_items_user;
create unique index inbox_items_user_seq on inbox_items (user_id, seq);
create index inbox_items_unread on inbox_items (user_id) where read_at is null and archived_at is null;
