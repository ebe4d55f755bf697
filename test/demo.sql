-- A guided tour of eventlog: two small services that talk through an event log kept in
-- PostgreSQL. The profile service writes profiles and publishes their changes; the billing
-- service and the audit service consume those changes, each at its own pace.
--
-- Run it with `bash test/run demo`, or on your own database with
-- `psql -v ON_ERROR_STOP=1 -f test/demo.sql` (needs a superuser, the extension installed, the
-- dblink extension that ships with PostgreSQL, and a fresh database: the tour creates schemas
-- profile_service, billing and audit). Every step prints what it is about to show, then the
-- statement and its result.

\set ON_ERROR_STOP 1
\set ECHO queries
\pset pager off
SET client_min_messages = warning;
-- Nothing in this tour should wait on a lock for long; fail loudly instead.
SET lock_timeout = '10s';

\echo
\echo '== 1. Install the extension =='
\echo 'It creates schema eventlog (functions, catalog, views) and schema eventlog_topics (topic relations).'
CREATE EXTENSION IF NOT EXISTS eventlog;

\echo
\echo '== 2. The profile service and its topic =='
\echo 'The profile service keeps its data in schema profile_service. It publishes every change of a'
\echo 'profile to topic "profile_changes", with 3 partitions: a partitioned table'
\echo 'eventlog_topics.profile_changes whose leaves profile_changes$0, $1 and $2 are append-only logs'
\echo 'stored by the eventlog table access method.'
CREATE SCHEMA profile_service;
CREATE TABLE profile_service.profiles (
    id    int PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name  text NOT NULL,
    plan  text NOT NULL DEFAULT 'free'
);
SELECT eventlog.create_topic('profile_changes', partitions => 3);
SELECT topic, partitions, relation, owner FROM eventlog.topics;

\echo
\echo '== 3. Writes and their events in one transaction (the transactional outbox) =='
\echo 'The profile service writes its table and produces the matching events in the same transaction:'
\echo 'the events exist if and only if the writes do, so nothing is lost between the commit and the'
\echo 'event. The service calls produce() itself; capturing table changes automatically is planned.'
\echo 'Each event is keyed by the profile id, so all changes of one profile land on one partition,'
\echo 'in order. produce_batch() returns one (partition, offset) per record, in input order.'
BEGIN;
INSERT INTO profile_service.profiles (id, email, name) VALUES
    (1, 'alice@example.com', 'Alice'),
    (2, 'bob@example.com',   'Bob'),
    (3, 'carol@example.com', 'Carol'),
    (4, 'dave@example.com',  'Dave');
SELECT *
  FROM eventlog.produce_batch('profile_changes',
         ARRAY(SELECT jsonb_build_object('op', 'created', 'id', id, 'email', email, 'plan', plan)
                 FROM profile_service.profiles ORDER BY id),
         keys => ARRAY(SELECT id::text FROM profile_service.profiles ORDER BY id));
COMMIT;

\echo 'One change, one event: Bob moves to the "pro" plan. produce() returns partition and offset at once.'
BEGIN;
UPDATE profile_service.profiles SET plan = 'pro' WHERE id = 2;
SELECT * FROM eventlog.produce('profile_changes', '{"op": "plan_changed", "id": 2, "plan": "pro"}'::jsonb,
                               key => '2');
COMMIT;

\echo
\echo '== 4. Which partition a key goes to =='
\echo 'Kafka''s default partitioner: murmur2 of the key, masked to 31 bits, modulo the partition count.'
\echo 'A Kafka client would pick the same partition numbers.'
SELECT id AS key, eventlog.murmur2(id::text), eventlog.partition_for_key(id::text, 3) AS partition
  FROM generate_series(1, 5) AS id;

\echo
\echo '== 5. A rolled-back change never reaches anyone =='
\echo 'Carol''s upgrade fails and the transaction rolls back: the profile is unchanged and the event is'
\echo 'never delivered. Its offset stays a gap in the partition, exactly as in Kafka.'
BEGIN;
UPDATE profile_service.profiles SET plan = 'team' WHERE id = 3;
SELECT * FROM eventlog.produce('profile_changes', '{"op": "plan_changed", "id": 3, "plan": "team"}'::jsonb,
                               key => '3');
