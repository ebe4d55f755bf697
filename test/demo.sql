-- A guided tour of eventlog: run it with `bash test/run demo`, or on your own
-- database with `psql -v ON_ERROR_STOP=1 -f test/demo.sql` (needs a superuser,
-- the extension installed, and the dblink extension that ships with PostgreSQL).
-- Every step prints what it is about to show, then the statement and its result.

\set ON_ERROR_STOP 1
\set ECHO queries
\pset pager off
SET client_min_messages = warning;
-- Producers must never wait on each other in this tour; fail loudly instead.
SET lock_timeout = '10s';

\echo
\echo '== 1. Install the extension =='
\echo 'It creates schema eventlog (functions, catalog, views) and schema eventlog_topics (topic relations).'
CREATE EXTENSION IF NOT EXISTS eventlog;

\echo
\echo '== 2. Create a topic =='
\echo 'Topic "orders" with 3 partitions: a partitioned table eventlog_topics.orders whose'
\echo 'leaves orders$0, orders$1 and orders$2 are append-only logs stored by the eventlog table access method.'
SELECT eventlog.create_topic('orders', partitions => 3);
\d+ eventlog_topics.orders

\echo
\echo '== 3. The transactional outbox: a business write and its event in one transaction =='
\echo 'produce() returns the partition and offset at once, like a Kafka producer.'
\echo 'The event exists if and only if the order does: nothing is lost between the commit and the event.'
CREATE TABLE shop_orders (
    id       int PRIMARY KEY,
    customer text NOT NULL,
    amount   numeric NOT NULL
);
BEGIN;
INSERT INTO shop_orders VALUES (1, 'alice', 42.50);
SELECT * FROM eventlog.produce('orders',
                               '{"order_id": 1, "customer": "alice", "amount": 42.50}'::jsonb,
                               key => 'alice');
COMMIT;

\echo
\echo '== 4. A batch of keyed events =='
\echo 'produce_batch() appends many records in one call and returns one (partition, offset) per record,'
\echo 'in input order. Records with the same key always land on the same partition, chosen by'
\echo 'Kafka''s default partitioner, so a Kafka client would pick the same partition number.'
SELECT *
  FROM eventlog.produce_batch('orders',
         ARRAY['{"order_id": 2, "customer": "dave", "amount": 10}',
               '{"order_id": 3, "customer": "carol", "amount": 7.25}',
               '{"order_id": 4, "customer": "dave", "amount": 99}',
               '{"order_id": 5, "customer": "alice", "amount": 3}']::jsonb[],
         keys => ARRAY['dave', 'carol', 'dave', 'alice']);
\echo 'The same choice, computed by hand: murmur2 of the key, masked to 31 bits, modulo the partition count.'
SELECT key, eventlog.murmur2(key), eventlog.partition_for_key(key, 3) AS partition
  FROM unnest(ARRAY['alice', 'carol', 'dave']) AS key;

\echo
\echo '== 5. Fetch: read a partition from an offset =='
\echo 'fetch() returns committed records of one partition in offset order. Values are bytes (bytea);'
\echo 'these are JSON text, so convert_from() shows them.'
SELECT f.partition, f."offset", f.key, convert_from(f.value, 'UTF8') AS value
  FROM generate_series(0, 2) AS p,
       eventlog.fetch('orders', p, 0) AS f
 ORDER BY f.partition, f."offset";

\echo
\echo '== 6. An aborted transaction''s event is never fetched =='
\echo 'The rolled-back record used an offset; that offset stays a gap, exactly as in Kafka.'
BEGIN;
SELECT * FROM eventlog.produce('orders', 'refund that never happened'::text, partition => 0);
ROLLBACK;
SELECT * FROM eventlog.produce('orders', 'a committed note'::text, partition => 0);
SELECT "offset", key, convert_from(value, 'UTF8') AS value
  FROM eventlog.fetch('orders', 0, 0);

\echo
\echo '== 7. An open transaction holds readers back (the last stable offset) =='
\echo 'A second session (opened here with dblink) produces to partition 1 and does not commit yet.'
\echo 'Then this session produces and commits a record after it. fetch() stops at the first record'
\echo 'whose transaction is still open, so no reader can skip the pending one if it commits later.'
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('producer',
         format('host=%s port=%s dbname=%s user=%s',
                split_part(current_setting('unix_socket_directories'), ',', 1),
                current_setting('port'), current_database(), current_user));
SELECT dblink_exec('producer', 'BEGIN');
SELECT *
  FROM dblink('producer',
              $$SELECT * FROM eventlog.produce('orders', 'pending'::text, partition => 1)$$)
       AS t(partition int, "offset" bigint);
SELECT * FROM eventlog.produce('orders', 'committed after the pending one'::text, partition => 1);
\echo 'Partition 1 now: the pending record and everything after it are held back.'
SELECT "offset", convert_from(value, 'UTF8') AS value FROM eventlog.fetch('orders', 1, 0);
SELECT topic, partition, high_watermark, last_stable_offset, unstable_records, held_by
  FROM eventlog.partitions
 WHERE topic = 'orders' AND partition = 1;
\echo 'The second session commits: both records become readable, in offset order.'
SELECT dblink_exec('producer', 'COMMIT');
SELECT dblink_disconnect('producer');
SELECT "offset", convert_from(value, 'UTF8') AS value FROM eventlog.fetch('orders', 1, 0);

\echo
\echo '== 8. Administration views =='
SELECT * FROM eventlog.topics;
SELECT * FROM eventlog.partitions ORDER BY topic, partition;

\echo
\echo '== 9. Ad-hoc SQL over the topic relation =='
\echo 'The topic is an ordinary partitioned table for reading: filter, join and aggregate with SQL.'
SELECT partition, "offset", key, convert_from(value, 'UTF8') AS value
  FROM eventlog_topics.orders
 WHERE partition = 0 AND "offset" BETWEEN 0 AND 10
 ORDER BY "offset";
SELECT convert_from(value, 'UTF8')::jsonb ->> 'customer' AS customer,
       count(*) AS orders,
       sum((convert_from(value, 'UTF8')::jsonb ->> 'amount')::numeric) AS total
  FROM eventlog_topics.orders
 WHERE key IS NOT NULL
 GROUP BY 1
 ORDER BY 1;

\echo
\echo '== 10. The log is append-only =='
\echo 'UPDATE and DELETE on a topic are refused; only retention removes records.'
DO $$
BEGIN
    BEGIN
        DELETE FROM eventlog_topics.orders WHERE partition = 0;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'DELETE refused as expected: %', SQLERRM;
        RETURN;
    END;
    RAISE EXCEPTION 'DELETE on a topic was accepted: the log must be append-only';
END
$$;

\echo
\echo 'Done. Planned next: consumer groups (consume/commit), LISTEN/NOTIFY and retention in a'
\echo 'background worker, mirrors. See README.md and doc/eventlog.md.'
