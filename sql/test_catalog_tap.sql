-- pgTAP: the catalog, the SQL surface and the storage of topics
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
CREATE EXTENSION IF NOT EXISTS eventlog;
CREATE EXTENSION IF NOT EXISTS pgtap;

BEGIN;
SELECT plan(71);

SELECT has_schema('eventlog');
SELECT has_schema('eventlog_topics');
SELECT has_table('eventlog', 'topic', 'the topic catalog exists');
SELECT col_is_pk('eventlog', 'topic', 'topic', 'topics are known by name');
SELECT has_view('eventlog', 'topics', 'view eventlog.topics');
SELECT has_view('eventlog', 'partitions', 'view eventlog.partitions');
SELECT columns_are('eventlog', 'partitions',
       ARRAY['topic', 'partition', 'relation', 'earliest_offset', 'high_watermark',
             'last_stable_offset', 'unstable_records', 'held_by', 'size_bytes', 'segments',
             'held_by_pid', 'held_since', 'held_until']);
SELECT columns_are('eventlog', 'segments',
       ARRAY['topic', 'partition', 'segment', 'base_offset', 'end_offset', 'earliest_offset',
             'next_offset', 'max_ts', 'size_bytes']);

SELECT has_function('eventlog', 'create_topic', ARRAY['text', 'integer', 'interval', 'bigint', 'bigint']);
SELECT has_function('eventlog', 'alter_topic', ARRAY['text', 'interval', 'bigint', 'bigint']);
SELECT has_function('eventlog', 'enforce_retention', ARRAY['text']);
SELECT has_function('eventlog', 'drop_topic', ARRAY['text']);
SELECT has_function('eventlog', 'add_partitions', ARRAY['text', 'integer']);
SELECT has_function('eventlog', 'verify', ARRAY['text']);
SELECT has_function('eventlog', 'transaction_holder', ARRAY['xid']);
SELECT function_returns('eventlog', 'verify', ARRAY['text'], 'setof record');
SELECT has_function('eventlog', 'produce', ARRAY['text', 'bytea', 'text', 'jsonb', 'integer']);
SELECT has_function('eventlog', 'produce', ARRAY['text', 'text', 'text', 'jsonb', 'integer']);
SELECT has_function('eventlog', 'produce', ARRAY['text', 'jsonb', 'text', 'jsonb', 'integer']);
-- produce returns a named row type: a row described by OUT parameters is
-- rebuilt from pg_proc three times in every statement that calls it
SELECT has_composite('eventlog', 'record_metadata', 'type eventlog.record_metadata');
SELECT columns_are('eventlog', 'record_metadata', ARRAY['partition', 'offset']);
SELECT col_type_is('eventlog', 'record_metadata', 'partition', 'integer', 'record_metadata.partition is integer');
SELECT col_type_is('eventlog', 'record_metadata', 'offset', 'bigint', 'record_metadata.offset is bigint');
SELECT function_returns('eventlog', 'produce', ARRAY['text', 'text', 'text', 'jsonb', 'integer'],
                        'eventlog.record_metadata');
SELECT function_returns('eventlog', 'produce_batch', ARRAY['text', 'text[]', 'text[]', 'jsonb[]', 'integer'],
                        'setof eventlog.record_metadata');
SELECT is((SELECT count(*) FROM pg_proc WHERE proname IN ('produce', 'produce_batch')
             AND pronamespace = 'eventlog'::regnamespace
             AND prorettype = 'eventlog.record_metadata'::regtype AND proallargtypes IS NULL), 6::bigint,
          'the six produce functions return eventlog.record_metadata and have no OUT parameters');
SELECT has_function('eventlog', 'produce_batch', ARRAY['text', 'bytea[]', 'text[]', 'jsonb[]', 'integer']);
SELECT has_function('eventlog', 'produce_batch', ARRAY['text', 'text[]', 'text[]', 'jsonb[]', 'integer']);
SELECT has_function('eventlog', 'produce_batch', ARRAY['text', 'jsonb[]', 'text[]', 'jsonb[]', 'integer']);
SELECT has_function('eventlog', 'fetch', ARRAY['text', 'integer', 'bigint', 'integer']);
SELECT function_returns('eventlog', 'fetch', ARRAY['text', 'integer', 'bigint', 'integer'], 'setof record');