ROLLBACK;
SELECT * FROM profile_service.profiles WHERE id = 3;

\echo
\echo '== 6. Fetch: the low-level read of one partition from an offset =='
\echo 'fetch() returns committed records of one partition in offset order, with no consumer group involved.'
\echo 'Values are bytes (bytea); these are JSON text, so convert_from() shows them.'
SELECT f.partition, f."offset", f.key, convert_from(f.value, 'UTF8') AS value
  FROM generate_series(0, 2) AS p,
       eventlog.fetch('profile_changes', p, 0) AS f
 ORDER BY f.partition, f."offset";

\echo
\echo '== 7. Billing: a consumer group that processes each change exactly once =='
\echo 'The billing service keeps its own table. consume(grp, topic, member => ...) returns records of the'
\echo 'partitions assigned to that member, from the group''s committed offsets (a new group starts at the'
\echo 'earliest record). With commit => true the position after the returned records is committed in'
\echo 'the same transaction as billing''s own insert: both commit, or neither does. That is exactly-once'
\echo 'processing; the primary key on (partition, offset) would refuse a record processed twice.'
\echo 'Billing skips changes that carry no plan; its position moves past them all the same.'
CREATE SCHEMA billing;
CREATE TABLE billing.charges (
    topic_partition int NOT NULL,
    topic_offset    bigint NOT NULL,
    profile_id      int NOT NULL,
    plan            text NOT NULL,
    monthly_fee     numeric NOT NULL,
    PRIMARY KEY (topic_partition, topic_offset)
);
BEGIN;
INSERT INTO billing.charges
SELECT c.partition, c."offset", (c.change ->> 'id')::int, c.change ->> 'plan',
       CASE c.change ->> 'plan' WHEN 'pro' THEN 12 WHEN 'team' THEN 49 ELSE 0 END
  FROM (SELECT partition, "offset", convert_from(value, 'UTF8')::jsonb AS change
          FROM eventlog.consume('billing', 'profile_changes', member => 'billing-1', commit => true)) AS c
 WHERE c.change ? 'plan'
RETURNING *;
COMMIT;
\echo 'The group exists now: its first consume() created it. billing-1 is its only member and owns'
\echo 'all 3 partitions; every call of a member is also its heartbeat.'
SELECT "group", generation, session_timeout, live_members, state FROM eventlog.groups;
SELECT "group", member, topics, partitions, live FROM eventlog.members;

\echo
\echo '== 8. Audit: a second group reads the same events independently =='
\echo 'Different groups never share records: each has its own committed offsets (publish/subscribe).'
\echo 'The audit service logs every change, whatever it is.'
CREATE SCHEMA audit;
CREATE TABLE audit.trail (
    topic_partition int NOT NULL,
    topic_offset    bigint NOT NULL,
    profile_id      int NOT NULL,
    change          jsonb NOT NULL,
    produced_at     timestamptz NOT NULL,
    PRIMARY KEY (topic_partition, topic_offset)
);
BEGIN;
INSERT INTO audit.trail
SELECT c.partition, c."offset", c.key::int, convert_from(c.value, 'UTF8')::jsonb, c.ts
  FROM eventlog.consume('audit', 'profile_changes', member => 'audit-1', commit => true) AS c;
COMMIT;
SELECT topic_partition, topic_offset, profile_id, change FROM audit.trail ORDER BY 1, 2;

\echo
\echo '== 9. New changes, and the lag of each group =='
\echo 'Eve signs up, Alice moves to the "team" plan and Carol tries her upgrade again, successfully this'
\echo 'time. Both groups are behind now: eventlog.lag shows, per group and partition, the committed'
\echo 'offset, the last stable offset and the difference (the gap Carol''s rolled-back change left counts'
\echo 'until a consumer reads past it).'
BEGIN;
INSERT INTO profile_service.profiles (id, email, name) VALUES (5, 'eve@example.com', 'Eve');
SELECT * FROM eventlog.produce('profile_changes',
                               '{"op": "created", "id": 5, "email": "eve@example.com", "plan": "free"}'::jsonb,
                               key => '5');
COMMIT;
BEGIN;
UPDATE profile_service.profiles SET plan = 'team' WHERE id = 1;
SELECT * FROM eventlog.produce('profile_changes', '{"op": "plan_changed", "id": 1, "plan": "team"}'::jsonb,
                               key => '1');
