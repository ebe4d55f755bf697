/* eventlog 0.6.0 -> 0.7.0: who holds a partition's readers back, and until when */

\echo Use "ALTER EXTENSION eventlog UPDATE TO '0.7.0'" to load this file. \quit

CREATE FUNCTION eventlog.transaction_holder(xid xid, OUT top_xid xid, OUT pid integer,
                                            OUT since timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'eventlog_transaction_holder'
LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION eventlog.transaction_holder(xid) IS
'For a running transaction: its top-level transaction, the process running it (NULL when prepared) and when it began producing records (NULL where not known)';

/*
 * eventlog.partitions gains three columns, at its end so that the view is
 * replaced in place: the process of the transaction holding readers back,
 * since when it holds them, and when eventlog.transaction_timeout ends it
 * (NULL for a prepared transaction, which is never ended, or with the
 * setting off).
 */
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
         WHERE tree.isleaf) AS segments,
       h.pid AS held_by_pid,
       coalesce(h.since,
                (SELECT px.prepared FROM pg_catalog.pg_prepared_xacts px
                  WHERE px.transaction = h.top_xid)) AS held_since,
       CASE WHEN h.pid IS NOT NULL AND h.since IS NOT NULL
             AND pg_catalog.current_setting('eventlog.transaction_timeout', true) NOT IN ('0', '')
            THEN h.since + pg_catalog.current_setting('eventlog.transaction_timeout', true)::interval
       END AS held_until
  FROM eventlog.topic t
 CROSS JOIN LATERAL generate_series(0, t.partitions - 1) AS g(partition)
 CROSS JOIN LATERAL (SELECT g.partition,
                            format('eventlog_topics.%I', t.relname || '$' || g.partition)::regclass AS relation) p
 CROSS JOIN LATERAL eventlog.partition_state(p.relation) s
  LEFT JOIN LATERAL eventlog.transaction_holder(s.held_by) h ON true;

CREATE FUNCTION eventlog.verify(topic text)
RETURNS TABLE (partition integer, segment regclass, block bigint, problem text)
AS 'MODULE_PATHNAME', 'eventlog_verify'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.verify(text) IS
'Checks every page and metapage of a topic against the format''s invariants (magic and version, offsets, runs, record lengths, segment bounds); one row per problem found, none for a sound topic';
