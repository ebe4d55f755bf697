-- produce and produce_batch: values, keys, headers, partitioning, limits
CREATE EXTENSION IF NOT EXISTS eventlog;
SELECT eventlog.create_topic('prod', 4);

-- Kafka's murmur2 test vectors (signed 32-bit results)
SELECT k, eventlog.murmur2(k)
  FROM unnest(ARRAY['21', 'foobar', 'a-little-bit-long-string', 'a-little-bit-longer-string', 'abc']) AS k;
-- the partition a Kafka client picks: (murmur2 & 0x7fffffff) % n
SELECT k, eventlog.partition_for_key(k, 4) AS p4, eventlog.partition_for_key(k, 7) AS p7
  FROM unnest(ARRAY['21', 'foobar', 'abc', 'user-1', 'user-2']) AS k;
SELECT eventlog.partition_for_key('x', 0);

-- one record of each value type; text and jsonb are stored as their UTF-8 text
SELECT * FROM eventlog.produce('prod', 'plain text'::text, partition => 0);
SELECT * FROM eventlog.produce('prod', '{"a": 1, "b": [true, null]}'::jsonb, partition => 0);
SELECT * FROM eventlog.produce('prod', '\x00ff10'::bytea, partition => 0);
SELECT * FROM eventlog.produce('prod', NULL::bytea, 'tombstone-key', partition => 0);
SELECT "offset", key, value, convert_from(value, 'UTF8') AS text FROM eventlog.fetch('prod', 0, 0) WHERE "offset" < 2;
SELECT "offset", key, value FROM eventlog.fetch('prod', 0, 2);

-- keyed records land where the key hashes, every time
SELECT (eventlog.produce('prod', 'v'::text, key => k)).partition = eventlog.partition_for_key(k, 4) AS same
  FROM unnest(ARRAY['user-1', 'user-2', 'user-3', 'user-1', 'user-1']) AS k;
-- per-key order: one key's records are read in the order produced
SELECT count(*) FROM (SELECT eventlog.produce('prod', 'e' || i, key => 'user-7') FROM generate_series(1, 5) i) p;
SELECT array_agg(convert_from(value, 'UTF8') ORDER BY "offset") AS user7
  FROM eventlog.fetch('prod', eventlog.partition_for_key('user-7', 4), 0, 1000) WHERE key = 'user-7';

-- key-less records are spread round robin over the partitions
SELECT count(DISTINCT partition) AS partitions_used
  FROM (SELECT (eventlog.produce('prod', 'spread'::text)).partition FROM generate_series(1, 8)) s;

-- headers: a JSON object of strings
SELECT * FROM eventlog.produce('prod', 'with headers'::text, 'h', '{"trace-id": "abc", "empty": null}', 1);
SELECT key, headers FROM eventlog.fetch('prod', 1, 0) WHERE key = 'h';
SELECT eventlog.produce('prod', 'x'::text, headers => '[1, 2]');
SELECT eventlog.produce('prod', 'x'::text, headers => '"scalar"');
SELECT eventlog.produce('prod', 'x'::text, headers => '{"n": 1}');
SELECT eventlog.produce('prod', 'x'::text, headers => '{"o": {"nested": "x"}}');

-- bad input
SELECT eventlog.produce('nosuch', 'x'::text);
SELECT eventlog.produce(NULL, 'x'::text);
SELECT eventlog.produce('prod', 'x'::text, partition => 4);
SELECT eventlog.produce('prod', 'x'::text, partition => -1);
SELECT eventlog.produce('bad name', 'x'::text);
SELECT eventlog.produce('prod', 42);
-- produce and produce_batch return eventlog.record_metadata, described once per call
-- site: many calls in one statement each get their own row
SELECT eventlog.create_topic('prod.row');
SELECT pg_typeof(eventlog.produce('prod.row', 'typed'::text));
SELECT g, p.partition, p."offset"
  FROM generate_series(1, 3) g, LATERAL eventlog.produce('prod.row', 'lateral ' || g) p ORDER BY g;
SELECT "offset", convert_from(value, 'UTF8') AS value FROM eventlog.fetch('prod.row', 0, 0);
-- a row type altered by hand is refused, not misread
BEGIN;
ALTER TYPE eventlog.record_metadata ADD ATTRIBUTE extra text;
SAVEPOINT s;
SELECT * FROM eventlog.produce('prod.row', 'x'::text);
ROLLBACK TO SAVEPOINT s;
SELECT * FROM eventlog.produce_batch('prod.row', ARRAY['x', 'y']);
ROLLBACK;
SELECT count(*) AS still_four FROM eventlog.fetch('prod.row', 0, 0);
SELECT eventlog.drop_topic('prod.row');
-- a read-only transaction (and so a standby) cannot produce
BEGIN READ ONLY;
SELECT eventlog.produce('prod', 'x'::text);
ROLLBACK;
BEGIN READ ONLY;
SELECT eventlog.produce_batch('prod', ARRAY['x']);
ROLLBACK;

