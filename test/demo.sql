-- A guided tour of eventlog: two small services that talk through an event log kept in
-- PostgreSQL. The profile service writes profiles; eventlog captures every change of its table
-- into a topic, in the same transaction. The billing service and the audit service consume
-- those changes, each at its own pace.
--
-- Run it with `bash test/run demo`, or on your own database with
-- `psql -v ON_ERROR_STOP=1 -f test/demo.sql` (needs a superuser, the extension installed, the
-- dblink extension that ships with PostgreSQL, and a fresh database: the tour creates schemas
-- profile_service, billing and audit). Section 10 (notifications) needs
-- shared_preload_libraries = 'eventlog', as `bash test/run demo` sets it. Every step prints
-- what it is about to show, then the statement and its result.

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
CREATE EXTENSION IF NOT EXISTS dblink;

\echo
\echo '== 2. The profile service, its topic, and change capture =='
\echo 'The profile service keeps its data in schema profile_service. Every change of a profile goes'
\echo 'to topic "profile-changes", with 3 partitions: a partitioned table'
\echo 'eventlog_topics."profile-changes" whose leaves "profile-changes$0", $1 and $2 are append-only'
\echo 'logs stored by the eventlog table access method.'
\echo 'eventlog.capture() installs triggers on the table: from now on every INSERT, UPDATE, DELETE'
\echo 'and TRUNCATE produces an event in the writer''s own transaction. The service''s code does not'
\echo 'change at all.'
CREATE SCHEMA profile_service;
CREATE TABLE profile_service.profiles (
    id    int PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name  text NOT NULL,
    plan  text NOT NULL DEFAULT 'free'
);
SELECT eventlog.create_topic('profile-changes', partitions => 3);
SELECT eventlog.capture('profile_service.profiles', 'profile-changes');
SELECT topic, partitions, relation, owner FROM eventlog.topics;
SELECT * FROM eventlog.captures;

\echo
\echo '== 3. Writes and their events in one transaction (the transactional outbox) =='
\echo 'Four people sign up. The profiles and their change events commit together, or not at all:'
\echo 'nothing is lost between the commit and the event.'
\echo 'Not every event is a row change: in the same transaction the service asks the mailer for'
\echo 'welcome e-mails, on a topic of their own, with an explicit produce_batch() call. It returns'
\echo 'one (partition, offset) per record at once, in input order.'
SELECT eventlog.create_topic('emails');
BEGIN;
INSERT INTO profile_service.profiles (id, email, name) VALUES
    (1, 'alice@example.com', 'Alice'),
    (2, 'bob@example.com',   'Bob'),
    (3, 'carol@example.com', 'Carol'),
    (4, 'dave@example.com',  'Dave');
SELECT *
  FROM eventlog.produce_batch('emails',
         ARRAY(SELECT jsonb_build_object('to', email, 'template', 'welcome')
                 FROM profile_service.profiles ORDER BY id),
         keys => ARRAY(SELECT email FROM profile_service.profiles ORDER BY id));
COMMIT;

\echo 'Bob moves to the "pro" plan: a plain UPDATE. Here is the event it produced, the latest record'
\echo 'of the partition Bob''s key goes to. Its value is the payload of a Debezium change event:'
\echo '"before" and "after" are the row as JSON, "op" is c(reate), u(pdate), d(elete) or t(runcate),'
\echo '"source" says where and in which transaction. Its key is the JSON object of the primary key.'
\echo '(jsonb_pretty() shows it with its keys in jsonb''s order.)'
UPDATE profile_service.profiles SET plan = 'pro' WHERE id = 2;
SELECT f.partition, f."offset", f.key, jsonb_pretty(convert_from(f.value, 'UTF8')::jsonb) AS value
  FROM eventlog.partitions p,
       eventlog.fetch(p.topic, p.partition, p.high_watermark - 1, 1) AS f
 WHERE p.topic = 'profile-changes' AND p.partition = eventlog.partition_for_key('{"id": 2}', 3);

\echo
\echo '== 4. Which partition a key goes to =='
\echo 'Kafka''s default partitioner: murmur2 of the key, masked to 31 bits, modulo the partition count.'
\echo 'A Kafka client would pick the same partition numbers. All changes of one profile share a key,'
\echo 'so they land on one partition and are read in the order they were made.'
SELECT format('{"id": %s}', id) AS key,
       eventlog.murmur2(format('{"id": %s}', id)),
       eventlog.partition_for_key(format('{"id": %s}', id), 3) AS partition
  FROM generate_series(1, 5) AS id;