-- every function and view of the extension is documented for \df+ and \dv+
SELECT is(count(*), 0::bigint, 'every eventlog function has a comment')
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'eventlog'
 WHERE obj_description(p.oid, 'pg_proc') IS NULL;
SELECT is(count(*), 0::bigint, 'every eventlog view has a comment')
  FROM pg_class c WHERE c.relnamespace = 'eventlog'::regnamespace AND c.relkind = 'v'
   AND obj_description(c.oid, 'pg_class') IS NULL;

-- the access method
SELECT is((SELECT amtype::text FROM pg_am WHERE amname = 'eventlog'), 't', 'eventlog is a table access method');

-- a topic's relations
SELECT lives_ok($$SELECT eventlog.create_topic('tap.topic', 3)$$, 'create a topic');
SELECT is((SELECT relkind::text FROM pg_class WHERE oid = 'eventlog_topics."tap.topic"'::regclass), 'p',
          'a topic is a partitioned relation');
SELECT is((SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'eventlog_topics."tap.topic"'::regclass AND c.relkind = 'p'), 3::bigint,
          'each partition is a partitioned relation');
SELECT is((SELECT pg_get_partkeydef('eventlog_topics."tap.topic$1"'::regclass)), 'RANGE ("offset")',
          'partitions are partitioned by range of offset');
SELECT is((SELECT count(*) FROM pg_partition_tree('eventlog_topics."tap.topic"') t JOIN pg_class c ON c.oid = t.relid
             JOIN pg_am a ON a.oid = c.relam
            WHERE t.isleaf AND a.amname = 'eventlog' AND t.level = 2), 3::bigint,
          'each partition starts with one segment stored by the eventlog access method');
SELECT is((SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE oid = 'eventlog_topics."tap.topic$2$0"'::regclass),
          'FOR VALUES FROM (''0'') TO (''1000000'')', 'the first segment holds offsets 0 to eventlog.segment_records');
SELECT is((SELECT pg_get_partkeydef('eventlog_topics."tap.topic"'::regclass)), 'LIST (partition)',
          'topics are partitioned by list of partition');
SELECT columns_are('eventlog_topics', 'tap.topic', ARRAY['partition', 'offset', 'key', 'value', 'headers', 'ts']);
SELECT col_type_is('eventlog_topics', 'tap.topic', 'offset', 'bigint', 'offset is bigint');
SELECT col_type_is('eventlog_topics', 'tap.topic', 'value', 'bytea', 'value is bytea');
SELECT col_type_is('eventlog_topics', 'tap.topic', 'headers', 'jsonb', 'headers is jsonb');
SELECT col_type_is('eventlog_topics', 'tap.topic', 'ts', 'timestamp with time zone', 'ts is timestamp with time zone');
SELECT isnt((SELECT reltoastrelid FROM pg_class WHERE oid = 'eventlog_topics."tap.topic$0$0"'::regclass), 0::oid,
            'segments have a TOAST relation for large records');
SELECT results_eq($$SELECT topic, partitions FROM eventlog.topic WHERE topic = 'tap.topic'$$,
                  $$VALUES ('tap.topic'::text, 3)$$, 'the catalog records the topic');
SELECT ok((SELECT 'eventlog.topic'::regclass = ANY (extconfig) FROM pg_extension WHERE extname = 'eventlog'),
          'the topic catalog is dumped by pg_dump');

-- offsets start at 0 and increase by one per record, per partition
SELECT results_eq($$SELECT "offset" FROM eventlog.produce_batch('tap.topic', ARRAY['a', 'b', 'c']::text[], partition => 1)$$,
                  ARRAY[0::bigint, 1, 2], 'offsets start at 0 in a new partition');
