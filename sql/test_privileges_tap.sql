-- pgTAP: who may create, produce to, read and drop topics
\set ON_ERROR_STOP 1
\pset format unaligned
\pset tuples_only true
\pset pager off
CREATE EXTENSION IF NOT EXISTS eventlog;
CREATE EXTENSION IF NOT EXISTS pgtap;

BEGIN;
SELECT plan(29);

CREATE ROLE el_owner;
CREATE ROLE el_other;
GRANT CREATE ON SCHEMA eventlog_topics TO el_owner;

SET ROLE el_other;
SELECT throws_ok($$SELECT eventlog.create_topic('priv')$$, '42501',
                 'permission denied to create topic "priv"', 'creating topics needs CREATE on eventlog_topics');
RESET ROLE;

SET ROLE el_owner;
SELECT lives_ok($$SELECT eventlog.create_topic('priv', 2)$$, 'a role with CREATE on the schema creates a topic');
SELECT is((SELECT owner FROM eventlog.topics WHERE topic = 'priv'), 'el_owner', 'the creator owns the topic');
SELECT lives_ok($$SELECT eventlog.produce('priv', 'by owner'::text, partition => 0)$$, 'the owner produces');
SELECT is((SELECT count(*) FROM eventlog.fetch('priv', 0, 0)), 1::bigint, 'the owner reads');
SELECT throws_ok($$INSERT INTO eventlog.topic (topic, relname, partitions) VALUES ('fake', 'fake', 1)$$, '42501',
                 NULL, 'nobody but the extension writes the catalog');
RESET ROLE;

SET ROLE el_other;
SELECT throws_ok($$SELECT eventlog.produce('priv', 'x'::text)$$, '42501',
                 'permission denied to produce to topic "priv"', 'producing needs INSERT on the topic');
SELECT throws_ok($$SELECT eventlog.produce_batch('priv', ARRAY['x']::text[])$$, '42501',
                 'permission denied to produce to topic "priv"', 'so does produce_batch');
SELECT throws_ok($$SELECT * FROM eventlog.fetch('priv', 0, 0)$$, '42501',
                 'permission denied to read topic "priv"', 'reading needs SELECT on the topic');
SELECT throws_ok($$SELECT * FROM eventlog_topics.priv$$, '42501', NULL, 'plain SQL over the topic is refused too');
SELECT throws_ok($$SELECT eventlog.drop_topic('priv')$$, '42501',
                 'must be owner of topic "priv"', 'only the owner drops a topic');
SELECT throws_ok($$SELECT eventlog.add_partitions('priv', 3)$$, '42501',
                 'must be owner of topic "priv"', 'only the owner adds partitions');
RESET ROLE;

SET ROLE el_owner;
GRANT INSERT ON eventlog_topics.priv TO el_other;
RESET ROLE;
SET ROLE el_other;
SELECT lives_ok($$SELECT eventlog.produce('priv', 'by other'::text, partition => 0)$$, 'INSERT lets a role produce');
SELECT throws_ok($$SELECT * FROM eventlog.fetch('priv', 0, 0)$$, '42501',
                 'permission denied to read topic "priv"', 'INSERT alone does not let it read');
RESET ROLE;

SET ROLE el_owner;
GRANT SELECT ON eventlog_topics.priv TO el_other;
RESET ROLE;
SET ROLE el_other;
SELECT is((SELECT count(*) FROM eventlog.fetch('priv', 0, 0)), 2::bigint, 'SELECT lets a role read');
SELECT is((SELECT count(*) FROM eventlog_topics.priv), 2::bigint, 'and read the topic in SQL');
RESET ROLE;

SET ROLE el_owner;
REVOKE INSERT, SELECT ON eventlog_topics.priv FROM el_other;
RESET ROLE;
SET ROLE el_other;
SELECT throws_ok($$SELECT eventlog.produce('priv', 'x'::text)$$, '42501', NULL, 'REVOKE takes producing back');
SELECT throws_ok($$SELECT * FROM eventlog.fetch('priv', 0, 0)$$, '42501', NULL, 'REVOKE takes reading back');
-- the views show offsets but no record data
SELECT is((SELECT high_watermark FROM eventlog.partitions WHERE topic = 'priv' AND partition = 0), 2::bigint,
          'anyone may see partition offsets, as Kafka lets clients describe topics');
RESET ROLE;

-- consumer groups belong to the role that created them
SET ROLE el_owner;
GRANT SELECT ON eventlog_topics.priv TO el_other;
SELECT lives_ok($$SELECT count(*) FROM eventlog.consume('owned', 'priv', member => 'o1')$$,
                'the first consume creates the group, owned by the caller');
RESET ROLE;
SET ROLE el_other;
SELECT throws_ok($$SELECT count(*) FROM eventlog.consume('owned', 'priv', member => 'x1')$$, '42501',
                 'permission denied for consumer group "owned"', 'another role cannot join the group');
SELECT throws_ok($$SELECT eventlog.leave('owned', 'o1')$$, '42501',
                 'permission denied for consumer group "owned"', 'nor make its members leave');
SELECT throws_ok($$SELECT eventlog.commit('owned', 'priv', 0, 0, 'o1')$$, '42501',
                 'permission denied for consumer group "owned"', 'nor commit its offsets');
SELECT throws_ok($$SELECT eventlog.delete_group('owned')$$, '42501',
                 'must be owner of consumer group "owned"', 'nor delete it');
RESET ROLE;
GRANT el_owner TO el_other;
SET ROLE el_other;
SELECT lives_ok($$SELECT count(*) FROM eventlog.consume('owned', 'priv', member => 'x1')$$,
                'a role granted the owner role shares the group');
RESET ROLE;
REVOKE el_owner FROM el_other;
SET ROLE el_other;
SELECT lives_ok($$SELECT count(*) FROM eventlog.consume('mine', 'priv', member => 'y1')$$,
                'any reader of a topic can create groups of its own');
RESET ROLE;

SET ROLE el_owner;
SELECT lives_ok($$SELECT eventlog.add_partitions('priv', 3)$$, 'the owner adds partitions');
SELECT lives_ok($$SELECT eventlog.drop_topic('priv')$$, 'the owner drops the topic');
SELECT is((SELECT count(*) FROM eventlog.topics WHERE topic = 'priv'), 0::bigint, 'the topic is gone from the catalog');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
