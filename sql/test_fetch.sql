-- fetch: reading a partition in offset order under read_committed rules
CREATE EXTENSION IF NOT EXISTS eventlog;
SELECT eventlog.create_topic('f', 2);
SELECT count(*) FROM eventlog.produce_batch('f', array(SELECT 'm' || i FROM generate_series(0, 9) i), partition => 0);

SELECT "offset", convert_from(value, 'UTF8') AS value FROM eventlog.fetch('f', 0, 0);
SELECT "offset" FROM eventlog.fetch('f', 0, 7);
SELECT "offset" FROM eventlog.fetch('f', 0, 3, max_records => 2);
SELECT topic, partition, "offset", key, headers, ts IS NOT NULL AS has_ts FROM eventlog.fetch('f', 0, 9);
-- at the high watermark: nothing yet, as a Kafka poll
SELECT count(*) FROM eventlog.fetch('f', 0, 10);
-- an empty partition
SELECT count(*) FROM eventlog.fetch('f', 1, 0);

-- aborted records are never returned; their offsets stay unused (gaps, as in Kafka)
BEGIN;
SELECT * FROM eventlog.produce('f', 'aborted'::text, partition => 0);
ROLLBACK;
SELECT * FROM eventlog.produce('f', 'after abort'::text, partition => 0);
SELECT "offset", convert_from(value, 'UTF8') AS value FROM eventlog.fetch('f', 0, 9);

-- a rolled-back savepoint drops its records; the transaction reads its own others
BEGIN;
SELECT * FROM eventlog.produce('f', 'kept'::text, partition => 1);
SAVEPOINT s;
SELECT * FROM eventlog.produce('f', 'rolled back'::text, partition => 1);
ROLLBACK TO SAVEPOINT s;
SELECT * FROM eventlog.produce('f', 'kept too'::text, partition => 1);
SELECT "offset", convert_from(value, 'UTF8') AS value FROM eventlog.fetch('f', 1, 0);
COMMIT;
SELECT "offset", convert_from(value, 'UTF8') AS value FROM eventlog.fetch('f', 1, 0);

-- offsets before the earliest retained record read from the earliest
TRUNCATE eventlog_topics."f$1";
SELECT * FROM eventlog.produce('f', 'after truncate'::text, partition => 1);
SELECT "offset", convert_from(value, 'UTF8') AS value FROM eventlog.fetch('f', 1, 0);
SELECT earliest_offset, high_watermark, last_stable_offset FROM eventlog.partitions WHERE topic = 'f' AND partition = 1;

-- bad input
SELECT * FROM eventlog.fetch('f', 0, -1);
SELECT * FROM eventlog.fetch('f', 0, 12);
SELECT * FROM eventlog.fetch('f', 0, 13);
SELECT * FROM eventlog.fetch('f', 2, 0);
SELECT * FROM eventlog.fetch('f', -1, 0);
SELECT * FROM eventlog.fetch('f', 0, 0, 0);
SELECT * FROM eventlog.fetch('f', 0, 0, -5);
SELECT * FROM eventlog.fetch('nosuch', 0, 0);
SELECT * FROM eventlog.fetch(NULL, 0, 0);
SELECT * FROM eventlog.fetch('f', NULL, 0);
SELECT * FROM eventlog.fetch('f', 0, NULL);
SELECT * FROM eventlog.fetch('f', 0, 0, NULL);
-- the session goes on working after every error
SELECT count(*) FROM eventlog.fetch('f', 0, 0);

-- seeks forward, back and within a page in a partition of many pages: each read starts
-- at the offset asked for, wherever the previous read of the session ended
SELECT eventlog.create_topic('pages', 1);
SELECT count(*) FROM eventlog.produce_batch('pages',
  array(SELECT 'r' || i || repeat('.', 200) FROM generate_series(0, 999) i));
SELECT sum(size_bytes) / 8192 > 20 AS many_pages FROM eventlog.topic_segments('pages');
SELECT o AS asked, f."offset", split_part(convert_from(f.value, 'UTF8'), '.', 1) AS value
  FROM unnest(ARRAY[500, 501, 537, 538, 100, 999, 0, 998, 250, 251, 900, 1]) WITH ORDINALITY AS u(o, n),
  LATERAL eventlog.fetch('pages', 0, o, 1) f ORDER BY n;
SELECT count(*), min("offset"), max("offset") FROM eventlog.fetch('pages', 0, 480, 100);
SELECT count(*), min("offset"), max("offset") FROM eventlog.fetch('pages', 0, 580, 100);
SELECT eventlog.drop_topic('pages');

-- seeks where record sizes differ widely (small records, then large incompressible ones,
-- then small again), in a scattered order: every offset is found
SELECT eventlog.create_topic('skew', 1);
SELECT count(*) FROM eventlog.produce_batch('skew', array(SELECT 's' || i FROM generate_series(0, 1999) i));
SELECT count(*) FROM eventlog.produce_batch('skew',
  array(SELECT 'l' || i || '-' || (SELECT string_agg(md5(i::text || '/' || j::text), '') FROM generate_series(1, 60) j)
          FROM generate_series(2000, 2099) i));
