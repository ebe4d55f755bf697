-- The eventlog table access method as SQL sees it
CREATE EXTENSION IF NOT EXISTS eventlog;
SELECT amname, amtype FROM pg_am WHERE amname = 'eventlog';

-- a standalone eventlog relation must have the row shape of a topic
CREATE TABLE wrong (a int) USING eventlog;
CREATE TABLE wrong2 (partition int, "offset" bigint, key text, value text, headers jsonb, ts timestamptz) USING eventlog;
CREATE UNLOGGED TABLE unlogged (partition int, "offset" bigint, key text, value bytea, headers jsonb, ts timestamptz) USING eventlog;
CREATE TABLE log (partition int, "offset" bigint, key text, value bytea, headers jsonb, ts timestamptz) USING eventlog;

-- INSERT assigns offsets; RETURNING shows them
INSERT INTO log (partition, key, value) VALUES (0, 'a', 'one'), (0, 'b', 'two') RETURNING partition, "offset", key, value, ts IS NOT NULL AS ts_set;
INSERT INTO log (partition, value, ts) VALUES (0, 'three', '2020-01-01 00:00:00+00') RETURNING "offset", ts;
-- an explicit offset may skip ahead (logs copied from elsewhere have gaps), never go back
INSERT INTO log (partition, "offset", value) VALUES (0, 10, 'ten') RETURNING "offset";
INSERT INTO log (partition, "offset", value) VALUES (0, 5, 'five');
INSERT INTO log (partition, "offset", value) VALUES (0, -1, 'negative');
INSERT INTO log (partition, value) VALUES (0, 'eleven') RETURNING "offset";
-- one relation holds one partition
INSERT INTO log (partition, value) VALUES (1, 'other');
INSERT INTO log (value) VALUES ('no partition');
-- COPY in and out
COPY log (partition, key, value) FROM stdin;
0	c1	\\x0102
0	c2	\\x0304
\.
COPY (SELECT partition, "offset", key, value FROM log ORDER BY "offset") TO stdout;
SELECT partition, "offset", key, value FROM log;

-- append-only: no UPDATE, DELETE, row locks, ON CONFLICT
UPDATE log SET key = 'changed';
DELETE FROM log;
DELETE FROM log WHERE "offset" = 0;
SELECT * FROM log FOR UPDATE;
SELECT * FROM log FOR SHARE;
MERGE INTO log l USING (SELECT 0 AS o) s ON l."offset" = s.o WHEN MATCHED THEN DELETE;
CREATE UNIQUE INDEX log_key ON log (key);
INSERT INTO log (partition, key, value) VALUES (0, 'a', 'dup') ON CONFLICT (key) DO NOTHING;
INSERT INTO log (partition, key, value) VALUES (0, 'new', 'x') ON CONFLICT (key) DO NOTHING;
INSERT INTO log (partition, key, value) VALUES (0, 'a', 'dup');
DROP INDEX log_key;
-- rewriting is refused: there is never dead space to reclaim
VACUUM FULL log;
SELECT * FROM log TABLESAMPLE SYSTEM (50);
-- backward scans are not supported
BEGIN;
DECLARE c SCROLL CURSOR FOR SELECT "offset" FROM log;
FETCH NEXT FROM c;
FETCH PRIOR FROM c;
ROLLBACK;

-- row movement between partitions of a topic is refused
SELECT eventlog.create_topic('am', 2);
SELECT * FROM eventlog.produce('am', 'x'::text, partition => 0);
UPDATE eventlog_topics.am SET partition = 1;
UPDATE eventlog_topics.am SET key = 'k';
DELETE FROM eventlog_topics.am;

-- TRUNCATE empties a partition, and offsets continue where they were
SELECT max("offset") FROM log;
TRUNCATE log;
SELECT count(*) FROM log;
INSERT INTO log (partition, value) VALUES (0, 'after') RETURNING "offset";
BEGIN;
TRUNCATE log;
INSERT INTO log (partition, value) VALUES (0, 'same transaction') RETURNING "offset";
TRUNCATE log;
INSERT INTO log (partition, value) VALUES (0, 'twice') RETURNING "offset";
COMMIT;
SELECT "offset", value FROM log;

