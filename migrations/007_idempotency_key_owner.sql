-- An Idempotency-Key belongs to the producer that sent it: `owner` is its API key's id, or
-- 'no-api-key' while API keys are off (AUTH_DISABLED). Two producers sending the same key get a
-- notification each, and neither can see the other's nor collide with it.
--
-- Keys stored before this had no owner that can be known now: they are marked 'before-scoping'
-- and answer only an exact repeat (the same key and the same body) from any producer, so a retry
-- sent across the upgrade still creates nothing twice; a different body under such a key is no
-- conflict. They expire with the rest within 24 hours. The default only fills the existing rows
-- (a constant default adds the column without rewriting the table); every new row names its owner.
alter table idempotency_keys add column owner text not null default 'before-scoping';
alter table idempotency_keys alter column owner drop default;
alter table idempotency_keys drop constraint idempotency_keys_pkey;
alter table idempotency_keys add primary key (owner, key);
