/* eventlog 0.4.0 -> 0.5.0: produce() and produce_batch() return a named row type */

\echo Use "ALTER EXTENSION eventlog UPDATE TO '0.5.0'" to load this file. \quit

/*
 * produce() and produce_batch() returned rows described by OUT parameters.
 * PostgreSQL builds such a row description anew from pg_proc wherever it
 * needs one: three times for every statement that calls them in FROM (parse
 * analysis, executor start, the call itself), a twentieth of the cost of
 * producing one record in its own transaction.  A named composite type is
 * described once by the type cache.  The rows are the same: (partition
 * integer, "offset" bigint).
 *
 * A function's result type cannot be changed in place, so the six functions
 * are made anew.  As with PostgreSQL's own extensions, privileges
 * granted or revoked by hand on them return to the default (EXECUTE for
 * PUBLIC); who may produce to a topic is decided by the topic's INSERT
 * privilege, which is unchanged.
 */
CREATE TYPE eventlog.record_metadata AS (partition integer, "offset" bigint);
COMMENT ON TYPE eventlog.record_metadata IS
'Where produce() put a record: its partition and offset (Kafka''s RecordMetadata)';

DROP FUNCTION eventlog.produce(text, bytea, text, jsonb, integer);
DROP FUNCTION eventlog.produce(text, text, text, jsonb, integer);
DROP FUNCTION eventlog.produce(text, jsonb, text, jsonb, integer);

CREATE FUNCTION eventlog.produce(topic text, value bytea, key text DEFAULT NULL,
                                 headers jsonb DEFAULT NULL, partition integer DEFAULT NULL)
RETURNS eventlog.record_metadata
AS 'MODULE_PATHNAME', 'eventlog_produce_bytea'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce(text, bytea, text, jsonb, integer) IS
'Appends one record to a topic in the current transaction; returns its partition and offset';

CREATE FUNCTION eventlog.produce(topic text, value text, key text DEFAULT NULL,
                                 headers jsonb DEFAULT NULL, partition integer DEFAULT NULL)
RETURNS eventlog.record_metadata
AS 'MODULE_PATHNAME', 'eventlog_produce_text'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce(text, text, text, jsonb, integer) IS
'Appends one record whose value is the UTF-8 text given; returns its partition and offset';

CREATE FUNCTION eventlog.produce(topic text, value jsonb, key text DEFAULT NULL,
                                 headers jsonb DEFAULT NULL, partition integer DEFAULT NULL)
RETURNS eventlog.record_metadata
AS 'MODULE_PATHNAME', 'eventlog_produce_jsonb'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce(text, jsonb, text, jsonb, integer) IS
'Appends one record whose value is the JSON text of the value given; returns its partition and offset';

DROP FUNCTION eventlog.produce_batch(text, bytea[], text[], jsonb[], integer);
DROP FUNCTION eventlog.produce_batch(text, text[], text[], jsonb[], integer);
DROP FUNCTION eventlog.produce_batch(text, jsonb[], text[], jsonb[], integer);

CREATE FUNCTION eventlog.produce_batch(topic text, "values" bytea[], keys text[] DEFAULT NULL,
                                       headers jsonb[] DEFAULT NULL, partition integer DEFAULT NULL)
RETURNS SETOF eventlog.record_metadata
AS 'MODULE_PATHNAME', 'eventlog_produce_batch_bytea'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce_batch(text, bytea[], text[], jsonb[], integer) IS
'Appends many records at once; returns one (partition, offset) row per record, in input order';

CREATE FUNCTION eventlog.produce_batch(topic text, "values" text[], keys text[] DEFAULT NULL,
                                       headers jsonb[] DEFAULT NULL, partition integer DEFAULT NULL)
RETURNS SETOF eventlog.record_metadata
AS 'MODULE_PATHNAME', 'eventlog_produce_batch_text'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce_batch(text, text[], text[], jsonb[], integer) IS
'Appends many text records at once; returns one (partition, offset) row per record, in input order';

CREATE FUNCTION eventlog.produce_batch(topic text, "values" jsonb[], keys text[] DEFAULT NULL,
                                       headers jsonb[] DEFAULT NULL, partition integer DEFAULT NULL)
RETURNS SETOF eventlog.record_metadata
AS 'MODULE_PATHNAME', 'eventlog_produce_batch_jsonb'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION eventlog.produce_batch(text, jsonb[], text[], jsonb[], integer) IS
'Appends many JSON records at once; returns one (partition, offset) row per record, in input order';
