/* eventlog 0.1.0 -> 0.2.0: topic settings can be changed after creation */

\echo Use "ALTER EXTENSION eventlog UPDATE TO '0.2.0'" to load this file. \quit

CREATE FUNCTION eventlog.alter_topic(topic text, retention interval, retention_bytes bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_alter_topic'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.alter_topic(text, interval, bigint) IS
'Sets a topic''s retention by time and by size (NULL: no limit); owner only';

/*
 * Offsets across pg_dump and pg_restore: a dump carries committed records,
 * not the offsets of aborted ones at the end of a partition.
 */
CREATE TABLE eventlog.partition_mark (
    topic           text NOT NULL,
    partition       integer NOT NULL,
    earliest_offset bigint NOT NULL,
    high_watermark  bigint NOT NULL,
    saved_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);
COMMENT ON TABLE eventlog.partition_mark IS
'Offsets saved by eventlog.save_offsets() before a dump, for eventlog.restore_offsets() after a restore';
SELECT pg_catalog.pg_extension_config_dump('eventlog.partition_mark', '');
GRANT SELECT ON eventlog.partition_mark TO PUBLIC;

CREATE FUNCTION eventlog.save_offsets()
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventlog_save_offsets'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.save_offsets() IS
'Saves every partition''s earliest offset and high watermark in eventlog.partition_mark (run before pg_dump); returns the number of partitions';

CREATE FUNCTION eventlog.restore_offsets()
RETURNS TABLE (topic text, partition integer, restored_high_watermark bigint, high_watermark bigint)
AS 'MODULE_PATHNAME', 'eventlog_restore_offsets'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.restore_offsets() IS
'After a restore: raises each partition''s next offset to its saved high watermark and its groups'' committed offsets, so no offset is handed out twice';