COMMIT;
BEGIN;
UPDATE profile_service.profiles SET plan = 'team' WHERE id = 3;
SELECT * FROM eventlog.produce('profile_changes', '{"op": "plan_changed", "id": 3, "plan": "team"}'::jsonb,
                               key => '3');
COMMIT;
SELECT "group", partition, member, committed_offset, last_stable_offset, lag
  FROM eventlog.lag ORDER BY "group", partition;

\echo
\echo '== 10. A failed processing transaction: the records come again =='
\echo 'Billing consumes the new changes and writes its charges, then fails before committing'
\echo '(a bug, a crash, a lost connection: here, a ROLLBACK). Its charges and its new position roll'
\echo 'back together, so the next call delivers the same records again.'
BEGIN;
INSERT INTO billing.charges
SELECT c.partition, c."offset", (c.change ->> 'id')::int, c.change ->> 'plan',
       CASE c.change ->> 'plan' WHEN 'pro' THEN 12 WHEN 'team' THEN 49 ELSE 0 END
  FROM (SELECT partition, "offset", convert_from(value, 'UTF8')::jsonb AS change
          FROM eventlog.consume('billing', 'profile_changes', member => 'billing-1', commit => true)) AS c
 WHERE c.change ? 'plan'
RETURNING *;
ROLLBACK;
\echo 'Nothing changed: billing lags exactly as before.'
SELECT "group", partition, committed_offset, lag FROM eventlog.lag WHERE "group" = 'billing' ORDER BY partition;
\echo 'The retry gets the same offsets and commits.'
BEGIN;
INSERT INTO billing.charges
SELECT c.partition, c."offset", (c.change ->> 'id')::int, c.change ->> 'plan',
       CASE c.change ->> 'plan' WHEN 'pro' THEN 12 WHEN 'team' THEN 49 ELSE 0 END
  FROM (SELECT partition, "offset", convert_from(value, 'UTF8')::jsonb AS change
          FROM eventlog.consume('billing', 'profile_changes', member => 'billing-1', commit => true)) AS c
 WHERE c.change ? 'plan'
RETURNING *;
COMMIT;
\echo 'Billing has caught up; audit, another group, is still behind.'
SELECT "group", partition, committed_offset, last_stable_offset, lag
  FROM eventlog.lag ORDER BY "group", partition;

\echo
\echo '== 11. Waiting for new records =='
\echo 'A consumer can block until records arrive instead of polling: consume(..., wait => ''30 s'').'
\echo 'A second session (opened here with dblink) runs billing''s processing with a wait. This'
\echo 'session then publishes a change; its commit wakes the waiting consumer at once, long before'
\echo 'the 30 seconds are up. (Producers wake waiters through shared memory: that needs'
\echo 'shared_preload_libraries = ''eventlog'', which this cluster has.)'
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('billing_service',
         format('host=%s port=%s dbname=%s user=%s',
                split_part(current_setting('unix_socket_directories'), ',', 1),
                current_setting('port'), current_database(), current_user));
SELECT dblink_send_query('billing_service', $$
    WITH charged AS (
        INSERT INTO billing.charges
        SELECT c.partition, c."offset", (c.change ->> 'id')::int, c.change ->> 'plan',
               CASE c.change ->> 'plan' WHEN 'pro' THEN 12 WHEN 'team' THEN 49 ELSE 0 END
          FROM (SELECT partition, "offset", convert_from(value, 'UTF8')::jsonb AS change
                  FROM eventlog.consume('billing', 'profile_changes', member => 'billing-1',
                                        commit => true, wait => '30 s')) AS c
         WHERE c.change ? 'plan'
        RETURNING *)
    SELECT charged.*,
           round(extract(epoch FROM clock_timestamp() - statement_timestamp())::numeric, 1) AS waited_seconds
      FROM charged
$$);
\echo 'Half a second later the other session is asleep in consume() (wait event "Extension"):'
SELECT pg_sleep(0.5);
SELECT wait_event_type, wait_event, left(btrim(regexp_replace(query, '\s+', ' ', 'g')), 50) AS query
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND state = 'active';
BEGIN;
UPDATE profile_service.profiles SET plan = 'pro' WHERE id = 4;
SELECT * FROM eventlog.produce('profile_changes', '{"op": "plan_changed", "id": 4, "plan": "pro"}'::jsonb,
                               key => '4');