\echo
\echo '== 5. A rolled-back change never reaches anyone =='
\echo 'Carol''s upgrade fails and the transaction rolls back: the profile is unchanged and its event is'
\echo 'never delivered. Its offset stays a gap in the partition, exactly as in Kafka.'
BEGIN;
UPDATE profile_service.profiles SET plan = 'team' WHERE id = 3;
ROLLBACK;
SELECT * FROM profile_service.profiles WHERE id = 3;

\echo
\echo '== 6. Fetch: the low-level read of one partition from an offset =='
\echo 'fetch() returns committed records of one partition in offset order, with no consumer group involved.'
\echo 'Values are bytes (bytea); these are JSON text, so convert_from() reads them. Offset 2 of'
\echo 'partition 1 is missing: Carol''s rolled-back change.'
SELECT f.partition, f."offset", f.key, e ->> 'op' AS op, e -> 'after' AS after
  FROM generate_series(0, 2) AS p,
       eventlog.fetch('profile-changes', p, 0) AS f,
       LATERAL (SELECT convert_from(f.value, 'UTF8')::jsonb AS e) AS v
 ORDER BY f.partition, f."offset";
SELECT "offset", key, convert_from(value, 'UTF8') AS value FROM eventlog.fetch('emails', 0, 0);

\echo
\echo '== 7. Billing: a consumer group that processes each change exactly once =='
\echo 'The billing service charges a plan when a profile starts with it or changes to it. Its'
\echo 'processing step is one SQL function: consume(grp, topic, member => ...) returns records of the'
\echo 'partitions assigned to that member, from the group''s committed offsets (a new group starts at'
\echo 'the earliest record). With commit => true the position after the returned records is committed'
\echo 'in the same transaction as billing''s own insert: both commit, or neither does. That is'
\echo 'exactly-once processing; the primary key on (partition, offset) would refuse a record processed'
\echo 'twice. Changes that do not touch the plan are skipped; the position moves past them all the same.'
CREATE SCHEMA billing;
CREATE TABLE billing.charges (
    topic_partition int NOT NULL,
    topic_offset    bigint NOT NULL,
    profile_id      int NOT NULL,
    plan            text NOT NULL,
    monthly_fee     numeric NOT NULL,
    PRIMARY KEY (topic_partition, topic_offset)
);
CREATE FUNCTION billing.process(member text, wait interval DEFAULT '0')
RETURNS SETOF billing.charges
LANGUAGE sql AS $$
    INSERT INTO billing.charges
    SELECT c.partition, c."offset", (c.event -> 'after' ->> 'id')::int, c.event -> 'after' ->> 'plan',
           CASE c.event -> 'after' ->> 'plan' WHEN 'pro' THEN 12 WHEN 'team' THEN 49 ELSE 0 END
      FROM (SELECT partition, "offset", convert_from(value, 'UTF8')::jsonb AS event
              FROM eventlog.consume('billing', 'profile-changes', member => member,
                                    commit => true, wait => wait)) AS c
     WHERE c.event ->> 'op' IN ('c', 'u')
       AND c.event -> 'before' ->> 'plan' IS DISTINCT FROM c.event -> 'after' ->> 'plan'
    RETURNING *
$$;
BEGIN;
SELECT * FROM billing.process('billing-1');
COMMIT;
\echo 'The group exists now: its first consume() created it, owned by the calling role. billing-1 is'
\echo 'its only member and owns all 3 partitions; every call of a member is also its heartbeat.'
SELECT "group", owner, generation, session_timeout, live_members, state FROM eventlog.groups;
SELECT "group", member, topics, partitions, live FROM eventlog.members;

\echo
\echo '== 8. Audit: a second group reads the same events independently =='
\echo 'Different groups never share records: each has its own committed offsets (publish/subscribe).'
\echo 'The audit service logs every change, whatever it is: the row after it (before it, for a deletion).'
CREATE SCHEMA audit;
CREATE TABLE audit.trail (
    topic_partition int NOT NULL,
    topic_offset    bigint NOT NULL,
    profile_id      int NOT NULL,
    op              text NOT NULL,
    "row"           jsonb NOT NULL,
    produced_at     timestamptz NOT NULL,
    PRIMARY KEY (topic_partition, topic_offset)
);
CREATE FUNCTION audit.process(member text)
RETURNS bigint
LANGUAGE sql AS $$
    WITH logged AS (
        INSERT INTO audit.trail
        SELECT c.partition, c."offset", (c.key::jsonb ->> 'id')::int, c.event ->> 'op',
               coalesce(nullif(c.event -> 'after', 'null'), c.event -> 'before'), c.ts
          FROM (SELECT partition, "offset", key, ts, convert_from(value, 'UTF8')::jsonb AS event
                  FROM eventlog.consume('audit', 'profile-changes', member => member,
                                        commit => true)) AS c
        RETURNING 1)
    SELECT count(*) FROM logged
