-- What the dashboard and /stats ask every few seconds, answered without reading whole tables:
-- notifications created in the last minutes (rows arrive in created_at order, so a small BRIN
-- index serves it), attempts finished in the last minute (the workers seen).
create index if not exists notifications_created on notifications using brin (created_at);
create index if not exists notification_attempts_finished on notification_attempts (finished_at);
