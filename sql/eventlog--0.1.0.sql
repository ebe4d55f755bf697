/* eventlog 0.1.0: Apache Kafka's event log inside PostgreSQL */

\echo Use "CREATE EXTENSION eventlog" to load this file. \quit

/*
 * Topic relations live in their own schema so that no topic name can collide
 * with eventlog's catalog tables, views and functions.
 */
GRANT USAGE ON SCHEMA eventlog TO PUBLIC;

CREATE SCHEMA eventlog_topics;
COMMENT ON SCHEMA eventlog_topics IS 'Relations of eventlog topics: one partitioned table per topic, one eventlog-method leaf per partition';
GRANT USAGE ON SCHEMA eventlog_topics TO PUBLIC;

/* ---- The table access method ---- */

CREATE FUNCTION eventlog.eventlog_tableam_handler(internal)
RETURNS table_am_handler
AS 'MODULE_PATHNAME', 'eventlog_tableam_handler'
LANGUAGE C STRICT;
COMMENT ON FUNCTION eventlog.eventlog_tableam_handler(internal) IS 'Handler of the eventlog table access method';

CREATE ACCESS METHOD eventlog TYPE TABLE HANDLER eventlog.eventlog_tableam_handler;
COMMENT ON ACCESS METHOD eventlog IS 'Append-only, offset-ordered storage of one topic partition';

/* ---- Catalog ---- */