-- the maximum record size, as Kafka's message.max.bytes
SHOW eventlog.max_record_bytes;
SET eventlog.max_record_bytes = 1000;
SELECT eventlog.produce('prod', repeat('x', 1001)::text, partition => 2);
SELECT eventlog.produce('prod', repeat('x', 990)::text, key => repeat('k', 20), partition => 2);
SELECT * FROM eventlog.produce('prod', repeat('x', 1000)::text, partition => 2);
RESET eventlog.max_record_bytes;
-- large records are compressed or moved out of line, and come back intact
SELECT * FROM eventlog.produce('prod', repeat('large ', 100000)::text, 'large', partition => 2);
SELECT * FROM eventlog.produce('prod', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 20000) i)::text, 'random', partition => 2);
SELECT "offset", key, length(value), md5(value) = md5(convert_to(repeat('large ', 100000), 'UTF8')) AS large_ok
  FROM eventlog.fetch('prod', 2, 0) WHERE key = 'large';
SELECT "offset", key, length(value), md5(value) = md5(convert_to((SELECT string_agg(md5(i::text), '') FROM generate_series(1, 20000) i), 'UTF8')) AS random_ok
  FROM eventlog.fetch('prod', 2, 0) WHERE key = 'random';
SELECT eventlog.produce('prod', repeat('x', 1048577)::text);

-- produce_batch: one row per record, in input order
SELECT eventlog.create_topic('batch', 3);
SELECT * FROM eventlog.produce_batch('batch', ARRAY['a', 'b', 'c']::text[], partition => 1);
SELECT * FROM eventlog.produce_batch('batch', ARRAY['k1', 'k2', 'k3', 'k1']::text[], keys => ARRAY['k1', 'k2', 'k3', 'k1']);
SELECT partition = eventlog.partition_for_key(k, 3) AS keyed_ok
  FROM eventlog.produce_batch('batch', ARRAY['1', '2', '3']::text[], keys => ARRAY['x', 'y', 'z']) WITH ORDINALITY AS b(partition, "offset", n)
  JOIN unnest(ARRAY['x', 'y', 'z']) WITH ORDINALITY AS k(k, n) USING (n);
-- key-less records of one batch stay on one partition (sticky per batch)
SELECT eventlog.create_topic('sticky', 3);
SELECT count(DISTINCT partition) AS partitions_in_batch, count(*) AS records
  FROM eventlog.produce_batch('sticky', array_fill('s'::text, ARRAY[50]));
SELECT * FROM eventlog.produce_batch('batch', ARRAY['{"x":1}', '[2]']::jsonb[], partition => 0);
SELECT * FROM eventlog.produce_batch('batch', ARRAY['\x01', NULL]::bytea[], headers => ARRAY['{"a":"b"}', NULL]::jsonb[], partition => 0);
SELECT "offset", key, value, headers FROM eventlog.fetch('batch', 0, 0);
SELECT * FROM eventlog.produce_batch('batch', ARRAY[]::text[]);
SELECT * FROM eventlog.produce_batch('batch', NULL::text[]);
SELECT * FROM eventlog.produce_batch('batch', ARRAY['a', 'b']::text[], keys => ARRAY['k']);
SELECT * FROM eventlog.produce_batch('batch', ARRAY['a', 'b']::text[], headers => ARRAY['{}']::jsonb[]);
SELECT * FROM eventlog.produce_batch('batch', ARRAY[['a', 'b'], ['c', 'd']]::text[]);
SELECT * FROM eventlog.produce_batch('batch', ARRAY['a']::text[], partition => 3);
SELECT * FROM eventlog.produce_batch('batch', ARRAY['a']::text[], headers => ARRAY['[]']::jsonb[]);
SELECT * FROM eventlog.produce_batch('nosuch', ARRAY['a']::text[]);
-- a batch that fails leaves nothing behind
SELECT high_watermark FROM eventlog.partitions WHERE topic = 'batch' AND partition = 2;
SELECT * FROM eventlog.produce_batch('batch', ARRAY['ok', repeat('x', 2000000)]::text[], partition => 2);
SELECT high_watermark FROM eventlog.partitions WHERE topic = 'batch' AND partition = 2;
-- a batch spanning many pages keeps offsets dense and in input order
SELECT count(*) AS records, min("offset"), max("offset"), count(DISTINCT "offset" - n) = 1 AS dense_in_order
  FROM eventlog.produce_batch('batch', array(SELECT 'r' || i FROM generate_series(1, 20000) i), partition => 2)
       WITH ORDINALITY AS b(partition, "offset", n);
SELECT count(*) AS fetched, min("offset"), max("offset")
  FROM eventlog.fetch('batch', 2, 0, 100000);