COMMIT;
SELECT *
  FROM dblink_get_result('billing_service')
       AS t(topic_partition int, topic_offset bigint, profile_id int, plan text, monthly_fee numeric,
            waited_seconds numeric);
SELECT * FROM dblink_get_result('billing_service') AS t(done text);

\echo
\echo '== 12. An open producing transaction holds consumers back =='
\echo 'The dblink session now plays a slow profile-service transaction: it renames Alice (partition 0)'
\echo 'and does not commit yet. This session then changes Eve, whose key also lands on partition 0,'
\echo 'and commits. Offsets are assigned when records are produced, so Eve''s change comes after'
\echo 'Alice''s. Readers stop at the first record whose transaction is still open (Kafka''s last stable'
\echo 'offset): no consumer can move past Alice''s change while it may still commit.'
SELECT dblink_exec('billing_service', 'BEGIN');
SELECT dblink_exec('billing_service', $$UPDATE profile_service.profiles SET name = 'Alice B.' WHERE id = 1$$);
SELECT *
  FROM dblink('billing_service',
              $$SELECT * FROM eventlog.produce('profile_changes',
                                               '{"op": "renamed", "id": 1, "name": "Alice B."}'::jsonb,
                                               key => '1')$$)
       AS t(partition int, "offset" bigint);
BEGIN;
UPDATE profile_service.profiles SET plan = 'pro' WHERE id = 5;
SELECT * FROM eventlog.produce('profile_changes', '{"op": "plan_changed", "id": 5, "plan": "pro"}'::jsonb,
                               key => '5');
COMMIT;
\echo 'Partition 0 is held back by the open transaction (held_by is its transaction id):'
SELECT topic, partition, high_watermark, last_stable_offset, unstable_records, held_by
  FROM eventlog.partitions
 WHERE topic = 'profile_changes' AND partition = 0;
\echo 'so billing gets nothing yet, although Eve''s change is committed:'
SELECT partition, "offset", key, convert_from(value, 'UTF8') AS value
  FROM eventlog.consume('billing', 'profile_changes', member => 'billing-1');
\echo 'The slow transaction commits: both records become readable, in offset order. (This consume'
\echo 'passes no commit => true: it only looks, and the records will be delivered again.)'
SELECT dblink_exec('billing_service', 'COMMIT');
SELECT dblink_disconnect('billing_service');
SELECT partition, "offset", key, convert_from(value, 'UTF8') AS value
  FROM eventlog.consume('billing', 'profile_changes', member => 'billing-1');
BEGIN;
INSERT INTO billing.charges
SELECT c.partition, c."offset", (c.change ->> 'id')::int, c.change ->> 'plan',
       CASE c.change ->> 'plan' WHEN 'pro' THEN 12 WHEN 'team' THEN 49 ELSE 0 END
  FROM (SELECT partition, "offset", convert_from(value, 'UTF8')::jsonb AS change
          FROM eventlog.consume('billing', 'profile_changes', member => 'billing-1', commit => true)) AS c
 WHERE c.change ? 'plan'
RETURNING *;
COMMIT;

\echo
\echo '== 13. Sharing the work: a second billing member, and fencing =='
\echo 'billing-2 joins by consuming. The group rebalances: partitions are spread evenly over the live'
\echo 'members, and each keeps what it had as far as the balance allows (a sticky assignment, as in'
\echo 'Kafka), so billing-1 keeps partitions 0 and 1 and hands partition 2 over. The generation counts'
\echo 'rebalances. Members beyond the number of partitions would stay idle.'
BEGIN;
INSERT INTO billing.charges
SELECT c.partition, c."offset", (c.change ->> 'id')::int, c.change ->> 'plan',
       CASE c.change ->> 'plan' WHEN 'pro' THEN 12 WHEN 'team' THEN 49 ELSE 0 END
  FROM (SELECT partition, "offset", convert_from(value, 'UTF8')::jsonb AS change
          FROM eventlog.consume('billing', 'profile_changes', member => 'billing-2', commit => true)) AS c
 WHERE c.change ? 'plan'