CREATE TABLE eventlog.topic (
    topic           text PRIMARY KEY,
    relname         name NOT NULL UNIQUE,
    partitions      integer NOT NULL CHECK (partitions > 0),
    retention       interval CHECK (retention > interval '0'),
    retention_bytes bigint CHECK (retention_bytes > 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE eventlog.topic IS 'Catalog of topics: written only by create_topic, drop_topic and add_partitions';
SELECT pg_catalog.pg_extension_config_dump('eventlog.topic', '');
GRANT SELECT ON eventlog.topic TO PUBLIC;

/* ---- Topics ---- */

CREATE FUNCTION eventlog.create_topic(topic text, partitions integer DEFAULT 1,
                                      retention interval DEFAULT NULL,
                                      retention_bytes bigint DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_create_topic'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.create_topic(text, integer, interval, bigint) IS
'Creates a topic: a partitioned relation in schema eventlog_topics with one eventlog-method leaf per partition, owned by the caller';

CREATE FUNCTION eventlog.drop_topic(topic text)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_drop_topic'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.drop_topic(text) IS 'Drops a topic and all its records (owner only)';

CREATE FUNCTION eventlog.add_partitions(topic text, partitions integer)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_add_partitions'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.add_partitions(text, integer) IS
'Grows a topic to the given total number of partitions (never shrinks, as in Kafka)';

/* ---- Producing ---- */

CREATE FUNCTION eventlog.produce(topic text, value bytea, key text DEFAULT NULL,
                                 headers jsonb DEFAULT NULL, partition integer DEFAULT NULL,
                                 OUT partition integer, OUT "offset" bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'eventlog_produce_bytea'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce(text, bytea, text, jsonb, integer) IS
'Appends one record to a topic in the current transaction; returns its partition and offset';

CREATE FUNCTION eventlog.produce(topic text, value text, key text DEFAULT NULL,
                                 headers jsonb DEFAULT NULL, partition integer DEFAULT NULL,
                                 OUT partition integer, OUT "offset" bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'eventlog_produce_text'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce(text, text, text, jsonb, integer) IS
'Appends one record whose value is the UTF-8 text given; returns its partition and offset';

CREATE FUNCTION eventlog.produce(topic text, value jsonb, key text DEFAULT NULL,
                                 headers jsonb DEFAULT NULL, partition integer DEFAULT NULL,
                                 OUT partition integer, OUT "offset" bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'eventlog_produce_jsonb'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce(text, jsonb, text, jsonb, integer) IS
'Appends one record whose value is the JSON text of the value given; returns its partition and offset';

CREATE FUNCTION eventlog.produce_batch(topic text, "values" bytea[], keys text[] DEFAULT NULL,
                                       headers jsonb[] DEFAULT NULL, partition integer DEFAULT NULL)
RETURNS TABLE (partition integer, "offset" bigint)
AS 'MODULE_PATHNAME', 'eventlog_produce_batch_bytea'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce_batch(text, bytea[], text[], jsonb[], integer) IS
'Appends many records at once; returns one (partition, offset) row per record, in input order';

CREATE FUNCTION eventlog.produce_batch(topic text, "values" text[], keys text[] DEFAULT NULL,
                                       headers jsonb[] DEFAULT NULL, partition integer DEFAULT NULL)
RETURNS TABLE (partition integer, "offset" bigint)
AS 'MODULE_PATHNAME', 'eventlog_produce_batch_text'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce_batch(text, text[], text[], jsonb[], integer) IS
'Appends many text records at once; returns one (partition, offset) row per record, in input order';

CREATE FUNCTION eventlog.produce_batch(topic text, "values" jsonb[], keys text[] DEFAULT NULL,
                                       headers jsonb[] DEFAULT NULL, partition integer DEFAULT NULL)
RETURNS TABLE (partition integer, "offset" bigint)
AS 'MODULE_PATHNAME', 'eventlog_produce_batch_jsonb'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce_batch(text, jsonb[], text[], jsonb[], integer) IS
'Appends many JSON records at once; returns one (partition, offset) row per record, in input order';

CREATE FUNCTION eventlog.murmur2(key text)
RETURNS integer
AS 'MODULE_PATHNAME', 'eventlog_murmur2'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventlog.murmur2(text) IS
'Kafka''s murmur2 hash of the UTF-8 bytes of a key, as a signed 32-bit integer';

CREATE FUNCTION eventlog.partition_for_key(key text, partitions integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'eventlog_partition_for_key'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION eventlog.partition_for_key(text, integer) IS
'The partition Kafka''s default partitioner picks for a key: (murmur2(key) & 0x7fffffff) % partitions';

/* ---- Reading ---- */

CREATE FUNCTION eventlog.fetch(topic text, partition integer, "offset" bigint,
                               max_records integer DEFAULT 100)
RETURNS TABLE (topic text, partition integer, "offset" bigint, key text, value bytea,
               headers jsonb, ts timestamptz)
AS 'MODULE_PATHNAME', 'eventlog_fetch'
LANGUAGE C STABLE;
COMMENT ON FUNCTION eventlog.fetch(text, integer, bigint, integer) IS
'Reads committed records of one partition in offset order from an offset, stopping before the first record whose transaction is still open';

/* ---- Administration ---- */

CREATE FUNCTION eventlog.partition_state(relation regclass,
                                         OUT earliest_offset bigint,
                                         OUT high_watermark bigint,
                                         OUT last_stable_offset bigint,
                                         OUT held_by xid)
RETURNS record
AS 'MODULE_PATHNAME', 'eventlog_partition_state'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION eventlog.partition_state(regclass) IS
'Offsets of one eventlog relation: earliest retained, high watermark (next to assign), last stable offset and the transaction holding it back';

CREATE VIEW eventlog.topics AS
SELECT t.topic,
       t.partitions,
       format('eventlog_topics.%I', t.relname)::regclass AS relation,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       t.retention,
       t.retention_bytes,
       t.created_at
  FROM eventlog.topic t
  JOIN pg_catalog.pg_class c
    ON c.oid = format('eventlog_topics.%I', t.relname)::regclass;
COMMENT ON VIEW eventlog.topics IS 'One row per topic';

CREATE VIEW eventlog.partitions AS
SELECT t.topic,
       p.partition,
       p.relation,
       s.earliest_offset,
       s.high_watermark,
       s.last_stable_offset,
       s.high_watermark - s.last_stable_offset AS unstable_records,
       s.held_by,
       pg_catalog.pg_total_relation_size(p.relation) AS size_bytes
  FROM eventlog.topic t
 CROSS JOIN LATERAL generate_series(0, t.partitions - 1) AS g(partition)
 CROSS JOIN LATERAL (SELECT g.partition,
                            format('eventlog_topics.%I', t.relname || '$' || g.partition)::regclass AS relation) p
 CROSS JOIN LATERAL eventlog.partition_state(p.relation) s;
COMMENT ON VIEW eventlog.partitions IS
'One row per topic partition: earliest offset, high watermark, last stable offset, the transaction holding readers back (held_by, see pg_stat_activity.backend_xid) and size';

GRANT SELECT ON eventlog.topics, eventlog.partitions TO PUBLIC;
