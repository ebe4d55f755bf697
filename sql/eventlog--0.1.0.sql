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

/* ---- Consumer groups ---- */

CREATE TABLE eventlog.consumer_group (
    grp             text PRIMARY KEY CHECK (grp <> ''),
    owner           name NOT NULL,
    generation      bigint NOT NULL DEFAULT 0,
    session_timeout interval CHECK (session_timeout > interval '0'),
    created_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE eventlog.consumer_group IS 'Consumer groups: written only by eventlog''s functions';

-- last_heartbeat changes on every call: no index on it, room on the page for HOT updates
CREATE TABLE eventlog.group_member (
    grp            text NOT NULL REFERENCES eventlog.consumer_group ON DELETE CASCADE,
    member         text NOT NULL CHECK (member <> ''),
    topics         text[] NOT NULL,
    joined_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    last_heartbeat timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (grp, member)
) WITH (fillfactor = 50);
COMMENT ON TABLE eventlog.group_member IS 'Members of consumer groups and the topics they consume';

CREATE TABLE eventlog.group_assignment (
    grp        text NOT NULL REFERENCES eventlog.consumer_group ON DELETE CASCADE,
    topic      text NOT NULL,
    partition  integer NOT NULL,
    member     text NOT NULL,
    generation bigint NOT NULL,
    PRIMARY KEY (grp, topic, partition)
);
COMMENT ON TABLE eventlog.group_assignment IS 'Which member of a group owns which partition';

/*
 * The hot spot: every commit of every group.  Updating one row per partition
 * would leave a chain of versions that a long-held snapshot keeps alive and
 * every lookup must walk.  Instead each commit inserts a row with a higher
 * seq and deletes the previous one by its exact key: the newest row is found
 * first by a backward index scan, whatever dead versions pile up behind it,
 * so commits stay cheap while a snapshot is held.  VACUUM reclaims the rest.
 */
CREATE SEQUENCE eventlog.group_offset_seq;
CREATE TABLE eventlog.group_offset (
    grp              text NOT NULL REFERENCES eventlog.consumer_group ON DELETE CASCADE,
    topic            text NOT NULL,
    partition        integer NOT NULL,
    seq              bigint NOT NULL,
    committed_offset bigint NOT NULL CHECK (committed_offset >= 0),
    committed_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (grp, topic, partition, seq)
);
COMMENT ON TABLE eventlog.group_offset IS
'Committed offsets, the next record each group reads in each partition: the row with the highest seq of a partition is current';

SELECT pg_catalog.pg_extension_config_dump('eventlog.consumer_group', '');
SELECT pg_catalog.pg_extension_config_dump('eventlog.group_member', '');
SELECT pg_catalog.pg_extension_config_dump('eventlog.group_assignment', '');
SELECT pg_catalog.pg_extension_config_dump('eventlog.group_offset', '');
SELECT pg_catalog.pg_extension_config_dump('eventlog.group_offset_seq', '');
GRANT SELECT ON eventlog.consumer_group, eventlog.group_member, eventlog.group_assignment,
                eventlog.group_offset TO PUBLIC;

/*
 * The group functions run their catalog queries with sequential and bitmap
 * scans off: the catalog tables are small, and a planner that picked a scan
 * over all row versions would make every commit slower while a long-held
 * snapshot keeps old versions alive.  Index scans read the newest first.
 */
CREATE FUNCTION eventlog.consume(grp text, topic text, max_records integer DEFAULT 100,
                                 member text DEFAULT NULL, commit boolean DEFAULT false,
                                 wait interval DEFAULT '0')
RETURNS TABLE (topic text, partition integer, "offset" bigint, key text, value bytea,
               headers jsonb, ts timestamptz)
AS 'MODULE_PATHNAME', 'eventlog_consume'
LANGUAGE C VOLATILE
SET enable_seqscan = off SET enable_bitmapscan = off;
COMMENT ON FUNCTION eventlog.consume(text, text, integer, text, boolean, interval) IS
'Reads records for a consumer group from the partitions assigned to member (all partitions without one), from the committed offsets; commit => true commits in this transaction; wait blocks until records arrive';

CREATE FUNCTION eventlog.commit(grp text, topic text, partition integer, "offset" bigint,
                                member text DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_commit'
LANGUAGE C VOLATILE
SET enable_seqscan = off SET enable_bitmapscan = off;
COMMENT ON FUNCTION eventlog.commit(text, text, integer, bigint, text) IS
'Commits a group''s position in a partition (the next offset to read); with member, only while it owns the partition';

CREATE FUNCTION eventlog.leave(grp text, member text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventlog_leave'
LANGUAGE C VOLATILE
SET enable_seqscan = off SET enable_bitmapscan = off;
COMMENT ON FUNCTION eventlog.leave(text, text) IS
'Removes a member from its group, handing its partitions to the other members at once';

CREATE FUNCTION eventlog.reset_offsets(grp text, topic text, "to" text)
RETURNS TABLE (partition integer, committed_offset bigint)
AS 'MODULE_PATHNAME', 'eventlog_reset_offsets'
LANGUAGE C VOLATILE
SET enable_seqscan = off SET enable_bitmapscan = off;
COMMENT ON FUNCTION eventlog.reset_offsets(text, text, text) IS
'Moves a group without live members to ''earliest'', ''latest'', an offset or a timestamp in every partition of a topic';

CREATE FUNCTION eventlog.reset_offsets(grp text, topic text, "to" bigint)
RETURNS TABLE (partition integer, committed_offset bigint)
LANGUAGE sql VOLATILE
AS $$ SELECT * FROM eventlog.reset_offsets(grp, topic, "to"::text) $$;
COMMENT ON FUNCTION eventlog.reset_offsets(text, text, bigint) IS
'Moves a group without live members to an offset (clamped to each partition''s records)';

CREATE FUNCTION eventlog.reset_offsets(grp text, topic text, "to" timestamptz)
RETURNS TABLE (partition integer, committed_offset bigint)
LANGUAGE sql VOLATILE
AS $$ SELECT * FROM eventlog.reset_offsets(grp, topic, "to"::text) $$;
COMMENT ON FUNCTION eventlog.reset_offsets(text, text, timestamptz) IS
'Moves a group without live members to the first record at or after a time in every partition';

CREATE FUNCTION eventlog.delete_group(grp text)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_delete_group'
LANGUAGE C VOLATILE
SET enable_seqscan = off SET enable_bitmapscan = off;
COMMENT ON FUNCTION eventlog.delete_group(text) IS 'Deletes a group without live members, with its committed offsets';

CREATE FUNCTION eventlog.alter_group(grp text, session_timeout interval)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_alter_group'
LANGUAGE C VOLATILE
SET enable_seqscan = off SET enable_bitmapscan = off;
COMMENT ON FUNCTION eventlog.alter_group(text, interval) IS
'Sets a group''s own session timeout (NULL: eventlog.session_timeout)';

CREATE FUNCTION eventlog.offset_for_time(topic text, partition integer, ts timestamptz)
RETURNS bigint
AS 'MODULE_PATHNAME', 'eventlog_offset_for_time'
LANGUAGE C STABLE;
COMMENT ON FUNCTION eventlog.offset_for_time(text, integer, timestamptz) IS
'First offset whose record is at or after a time (the high watermark if none), found without scanning the partition';

CREATE FUNCTION eventlog.session_timeout(group_timeout interval DEFAULT NULL)
RETURNS interval
AS 'MODULE_PATHNAME', 'eventlog_session_timeout_in_force'
LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION eventlog.session_timeout(interval) IS
'The session timeout in force: a group''s own, else the setting eventlog.session_timeout';

CREATE VIEW eventlog.groups AS
SELECT g.grp AS "group",
       g.owner,
       g.generation,
       eventlog.session_timeout(g.session_timeout) AS session_timeout,
       count(m.member) FILTER (WHERE m.last_heartbeat > clock_timestamp()
                               - eventlog.session_timeout(g.session_timeout)) AS live_members,
       CASE WHEN count(m.member) FILTER (WHERE m.last_heartbeat > clock_timestamp()
                               - eventlog.session_timeout(g.session_timeout)) > 0
            THEN 'stable' ELSE 'empty' END AS state,
       g.created_at
  FROM eventlog.consumer_group g
  LEFT JOIN eventlog.group_member m USING (grp)
 GROUP BY g.grp;
COMMENT ON VIEW eventlog.groups IS 'One row per consumer group: generation, session timeout, live members';

CREATE VIEW eventlog.members AS
SELECT m.grp AS "group",
       m.member,
       m.topics,
       (SELECT array_agg(a.topic || ':' || a.partition ORDER BY a.topic, a.partition)
          FROM eventlog.group_assignment a
         WHERE a.grp = m.grp AND a.member = m.member) AS partitions,
       g.generation,
       m.joined_at,
       m.last_heartbeat,
       m.last_heartbeat > clock_timestamp()
           - eventlog.session_timeout(g.session_timeout) AS live
  FROM eventlog.group_member m
  JOIN eventlog.consumer_group g USING (grp);
COMMENT ON VIEW eventlog.members IS 'One row per group member: its topics, assigned partitions (topic:partition), last heartbeat';

CREATE VIEW eventlog.lag AS
SELECT k.grp AS "group",
       k.topic,
       k.partition,
       a.member,
       o.committed_offset,
       s.earliest_offset,
       s.last_stable_offset,
       s.high_watermark,
       s.last_stable_offset - greatest(coalesce(o.committed_offset, s.earliest_offset), s.earliest_offset) AS lag
  FROM (SELECT grp, topic, partition FROM eventlog.group_offset
        UNION
        SELECT grp, topic, partition FROM eventlog.group_assignment) k
  JOIN eventlog.topic t ON t.topic = k.topic AND k.partition < t.partitions
  LEFT JOIN (SELECT DISTINCT ON (grp, topic, partition) grp, topic, partition, committed_offset
               FROM eventlog.group_offset
              ORDER BY grp, topic, partition, seq DESC) o
         ON o.grp = k.grp AND o.topic = k.topic AND o.partition = k.partition
  LEFT JOIN eventlog.group_assignment a
         ON a.grp = k.grp AND a.topic = k.topic AND a.partition = k.partition
 CROSS JOIN LATERAL eventlog.partition_state(
           format('eventlog_topics.%I', t.relname || '$' || k.partition)::regclass) s;
COMMENT ON VIEW eventlog.lag IS
'Per group and partition: committed offset, last stable offset and lag in records (records below the earliest retained offset are not counted)';

GRANT SELECT ON eventlog.groups, eventlog.members, eventlog.lag TO PUBLIC;

/* ---- The background worker ---- */

CREATE FUNCTION eventlog.start_worker()
RETURNS boolean
AS 'MODULE_PATHNAME', 'eventlog_worker_request'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.start_worker() IS
'Asks the launcher to start this database''s worker (notifications, expiry of silent members); false without shared_preload_libraries';

SELECT eventlog.start_worker();

/* ---- Change capture ---- */

CREATE FUNCTION eventlog.capture_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'eventlog_capture_trigger'
LANGUAGE C;
COMMENT ON FUNCTION eventlog.capture_trigger() IS
'Trigger installed by eventlog.capture(): produces each change as a Debezium-style event';

CREATE FUNCTION eventlog.capture(tbl regclass, topic text, key text[] DEFAULT NULL)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_capture'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.capture(regclass, text, text[]) IS
'Produces every INSERT, UPDATE, DELETE and TRUNCATE of a table to a topic in the same transaction, keyed by the primary key (or the key columns given)';

CREATE FUNCTION eventlog.uncapture(tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_uncapture'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.uncapture(regclass) IS 'Stops capturing a table''s changes';

CREATE VIEW eventlog.captures AS
SELECT t.tgrelid::regclass AS "table",
       convert_from(split_part(encode(t.tgargs, 'escape'), '\000', 1)::bytea, 'UTF8') AS topic
  FROM pg_catalog.pg_trigger t
 WHERE t.tgname = 'eventlog_capture';
COMMENT ON VIEW eventlog.captures IS 'Tables whose changes are captured, and their topics';
GRANT SELECT ON eventlog.captures TO PUBLIC;
