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

/* ---- Mirrors: topics pulled from another eventlog server ---- */

CREATE TABLE eventlog.mirror (
    name          text PRIMARY KEY CHECK (name <> ''),
    conninfo      text NOT NULL,
    topics        text[] NOT NULL CHECK (cardinality(topics) > 0),
    groups        boolean NOT NULL DEFAULT false,
    paused        boolean NOT NULL DEFAULT false,
    state         text NOT NULL DEFAULT 'starting',
    last_error    text,
    errors        integer NOT NULL DEFAULT 0,
    retry_at      timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE eventlog.mirror IS
'Mirrors: written only by eventlog''s functions and worker; readable by superusers only, as conninfo may hold a password';
REVOKE ALL ON eventlog.mirror FROM PUBLIC;

-- written in the same transaction as the mirrored records: exactly-once, resumable
CREATE TABLE eventlog.mirror_progress (
    mirror                text NOT NULL REFERENCES eventlog.mirror ON DELETE CASCADE,
    topic                 text NOT NULL,
    partition             integer NOT NULL,
    next_offset           bigint NOT NULL,
    source_high_watermark bigint,
    updated_at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (mirror, topic, partition)
);
COMMENT ON TABLE eventlog.mirror_progress IS 'How far each mirror has copied each partition';
SELECT pg_catalog.pg_extension_config_dump('eventlog.mirror', '');
SELECT pg_catalog.pg_extension_config_dump('eventlog.mirror_progress', '');
GRANT SELECT ON eventlog.mirror_progress TO PUBLIC;

CREATE FUNCTION eventlog.create_mirror(name text, conninfo text, topics text[], groups boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_create_mirror'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.create_mirror(text, text, text[], boolean) IS
'Makes the worker copy topics from another eventlog server with the same partitions and offsets (and the groups'' committed offsets with groups => true); superuser only';

CREATE FUNCTION eventlog.drop_mirror(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_drop_mirror'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.drop_mirror(text) IS 'Stops and forgets a mirror (the copied records stay)';

CREATE FUNCTION eventlog.pause_mirror(name text, paused boolean DEFAULT true)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_pause_mirror'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.pause_mirror(text, boolean) IS 'Pauses a mirror (paused => false resumes it)';

CREATE FUNCTION eventlog.resume_mirror(name text)
RETURNS void
LANGUAGE sql VOLATILE
AS $$ SELECT eventlog.pause_mirror(name, false) $$;
COMMENT ON FUNCTION eventlog.resume_mirror(text) IS 'Resumes a paused mirror';

CREATE FUNCTION eventlog.mirror_source(conninfo text)
RETURNS text
AS 'MODULE_PATHNAME', 'eventlog_mirror_source'
LANGUAGE C IMMUTABLE STRICT;
COMMENT ON FUNCTION eventlog.mirror_source(text) IS 'A connection string with its password hidden';

CREATE VIEW eventlog.mirrors AS
SELECT m.name,
       eventlog.mirror_source(m.conninfo) AS source,
       m.topics,
       m.groups,
       CASE WHEN m.paused THEN 'paused' ELSE m.state END AS state,
       m.last_error,
       m.errors,
       m.retry_at,
       (SELECT sum(greatest(p.source_high_watermark - p.next_offset, 0))
          FROM eventlog.mirror_progress p WHERE p.mirror = m.name) AS lag,
       (SELECT max(p.updated_at) FROM eventlog.mirror_progress p WHERE p.mirror = m.name) AS last_progress
  FROM eventlog.mirror m;
COMMENT ON VIEW eventlog.mirrors IS
'One row per mirror: source (password hidden), state, last error, lag in records behind the source';
GRANT SELECT ON eventlog.mirrors TO PUBLIC;
