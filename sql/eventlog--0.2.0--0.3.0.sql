/* eventlog 0.2.0 -> 0.3.0: partitions stored in segments, and retention */

\echo Use "ALTER EXTENSION eventlog UPDATE TO '0.3.0'" to load this file. \quit

ALTER TABLE eventlog.topic
    ADD COLUMN segment_records bigint NOT NULL DEFAULT 1000000 CHECK (segment_records > 0);
COMMENT ON COLUMN eventlog.topic.segment_records IS
'Offsets per segment created from now on; retention drops whole segments';

COMMENT ON SCHEMA eventlog_topics IS
'Relations of eventlog topics: one partitioned table per topic, one relation per partition partitioned by offset, and eventlog-method segments';

DROP FUNCTION eventlog.create_topic(text, integer, interval, bigint);
CREATE FUNCTION eventlog.create_topic(topic text, partitions integer DEFAULT 1,
                                      retention interval DEFAULT NULL,
                                      retention_bytes bigint DEFAULT NULL,
                                      segment_records bigint DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_create_topic'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.create_topic(text, integer, interval, bigint, bigint) IS
'Creates a topic owned by the caller: a relation in schema eventlog_topics partitioned by partition, each partition in segments of segment_records offsets (default eventlog.segment_records)';

DROP FUNCTION eventlog.alter_topic(text, interval, bigint);
CREATE FUNCTION eventlog.alter_topic(topic text, retention interval, retention_bytes bigint,
                                     segment_records bigint DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_alter_topic'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.alter_topic(text, interval, bigint, bigint) IS
'Sets a topic''s retention by time and by size (NULL: no limit) and the size of its next segments (NULL: unchanged); owner only';

CREATE FUNCTION eventlog.enforce_retention(topic text DEFAULT NULL,
                                           OUT topic text, OUT partition integer,
                                           OUT base_offset bigint, OUT end_offset bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'eventlog_enforce_retention'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.enforce_retention(text) IS
'Applies retention now to a topic (NULL: every topic the caller owns) and returns the segments dropped; the worker does it every eventlog.retention_check_interval';

CREATE FUNCTION eventlog.topic_segments(topic text,
                                        OUT partition integer, OUT segment regclass,
                                        OUT base_offset bigint, OUT end_offset bigint,
                                        OUT earliest_offset bigint, OUT next_offset bigint,
                                        OUT max_ts timestamptz, OUT size_bytes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'eventlog_topic_segments'
LANGUAGE C STABLE STRICT;
COMMENT ON FUNCTION eventlog.topic_segments(text) IS
'Segments of a topic: bounds [base_offset, end_offset), the offsets they hold, their newest timestamp and size';

CREATE VIEW eventlog.segments AS
SELECT t.topic, s.*
  FROM eventlog.topic t
 CROSS JOIN LATERAL eventlog.topic_segments(t.topic) s;
COMMENT ON VIEW eventlog.segments IS
'One row per segment of each topic partition: its offset bounds, the offsets it holds (NULL if none), newest timestamp and size';
GRANT SELECT ON eventlog.segments TO PUBLIC;

CREATE OR REPLACE VIEW eventlog.topics AS
SELECT t.topic,
       t.partitions,
       format('eventlog_topics.%I', t.relname)::regclass AS relation,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       t.retention,
       t.retention_bytes,
       t.created_at,
       t.segment_records
  FROM eventlog.topic t
  JOIN pg_catalog.pg_class c
    ON c.oid = format('eventlog_topics.%I', t.relname)::regclass;

CREATE OR REPLACE VIEW eventlog.partitions AS
SELECT t.topic,
       p.partition,
       p.relation,
       s.earliest_offset,
       s.high_watermark,
       s.last_stable_offset,
       s.high_watermark - s.last_stable_offset AS unstable_records,
       s.held_by,
       (SELECT coalesce(sum(pg_catalog.pg_total_relation_size(tree.relid)), 0)::bigint
          FROM pg_catalog.pg_partition_tree(p.relation) tree
         WHERE tree.isleaf) AS size_bytes,
       (SELECT count(*)
          FROM pg_catalog.pg_partition_tree(p.relation) tree
         WHERE tree.isleaf) AS segments
  FROM eventlog.topic t
 CROSS JOIN LATERAL generate_series(0, t.partitions - 1) AS g(partition)
 CROSS JOIN LATERAL (SELECT g.partition,
                            format('eventlog_topics.%I', t.relname || '$' || g.partition)::regclass AS relation) p
 CROSS JOIN LATERAL eventlog.partition_state(p.relation) s;

/*
 * Partitions made by earlier versions are single eventlog relations: each
 * becomes the first segment of a new relation partitioned by offset, with
 * its records, offsets, indexes and owner as they were.  Done in C, so that
 * the new relations belong to their topics, not to the extension.
 */
CREATE FUNCTION eventlog.migrate_to_segments()
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventlog_migrate_to_segments'
LANGUAGE C VOLATILE;
SELECT eventlog.migrate_to_segments();
DROP FUNCTION eventlog.migrate_to_segments();