SELECT results_eq($$SELECT "offset" FROM eventlog.produce('tap.topic', 'd'::text, partition => 1)$$,
                  ARRAY[3::bigint], 'the next record gets the next offset');
SELECT results_eq($$SELECT "offset" FROM eventlog.produce('tap.topic', 'e'::text, partition => 2)$$,
                  ARRAY[0::bigint], 'each partition has its own offsets');
SELECT results_eq($$SELECT high_watermark FROM eventlog.partitions WHERE topic = 'tap.topic' ORDER BY partition$$,
                  ARRAY[0::bigint, 4, 1], 'the high watermark is the next offset to assign');

-- the SQLSTATEs of what users can get wrong
SELECT lives_ok($$SELECT eventlog.produce('tap.topic', 'x'::text, partition => 0)$$, 'a record to refuse changes to');
SELECT throws_ok($$UPDATE eventlog_topics."tap.topic" SET key = 'k'$$, '0A000', NULL, 'UPDATE is feature_not_supported');
SELECT throws_ok($$DELETE FROM eventlog_topics."tap.topic"$$, '0A000', NULL, 'DELETE is feature_not_supported');
SELECT throws_ok($$SELECT * FROM eventlog_topics."tap.topic" FOR UPDATE$$, '0A000', NULL, 'FOR UPDATE is feature_not_supported');
SELECT throws_ok($$UPDATE eventlog_topics."tap.topic" SET partition = 2 WHERE partition = 0$$, '0A000', NULL,
                 'row movement is feature_not_supported');
SELECT lives_ok($$CREATE UNIQUE INDEX tap_key ON eventlog_topics."tap.topic$0$0" (key)$$, 'a unique index for ON CONFLICT');
SELECT throws_ok($$INSERT INTO eventlog_topics."tap.topic$0$0" (partition, "offset", key) VALUES (0, 7, 'new') ON CONFLICT (key) DO NOTHING$$,
                 '0A000', NULL, 'INSERT ... ON CONFLICT is feature_not_supported');
SELECT throws_ok($$CLUSTER eventlog_topics."tap.topic$0$0" USING tap_key$$, '0A000', NULL, 'CLUSTER is feature_not_supported');
SELECT throws_ok($$SELECT eventlog.produce('no.such.topic', 'x'::text)$$, '42P01', NULL, 'unknown topic is undefined_table');
SELECT throws_ok($$SELECT eventlog.create_topic('tap.topic')$$, '42P07', NULL, 'an existing topic is duplicate_table');
SELECT throws_ok($$SELECT eventlog.create_topic('bad name')$$, '42602', NULL, 'a bad topic name is invalid_name');
SELECT throws_ok($$SELECT eventlog.produce('tap.topic', 'x'::text, partition => 9)$$, '22023', NULL,
                 'a partition out of range is invalid_parameter_value');
SELECT throws_ok($$SELECT * FROM eventlog.fetch('tap.topic', 0, -1)$$, '22023', NULL, 'a negative offset is invalid_parameter_value');
SELECT throws_ok($$SELECT * FROM eventlog.fetch('tap.topic', 0, 1000)$$, '22023', NULL, 'a future offset is invalid_parameter_value');
SELECT throws_ok($$SELECT eventlog.produce(NULL, 'x'::text)$$, '22004', NULL, 'a NULL topic is null_value_not_allowed');
SELECT throws_ok($$SELECT eventlog.produce('tap.topic', repeat('x', 2000000)::text)$$, '54000', NULL,
                 'an oversize record is program_limit_exceeded');
SELECT throws_ok($$SELECT eventlog.produce('tap.topic', 'x'::text, headers => '[1]')$$, '22023', NULL,
                 'headers that are not an object are invalid_parameter_value');
SELECT throws_ok($$SELECT eventlog.commit('tap.group', 'tap.topic', 0, 0)$$, '42704', NULL,
                 'an unknown group is undefined_object');

SELECT * FROM finish();
ROLLBACK;