SELECT count(*) FROM eventlog.produce_batch('skew', array(SELECT 's' || i FROM generate_series(2100, 4099) i));
SELECT count(*) AS found,
       count(*) FILTER (WHERE f."offset" = s.o AND convert_from(f.value, 'UTF8') ~ ('^[sl]' || s.o || '([^0-9]|$)')) AS right
  FROM (SELECT o FROM generate_series(0, 4099) o ORDER BY md5(o::text)) s,
  LATERAL eventlog.fetch('skew', 0, s.o, 1) f;
SELECT eventlog.drop_topic('skew');

-- a page of many runs (one per transaction, some rolled back, values of 1- and 4-byte
-- varlena headers): a read starting at any offset returns every later record, intact
SELECT eventlog.create_topic('runs', 1);
DO $$
BEGIN
  FOR i IN 0..59 LOOP
    IF i = 40 THEN
      PERFORM eventlog.produce_batch('runs', ARRAY['gone1', 'gone2']::text[]);
      ROLLBACK;
    END IF;
    PERFORM eventlog.produce('runs', repeat(chr(97 + i % 26), (i * 37) % 300) || '#' || i, 'k' || i);
    COMMIT;
  END LOOP;
END $$;
SELECT count(*) AS records, min("offset") FILTER (WHERE "offset" >= 40) AS first_after_rollback
  FROM eventlog.fetch('runs', 0, 0, 100);
SELECT count(*) AS rows_read,
       count(*) FILTER (WHERE convert_from(f.value, 'UTF8') =
                              repeat(chr(97 + k % 26), (k * 37) % 300) || '#' || k
                          AND f.key = 'k' || k) AS intact
  FROM generate_series(0, 62) o,
  LATERAL eventlog.fetch('runs', 0, o, 100) f,
  LATERAL (SELECT CASE WHEN f."offset" < 40 THEN f."offset" ELSE f."offset" - 2 END::int AS k) x;

-- result rows live in memory of the session that is emptied when no result is in use:
-- two results read in turn in one statement, a cursor's result across other statements,
-- a statement that fails after its fetch; and the memory returns to its first block
SELECT count(*) AS pairs, count(*) FILTER (WHERE a.value = b.value AND a.key = b.key) AS same
  FROM eventlog.fetch('runs', 0, 0, 100) a JOIN eventlog.fetch('runs', 0, 10, 100) b USING ("offset");
BEGIN;
DECLARE c CURSOR FOR SELECT "offset", key, length(value) AS len FROM eventlog.fetch('runs', 0, 0, 100);
FETCH 2 FROM c;
SELECT count(*), min(key) FROM eventlog.fetch('runs', 0, 30, 100);
FETCH 2 FROM c;
COMMIT;
SELECT "offset", 1 / ("offset" - 5) FROM eventlog.fetch('runs', 0, 0, 100);
SELECT count(*) FROM eventlog.fetch('runs', 0, 0, 100);
SELECT count(*) FROM eventlog.produce_batch('runs', array(SELECT repeat('b', 300) FROM generate_series(1, 3000)));
SELECT count(*), sum(length(value)) FROM eventlog.fetch('runs', 0, 62, 5000);
SELECT total_bytes AS result_memory_after FROM pg_backend_memory_contexts WHERE name = 'eventlog result rows';
SELECT eventlog.drop_topic('runs');

-- a read that ends on its first page touches no other block; one that goes on to the
-- next page reads it and pins the one after it, whose lines it asks for while it returns
-- the records of the page before (read-ahead): two blocks more
SELECT eventlog.create_topic('ahead', 1);
SELECT count(*) FROM eventlog.produce_batch('ahead', array(SELECT repeat('x', 100) || i FROM generate_series(1, 2000) i));
SET stats_fetch_consistency = none;
CREATE FUNCTION pg_temp.ahead_blocks() RETURNS bigint LANGUAGE sql AS $$
  SELECT sum(heap_blks_hit + heap_blks_read) FROM pg_statio_all_tables
   WHERE schemaname = 'eventlog_topics' AND relname LIKE 'ahead$%';
$$;
SELECT max("offset") AS last_of_page FROM eventlog_topics.ahead WHERE (ctid::text::point)[0] = 10 \gset
SELECT pg_stat_force_next_flush();
SELECT pg_temp.ahead_blocks() AS before \gset
SELECT count(*) FROM eventlog.fetch('ahead', 0, :last_of_page, 1);
SELECT pg_stat_force_next_flush();
SELECT pg_temp.ahead_blocks() - :before AS one_page \gset
SELECT pg_temp.ahead_blocks() AS before \gset
SELECT count(*) FROM eventlog.fetch('ahead', 0, :last_of_page, 2);
SELECT pg_stat_force_next_flush();
SELECT pg_temp.ahead_blocks() - :before - :one_page AS more_blocks_for_two_pages;
RESET stats_fetch_consistency;
SELECT eventlog.drop_topic('ahead');