-- VACUUM (freezing), ANALYZE
INSERT INTO log (partition, value) SELECT 0, convert_to('v' || i, 'UTF8') FROM generate_series(1, 5000) i;
VACUUM (FREEZE) log;
SELECT age(relfrozenxid) < 2 AS frozen, reltuples FROM pg_class WHERE relname = 'log';
ANALYZE log;
SELECT reltuples FROM pg_class WHERE relname = 'log';
SELECT count(*), min("offset"), max("offset") FROM log;

-- indexes: btree and BRIN, with index, bitmap and offset range scans
CREATE INDEX log_key_idx ON log (key);
CLUSTER log USING log_key_idx;
INSERT INTO log (partition, key, value) VALUES (0, 'needle', 'found');
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT "offset", value FROM log WHERE key = 'needle';
SELECT "offset", value FROM log WHERE key = 'needle';
SET enable_indexscan = off;
EXPLAIN (COSTS OFF) SELECT "offset", value FROM log WHERE key = 'needle';
SELECT "offset", value FROM log WHERE key = 'needle';
RESET enable_indexscan;
RESET enable_seqscan;
CREATE INDEX log_offset_brin ON log USING brin ("offset") WITH (pages_per_range = 1);
SET eventlog.enable_offsetscan = off;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM log WHERE "offset" BETWEEN 100 AND 110;
SELECT count(*) FROM log WHERE "offset" BETWEEN 100 AND 110;
RESET enable_seqscan;
RESET eventlog.enable_offsetscan;
CREATE INDEX CONCURRENTLY log_conc ON log (key);
DROP INDEX log_key_idx, log_offset_brin;

-- offset ranges in ad-hoc SQL: a binary search over pages, no index needed
EXPLAIN (COSTS OFF) SELECT "offset" FROM log WHERE "offset" BETWEEN 100 AND 110;
SELECT array_agg("offset") FROM log WHERE "offset" BETWEEN 100 AND 110;
SELECT array_agg("offset") FROM log WHERE "offset" > 5012;
SELECT array_agg("offset") FROM log WHERE 16 > "offset";
SELECT array_agg("offset") FROM log WHERE "offset" = 4000;
SELECT array_agg("offset") FROM log WHERE "offset" < 0;
SELECT array_agg("offset") FROM log WHERE "offset" >= 9223372036854775807;
PREPARE r(bigint, bigint) AS SELECT array_agg("offset") FROM log WHERE "offset" >= $1 AND "offset" < $2;
EXECUTE r(2000, 2003);
EXECUTE r(3000, 3002);
-- through the topic relation, with partition pruning
SELECT count(*) FROM eventlog.produce_batch('am', array(SELECT 'r' || i FROM generate_series(1, 3000) i), partition => 1);
EXPLAIN (COSTS OFF) SELECT "offset" FROM eventlog_topics.am WHERE partition = 1 AND "offset" BETWEEN 2000 AND 2002;
SELECT partition, "offset", convert_from(value, 'UTF8') FROM eventlog_topics.am WHERE partition = 1 AND "offset" BETWEEN 2000 AND 2002;

-- AFTER ROW triggers see inserted records (they re-read them by TID)
CREATE TABLE seen (o bigint, v bytea);
CREATE FUNCTION remember() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO seen VALUES (NEW."offset", NEW.value); RETURN NULL; END $$;
CREATE TRIGGER remember AFTER INSERT ON log FOR EACH ROW EXECUTE FUNCTION remember();
INSERT INTO log (partition, value) VALUES (0, 'triggered');
SELECT * FROM seen;

-- a relation with data that is not an eventlog relation cannot be read as one
SELECT * FROM eventlog.partition_state('seen');
SELECT earliest_offset, high_watermark, last_stable_offset FROM eventlog.partition_state('log');
