-- Segments and retention
CREATE EXTENSION IF NOT EXISTS eventlog;

-- a partition is stored in segments of segment_records offsets
SELECT eventlog.create_topic('ret', 1, segment_records => 10);
SELECT segment_records FROM eventlog.topics WHERE topic = 'ret';
SELECT count(*) FROM eventlog.produce_batch('ret', (SELECT array_agg('v' || i) FROM generate_series(0, 24) i));
-- the producer made the segments it needed
SELECT segment, base_offset, end_offset, earliest_offset, next_offset
  FROM eventlog.segments WHERE topic = 'ret' AND earliest_offset IS NOT NULL ORDER BY base_offset;
SELECT earliest_offset, high_watermark, last_stable_offset, segments >= 3 AS three_or_more
  FROM eventlog.partitions WHERE topic = 'ret';

-- readers go across segments without a gap
SELECT count(*), min("offset"), max("offset"), count(DISTINCT "offset")
  FROM eventlog.fetch('ret', 0, 0, 100);
SELECT "offset", convert_from(value, 'UTF8') FROM eventlog.fetch('ret', 0, 8, 5);
SELECT count(*), sum("offset") FROM eventlog_topics.ret;
SELECT "offset" FROM eventlog_topics.ret WHERE "offset" BETWEEN 9 AND 11 ORDER BY 1;

-- a group reads the first five records
SELECT count(*) FROM eventlog.consume('g', 'ret', 5, commit => true);
SELECT committed_offset, earliest_offset, lag FROM eventlog.lag WHERE "group" = 'g';

-- no retention set: nothing goes
SELECT * FROM eventlog.enforce_retention('ret');

-- by size: segments go, oldest first, while the rest is at least retention_bytes
SELECT eventlog.alter_topic('ret', NULL, 2 * current_setting('block_size')::bigint * 2);
SELECT size_bytes = 2 * current_setting('block_size')::bigint AS two_blocks
  FROM eventlog.segments WHERE topic = 'ret' AND base_offset = 0;
SELECT * FROM eventlog.enforce_retention('ret');
SELECT * FROM eventlog.enforce_retention('ret');
SELECT segment, base_offset, earliest_offset, next_offset
  FROM eventlog.segments WHERE topic = 'ret' AND earliest_offset IS NOT NULL ORDER BY base_offset;
SELECT earliest_offset, high_watermark FROM eventlog.partitions WHERE topic = 'ret';

-- a group left behind reads from the earliest retained record, and its lag counts from there
SELECT committed_offset, earliest_offset, lag FROM eventlog.lag WHERE "group" = 'g';
SELECT min("offset"), count(*) FROM eventlog.consume('g', 'ret', 3, commit => true);
SELECT committed_offset, lag FROM eventlog.lag WHERE "group" = 'g';
-- fetch below the earliest retained offset starts there too
SELECT min("offset"), count(*) FROM eventlog.fetch('ret', 0, 0, 100);
SELECT count(*), min("offset") FROM eventlog_topics.ret;
SELECT * FROM eventlog.reset_offsets('g', 'ret', 'earliest');

-- by time: a segment goes when all its records are older than the retention
SELECT eventlog.create_topic('ret.time', 1, segment_records => 10);
INSERT INTO eventlog_topics."ret.time$0$0" (partition, "offset", value, ts)
SELECT 0, i, convert_to('old' || i, 'UTF8'), '2020-01-01 00:00:00+00'::timestamptz + i * interval '1 minute'
  FROM generate_series(0, 9) i;
SELECT "offset" FROM eventlog.produce('ret.time', 'new'::text);
SELECT eventlog.offset_for_time('ret.time', 0, '2020-01-01 00:05:00+00'),
       eventlog.offset_for_time('ret.time', 0, '2021-01-01 00:00:00+00');
SELECT eventlog.alter_topic('ret.time', interval '1 day', NULL);
SELECT * FROM eventlog.enforce_retention('ret.time');
SELECT "offset", convert_from(value, 'UTF8') FROM eventlog.fetch('ret.time', 0, 0, 10);
SELECT eventlog.offset_for_time('ret.time', 0, '2020-01-01 00:05:00+00');

-- the segment size of a topic can change; it applies to new segments
SELECT eventlog.alter_topic('ret', NULL, NULL, 5);
SELECT count(*) FROM eventlog.produce_batch('ret', (SELECT array_agg('w' || i) FROM generate_series(1, 10) i));
SELECT base_offset, end_offset, earliest_offset, next_offset
  FROM eventlog.segments WHERE topic = 'ret' AND earliest_offset IS NOT NULL ORDER BY base_offset;

-- a rolled-back transaction leaves its offsets behind, also in the segments it filled
BEGIN;
SELECT count(*) FROM eventlog.produce_batch('ret', (SELECT array_agg('x' || i) FROM generate_series(1, 7) i));
ROLLBACK;
SELECT "offset" FROM eventlog.produce('ret', 'after'::text);
SELECT max("offset") FROM eventlog.fetch('ret', 0, 30, 100);

-- bad input
SELECT eventlog.create_topic('ret.bad', 1, segment_records => 0);
SELECT eventlog.alter_topic('ret', NULL, NULL, -1);
SELECT * FROM eventlog.enforce_retention('no.such.topic');
SELECT * FROM eventlog.topic_segments(NULL);
-- what retention relies on: a segment cannot take offsets outside its bounds
INSERT INTO eventlog_topics."ret.time$0$10" (partition, "offset", value) VALUES (0, 25, 'x');

SELECT eventlog.drop_topic('ret');
SELECT eventlog.drop_topic('ret.time');
SELECT count(*) FROM eventlog.segments WHERE topic LIKE 'ret%';