RETURNING *;
COMMIT;
SELECT "group", member, partitions, generation, live FROM eventlog.members WHERE "group" = 'billing'
 ORDER BY member;
\echo 'billing-1 no longer owns partition 2, so a commit from it there is refused (SQLSTATE 55000).'
\echo 'For the application this error means: roll back, the new owner processes these records.'
DO $$
DECLARE
    state text;
    message text;
    hint text;
BEGIN
    PERFORM eventlog.commit('billing', 'profile_changes', 2,
                            (SELECT committed_offset FROM eventlog.lag
                              WHERE "group" = 'billing' AND partition = 2),
                            member => 'billing-1');
    RAISE EXCEPTION 'a commit by a member that does not own the partition was accepted';
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RAISE WARNING 'commit refused as expected: % %', state, message USING HINT = hint;
END
$$;
\echo 'billing-2 leaves: its partition goes back to billing-1 at once.'
SELECT eventlog.leave('billing', 'billing-2');
SELECT "group", member, partitions, generation, live FROM eventlog.members WHERE "group" = 'billing';

\echo
\echo '== 14. Replay: audit rebuilds its trail from the beginning =='
\echo 'Offsets of a group are moved only while it has no live members, as in Kafka: audit-1 leaves'
\echo 'first. reset_offsets() moves the group to ''earliest'', ''latest'', an offset or a timestamp in'
\echo 'every partition of the topic, and returns the new positions.'
SELECT eventlog.leave('audit', 'audit-1');
SELECT * FROM eventlog.reset_offsets('audit', 'profile_changes', 'earliest');
\echo 'audit-1 comes back and rebuilds its trail: the empty table and the replayed records commit together.'
BEGIN;
TRUNCATE audit.trail;
INSERT INTO audit.trail
SELECT c.partition, c."offset", c.key::int, convert_from(c.value, 'UTF8')::jsonb, c.ts
  FROM eventlog.consume('audit', 'profile_changes', member => 'audit-1', commit => true) AS c;
COMMIT;
SELECT topic_partition, topic_offset, profile_id, change FROM audit.trail ORDER BY 1, 2;
\echo 'Both groups are up to date, and each change was charged once:'
SELECT "group", partition, member, committed_offset, last_stable_offset, lag
  FROM eventlog.lag ORDER BY "group", partition;
SELECT profile_id, plan, monthly_fee, topic_partition, topic_offset
  FROM billing.charges ORDER BY profile_id, topic_partition, topic_offset;

\echo
\echo '== 15. Administration views =='
SELECT * FROM eventlog.topics;
SELECT * FROM eventlog.partitions ORDER BY topic, partition;
SELECT * FROM eventlog.groups ORDER BY "group";

\echo
\echo '== 16. Ad-hoc SQL over the topic relation =='
\echo 'The topic is an ordinary partitioned table for reading: filter, join and aggregate with SQL.'
SELECT partition, "offset", key, convert_from(value, 'UTF8') AS value
  FROM eventlog_topics.profile_changes
 WHERE partition = 0 AND "offset" BETWEEN 0 AND 10
 ORDER BY "offset";
SELECT convert_from(value, 'UTF8')::jsonb ->> 'op' AS op, count(*) AS changes
  FROM eventlog_topics.profile_changes
 GROUP BY 1
 ORDER BY 1;

\echo
\echo '== 17. The log is append-only =='
\echo 'UPDATE and DELETE on a topic are refused; only retention removes records.'
DO $$
BEGIN
    BEGIN
        DELETE FROM eventlog_topics.profile_changes WHERE partition = 0;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'DELETE refused as expected: %', SQLERRM;
        RETURN;
    END;
    RAISE EXCEPTION 'DELETE on a topic was accepted: the log must be append-only';
END
$$;

\echo
\echo 'Done. Planned next: automatic capture of table changes into topics, and a background worker'
\echo '(coalesced LISTEN/NOTIFY, retention by segments, expiring silent members when nobody calls,'
\echo 'mirrors between servers). See README.md and doc/eventlog.md.'
\echo 'To keep a cluster to play with after the tour: EVENTLOG_KEEP=1 bash test/run demo'