$$;
BEGIN;
SELECT audit.process('audit-1') AS logged;
COMMIT;
SELECT topic_partition, topic_offset, profile_id, op, "row" FROM audit.trail ORDER BY 1, 2;

\echo
\echo '== 9. New changes, and the lag of each group =='
\echo 'Eve signs up, Alice moves to the "team" plan and Carol tries her upgrade again, successfully this'
\echo 'time. Both groups are behind now: eventlog.lag shows, per group and partition, the committed'
\echo 'offset, the last stable offset and the difference. (The gap Carol''s rolled-back change left does'
\echo 'not count: consumers moved past it when they read the partition.)'
INSERT INTO profile_service.profiles (id, email, name) VALUES (5, 'eve@example.com', 'Eve');
UPDATE profile_service.profiles SET plan = 'team' WHERE id = 1;
UPDATE profile_service.profiles SET plan = 'team' WHERE id = 3;
SELECT "group", partition, member, committed_offset, last_stable_offset, lag
  FROM eventlog.lag ORDER BY "group", partition;

\echo
\echo '== 10. Being told about new records: LISTEN =='
\echo 'A service that would rather not poll can LISTEN on channel "eventlog.<topic>". Producers never'
\echo 'call NOTIFY themselves (it would serialize their commits): at commit they wake the database''s'
\echo 'eventlog worker, a background process started because this cluster has'
\echo 'shared_preload_libraries = ''eventlog'', and the worker sends one NOTIFY per topic whose records'
\echo 'moved, naming each partition and its new last stable offset (commits close together are'
\echo 'announced together).'
SELECT backend_type, datname FROM pg_stat_activity WHERE backend_type LIKE 'eventlog%' ORDER BY 1;
\echo 'This session listens, and so does a second connection (dblink), as an application would.'
\echo 'Then Bob closes his account: a DELETE, captured as an event with op "d".'
SELECT dblink_connect('listener',
         format('host=%s port=%s dbname=%s user=%s',
                split_part(current_setting('unix_socket_directories'), ',', 1),
                current_setting('port'), current_database(), current_user));
SELECT dblink_exec('listener', 'LISTEN "eventlog.profile-changes"');
LISTEN "eventlog.profile-changes";
DELETE FROM profile_service.profiles WHERE id = 2;
\echo 'psql prints a notification when it next talks to the server, after the result of its next'
\echo 'command; this one just waits a second for it:'
SELECT pg_sleep(1);
UNLISTEN *;
\echo 'The application side reads the same notification with dblink_get_notify(): the channel, the'
\echo 'process that sent it (the worker, not the session that deleted Bob) and the payload.'
CREATE TEMP TABLE heard (channel text, pid int, payload text);
DO $$
BEGIN
    FOR i IN 1 .. 100 LOOP
        INSERT INTO heard SELECT * FROM dblink_get_notify('listener');
        EXIT WHEN EXISTS (SELECT FROM heard);
        PERFORM pg_sleep(0.1);
    END LOOP;
    IF NOT EXISTS (SELECT FROM heard) THEN
        RAISE EXCEPTION 'no notification on channel "eventlog.profile-changes" within 10 seconds';
    END IF;
END
$$;
SELECT h.channel, a.backend_type AS sent_by, h.payload::jsonb AS payload
  FROM heard h LEFT JOIN pg_stat_activity a ON a.pid = h.pid;
SELECT dblink_disconnect('listener');

