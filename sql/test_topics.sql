-- Topics: create_topic, drop_topic, add_partitions, naming, the catalog views
CREATE EXTENSION eventlog;

SELECT eventlog.create_topic('orders', 3);
SELECT eventlog.create_topic('payments');
SELECT eventlog.create_topic('audit.log-v1_x', 2, retention => '7 days', retention_bytes => 1000000);
SELECT topic, partitions, relation, retention, retention_bytes FROM eventlog.topics ORDER BY topic;

-- each topic is a partitioned relation; each partition a leaf using the eventlog access method
SELECT c.relname, c.relkind, a.amname, pg_get_expr(c.relpartbound, c.oid) AS bound
  FROM pg_class c LEFT JOIN pg_am a ON a.oid = c.relam
 WHERE c.relnamespace = 'eventlog_topics'::regnamespace AND c.relkind IN ('r', 'p')
 ORDER BY c.relname;

-- Kafka's naming rule: 1 to 249 characters of [a-zA-Z0-9._-]
SELECT eventlog.create_topic(repeat('a', 249));
SELECT topic = repeat('a', 249) AS long_name_kept, relation::text FROM eventlog.topics WHERE length(topic) = 249;
SELECT eventlog.create_topic(repeat('a', 250));
SELECT eventlog.create_topic('');
SELECT eventlog.create_topic('.');
SELECT eventlog.create_topic('..');
SELECT eventlog.create_topic('has space');
SELECT eventlog.create_topic('slash/name');
SELECT eventlog.create_topic('ünïcode');
SELECT eventlog.create_topic('quote"d');
SELECT eventlog.create_topic(NULL);

-- duplicates and bad partition counts
SELECT eventlog.create_topic('orders');
SELECT eventlog.create_topic('p0', 0);
SELECT eventlog.create_topic('p0', -1);
SELECT eventlog.create_topic('p0', 10001);
SELECT eventlog.create_topic('p0', NULL);
SELECT eventlog.create_topic('p0', 1, retention => '-1 day');
SELECT eventlog.create_topic('p0', 1, retention => '0');
SELECT eventlog.create_topic('p0', 1, retention_bytes => 0);
SELECT count(*) AS p0_topics FROM eventlog.topics WHERE topic = 'p0';

-- add_partitions takes the new total and only grows, as in Kafka
SELECT eventlog.add_partitions('orders', 5);
SELECT partitions FROM eventlog.topics WHERE topic = 'orders';
SELECT partition, relation FROM eventlog.partitions WHERE topic = 'orders' ORDER BY partition;
SELECT eventlog.add_partitions('orders', 5);
SELECT eventlog.add_partitions('orders', 2);
SELECT eventlog.add_partitions('orders', NULL);
SELECT eventlog.add_partitions('orders', 10001);
SELECT eventlog.add_partitions('nosuch', 3);
SELECT eventlog.add_partitions(NULL, 3);
-- the new partitions take records
SELECT * FROM eventlog.produce('orders', 'to p4'::text, partition => 4);

-- drop_topic
SELECT eventlog.drop_topic('payments');
SELECT eventlog.drop_topic('payments');
SELECT eventlog.drop_topic(NULL);
SELECT left(topic, 20) AS topic FROM eventlog.topics ORDER BY topic;
SELECT count(*) AS payments_relations FROM pg_class WHERE relname LIKE 'payments%';
-- a dropped topic can be created again, and starts at offset 0
SELECT eventlog.create_topic('payments');
SELECT * FROM eventlog.produce('payments', 'again'::text);

-- a topic created and dropped in a transaction that rolls back leaves nothing behind
BEGIN;
SELECT eventlog.create_topic('ephemeral');
SELECT * FROM eventlog.produce('ephemeral', 'x'::text);
ROLLBACK;
SELECT count(*) AS ephemeral FROM eventlog.topics WHERE topic = 'ephemeral';
SELECT * FROM eventlog.produce('ephemeral', 'x'::text);

-- alter_topic changes retention settings (NULL: no limit)
SELECT eventlog.alter_topic('orders', '3 days', 5000000);
SELECT retention, retention_bytes FROM eventlog.topics WHERE topic = 'orders';
SELECT eventlog.alter_topic('orders', NULL, NULL);
SELECT retention, retention_bytes FROM eventlog.topics WHERE topic = 'orders';
SELECT eventlog.alter_topic('orders', '0', NULL);
SELECT eventlog.alter_topic('orders', NULL, -5);
SELECT eventlog.alter_topic('nosuch', NULL, NULL);
SELECT eventlog.alter_topic(NULL, NULL, NULL);
SELECT extversion FROM pg_extension WHERE extname = 'eventlog';

-- the partitions view
SELECT topic, partition, earliest_offset, high_watermark, last_stable_offset, unstable_records, held_by
  FROM eventlog.partitions WHERE topic IN ('orders', 'payments') ORDER BY topic, partition;
-- a transaction that produced and is still open holds its partition's readers:
-- the view says which process, since when, and until when eventlog.transaction_timeout
-- lets it (5 min by default)
BEGIN;
SELECT "offset" FROM eventlog.produce('payments', 'open'::text, partition => 0);
SELECT unstable_records, held_by = pg_current_xact_id()::xid AS held_by_me,
       held_by_pid = pg_backend_pid() AS my_pid, held_since = now() AS since_my_start,
       held_until - held_since AS time_left
  FROM eventlog.partitions WHERE topic = 'payments';
SAVEPOINT s;
SELECT "offset" FROM eventlog.produce('orders', 'in a subtransaction'::text, partition => 0);
SELECT (eventlog.transaction_holder(held_by)).top_xid = pg_current_xact_id()::xid AS top_is_mine,
       held_by_pid = pg_backend_pid() AS my_pid
  FROM eventlog.partitions WHERE topic = 'orders' AND partition = 0;
ROLLBACK;
SELECT held_by, held_by_pid, held_since, held_until FROM eventlog.partitions WHERE topic = 'payments';
SELECT * FROM eventlog.transaction_holder('3'::xid);
-- verify(): every page of a sound topic passes; pages corrupted on disk are
-- reported block by block (test/t/024_verify.pl)
SELECT * FROM eventlog.verify('orders');
SELECT * FROM eventlog.verify('payments');
SELECT * FROM eventlog.verify('nosuch');
SELECT * FROM eventlog.verify(NULL);
SELECT * FROM eventlog.partition_state('eventlog.topic');
