/* eventlog 0.1.0 -> 0.2.0: topic settings can be changed after creation */

\echo Use "ALTER EXTENSION eventlog UPDATE TO '0.2.0'" to load this file. \quit

CREATE FUNCTION eventlog.alter_topic(topic text, retention interval, retention_bytes bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'eventlog_alter_topic'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.alter_topic(text, interval, bigint) IS
'Sets a topic''s retention by time and by size (NULL: no limit); owner only';