\echo
\echo '== 11. A failed processing transaction: the records come again =='
\echo 'Billing consumes the new changes and writes its charges, then fails before committing'
\echo '(a bug, a crash, a lost connection: here, a ROLLBACK). Its charges and its new position roll'
\echo 'back together, so the next call delivers the same records again.'
BEGIN;
SELECT * FROM billing.process('billing-1');
ROLLBACK;
\echo 'Nothing changed: billing''s committed offsets are where they were.'
SELECT "group", partition, committed_offset, lag FROM eventlog.lag WHERE "group" = 'billing' ORDER BY partition;
\echo 'The retry gets the same offsets and commits. (Bob''s deletion is consumed too, and skipped.)'
BEGIN;
SELECT * FROM billing.process('billing-1');
COMMIT;
\echo 'Billing has caught up; audit, another group, is still behind.'
SELECT "group", partition, committed_offset, last_stable_offset, lag
  FROM eventlog.lag ORDER BY "group", partition;

\echo
\echo '== 12. Waiting for new records =='
\echo 'A consumer can also block in consume(..., wait => ''30 s'') until records arrive, instead of'
\echo 'polling. A second session (dblink) runs billing''s processing with a wait. This session then'
\echo 'moves Dave to the "pro" plan; the commit wakes the waiting consumer at once, long before the'
\echo '30 seconds are up. (Waking goes through shared memory: that needs the preload too.)'
SELECT dblink_connect('billing_service',
         format('host=%s port=%s dbname=%s user=%s',
                split_part(current_setting('unix_socket_directories'), ',', 1),
                current_setting('port'), current_database(), current_user));
SELECT dblink_send_query('billing_service', $$
    SELECT c.*,
           round(extract(epoch FROM clock_timestamp() - statement_timestamp())::numeric, 1) AS waited_seconds
      FROM billing.process('billing-1', wait => '30 s') AS c
$$);
\echo 'Half a second later the other session is asleep in consume() (wait event "Extension"):'
SELECT pg_sleep(0.5);
SELECT wait_event_type, wait_event, left(btrim(regexp_replace(query, '\s+', ' ', 'g')), 50) AS query
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND state = 'active';
UPDATE profile_service.profiles SET plan = 'pro' WHERE id = 4;
SELECT *
  FROM dblink_get_result('billing_service')
       AS t(topic_partition int, topic_offset bigint, profile_id int, plan text, monthly_fee numeric,
            waited_seconds numeric);
SELECT * FROM dblink_get_result('billing_service') AS t(done text);

\echo
\echo '== 13. An open producing transaction holds consumers back =='
\echo 'The dblink session now plays a slow profile-service transaction: it renames Alice (partition 1)'
\echo 'and does not commit yet. Capture produced the event when the row was written, so it already has'
\echo 'its offset. This session then moves Eve, whose key also lands on partition 1, to "pro" and'
\echo 'commits: Eve''s change comes after Alice''s. Readers stop at the first record whose transaction'
\echo 'is still open (Kafka''s last stable offset): no consumer can move past Alice''s change while it'
\echo 'may still commit.'
SELECT dblink_exec('billing_service', 'BEGIN');
SELECT dblink_exec('billing_service', $$UPDATE profile_service.profiles SET name = 'Alice B.' WHERE id = 1$$);
UPDATE profile_service.profiles SET plan = 'pro' WHERE id = 5;
\echo 'Partition 1 is held back by the open transaction (held_by is its transaction id):'
SELECT topic, partition, high_watermark, last_stable_offset, unstable_records, held_by
  FROM eventlog.partitions
 WHERE topic = 'profile-changes' AND partition = 1;
\echo 'so billing gets nothing yet, although Eve''s change is committed. (These consume() calls pass'
\echo 'no commit => true: they only look, and the records will be delivered again.)'
SELECT partition, "offset", key, convert_from(value, 'UTF8')::jsonb ->> 'op' AS op
  FROM eventlog.consume('billing', 'profile-changes', member => 'billing-1');
\echo 'The slow transaction commits: both records become readable, in offset order.'
SELECT dblink_exec('billing_service', 'COMMIT');
SELECT dblink_disconnect('billing_service');
SELECT partition, "offset", key, e ->> 'op' AS op, e -> 'after' ->> 'name' AS name, e -> 'after' ->> 'plan' AS plan
  FROM eventlog.consume('billing', 'profile-changes', member => 'billing-1') AS c,
       LATERAL (SELECT convert_from(c.value, 'UTF8')::jsonb AS e) AS v;
BEGIN;
SELECT * FROM billing.process('billing-1');
COMMIT;

\echo
\echo '== 14. Sharing the work: a second billing member, and fencing =='
\echo 'billing-2 joins by consuming. The group rebalances: partitions are spread evenly over the live'
\echo 'members, and each keeps what it had as far as the balance allows (a sticky assignment, as in'
\echo 'Kafka), so billing-1 keeps partitions 0 and 1 and hands partition 2 over. The generation counts'
\echo 'rebalances. Members beyond the number of partitions would stay idle.'
BEGIN;
SELECT * FROM billing.process('billing-2');
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
    PERFORM eventlog.commit('billing', 'profile-changes', 2,
                            (SELECT committed_offset FROM eventlog.lag
                              WHERE "group" = 'billing' AND partition = 2),
                            member => 'billing-1');
    RAISE EXCEPTION 'a commit by a member that does not own the partition was accepted';
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RAISE WARNING 'commit refused as expected: % %', state, message USING HINT = hint;
END
$$;
\echo 'billing-2 leaves: its partition goes back to billing-1 at once. (A member that just stops'
\echo 'calling loses its partitions after the session timeout; the worker takes them away even if'
\echo 'no other member calls.)'
SELECT eventlog.leave('billing', 'billing-2');
SELECT "group", member, partitions, generation, live FROM eventlog.members WHERE "group" = 'billing';

\echo
\echo '== 15. Replay: audit rebuilds its trail from the beginning =='
\echo 'Offsets of a group are moved only while it has no live members, as in Kafka: audit-1 leaves'
\echo 'first. reset_offsets() moves the group to ''earliest'', ''latest'', an offset or a timestamp in'
\echo 'every partition of the topic, and returns the new positions.'
SELECT eventlog.leave('audit', 'audit-1');
SELECT * FROM eventlog.reset_offsets('audit', 'profile-changes', 'earliest');
\echo 'audit-1 comes back and rebuilds its trail: the empty table and the replayed records commit together.'
BEGIN;
TRUNCATE audit.trail;
SELECT audit.process('audit-1') AS logged;
COMMIT;
SELECT topic_partition, topic_offset, profile_id, op, "row" FROM audit.trail ORDER BY 1, 2;
\echo 'Both groups are up to date, and each plan was charged once:'
SELECT "group", partition, member, committed_offset, last_stable_offset, lag
  FROM eventlog.lag ORDER BY "group", partition;
SELECT profile_id, plan, monthly_fee, topic_partition, topic_offset
  FROM billing.charges ORDER BY profile_id, topic_partition, topic_offset;

\echo
\echo '== 16. Administration =='
\echo 'Topics, partitions, segments, groups and captures. alter_topic() sets a retention by time and'
\echo 'size (as kafka-configs --alter does): the worker drops whole segments past it, never rows.'
SELECT eventlog.alter_topic('profile-changes', retention => '30 days', retention_bytes => NULL);
SELECT * FROM eventlog.topics ORDER BY topic;
SELECT * FROM eventlog.partitions ORDER BY topic, partition;
SELECT topic, partition, segment, base_offset, end_offset, next_offset, size_bytes
  FROM eventlog.segments WHERE earliest_offset IS NOT NULL ORDER BY topic, partition, base_offset;
SELECT * FROM eventlog.groups ORDER BY "group";
SELECT * FROM eventlog.captures;

\echo
\echo '== 17. Ad-hoc SQL over the topic relation =='
\echo 'The topic is an ordinary partitioned table for reading: filter, join and aggregate with SQL.'
SELECT partition, "offset", key, convert_from(value, 'UTF8')::jsonb ->> 'op' AS op
  FROM eventlog_topics."profile-changes"
 WHERE partition = 1 AND "offset" BETWEEN 0 AND 10
 ORDER BY "offset";
SELECT convert_from(value, 'UTF8')::jsonb ->> 'op' AS op, count(*) AS changes
  FROM eventlog_topics."profile-changes"
 GROUP BY 1
 ORDER BY 1;

\echo
\echo '== 18. The log is append-only =='
\echo 'UPDATE and DELETE on a topic are refused.'
DO $$
BEGIN
    BEGIN
        DELETE FROM eventlog_topics."profile-changes" WHERE partition = 0;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'DELETE refused as expected: %', SQLERRM;
        RETURN;
    END;
    RAISE EXCEPTION 'DELETE on a topic was accepted: the log must be append-only';
END
$$;

\echo
\echo 'Done. Mirrors copy topics from another server (eventlog.create_mirror), and Kafka clients'
\echo 'can speak to the same topics (doc/kafka.md). See README.md and doc/eventlog.md.'
\echo 'To keep a cluster to play with after the tour: EVENTLOG_KEEP=1 bash test/run demo'
