-- Change capture: table changes become Debezium-style events in the same transaction
CREATE EXTENSION IF NOT EXISTS eventlog;
SELECT eventlog.create_topic('profile-changes', 3);
CREATE TABLE profiles (id int PRIMARY KEY, name text, email text, vip boolean DEFAULT false);
SELECT eventlog.capture('profiles', 'profile-changes');
SELECT "table", topic FROM eventlog.captures;

INSERT INTO profiles VALUES (1, 'Ann', 'ann@example.com'), (2, 'Bob', NULL);
UPDATE profiles SET email = 'ann@new.example', vip = true WHERE id = 1;
DELETE FROM profiles WHERE id = 2;
-- a rolled back change produces no event
BEGIN;
INSERT INTO profiles VALUES (3, 'Rolled', 'back');
ROLLBACK;
TRUNCATE profiles;

-- one row's changes share a key, so a partition, in order
SELECT partition = eventlog.partition_for_key(key, 3) AS keyed, key,
       convert_from(value, 'UTF8')::jsonb - 'source' - 'ts_ms' AS event
  FROM eventlog.consume('capture-reader', 'profile-changes', 100)
 WHERE key IS NOT NULL
 ORDER BY key, "offset";
-- TRUNCATE is an event too (op "t", no key)
SELECT key, convert_from(value, 'UTF8')::jsonb - 'source' - 'ts_ms' AS event
  FROM eventlog.consume('capture-reader', 'profile-changes', 100)
 WHERE key IS NULL;
-- the source block names where the change happened
SELECT DISTINCT (convert_from(value, 'UTF8')::jsonb -> 'source') - 'txId' - 'ts_ms' AS source,
       (convert_from(value, 'UTF8')::jsonb -> 'source' ->> 'ts_ms')::bigint > 0 AS has_ts_ms,
       (convert_from(value, 'UTF8')::jsonb ->> 'ts_ms')::bigint > 0 AS has_event_ts_ms
  FROM eventlog.consume('capture-reader', 'profile-changes', 100);

-- other key columns
CREATE TABLE orders (region text, no int, amount numeric);
SELECT eventlog.capture('orders', 'profile-changes', key => ARRAY['region', 'no']);
INSERT INTO orders VALUES ('eu', 7, 12.50);
SELECT key, convert_from(value, 'UTF8')::jsonb -> 'after' AS after
  FROM eventlog.consume('capture-reader', 'profile-changes', 100) WHERE key LIKE '{"region"%';

-- bad input
SELECT eventlog.capture('profiles', 'profile-changes');
CREATE TABLE nokey (a int);
SELECT eventlog.capture('nokey', 'profile-changes');
SELECT eventlog.capture('nokey', 'profile-changes', key => ARRAY['nosuch']);
SELECT eventlog.capture('nokey', 'profile-changes', key => ARRAY[NULL]);
SELECT eventlog.capture('nokey', 'nosuch', key => ARRAY['a']);
SELECT eventlog.capture(NULL, 'profile-changes');
SELECT eventlog.capture('eventlog_topics."profile-changes"', 'profile-changes');
CREATE VIEW v AS SELECT 1 AS a;
SELECT eventlog.capture('v', 'profile-changes', key => ARRAY['a']);
SELECT eventlog.uncapture('nokey');
SELECT eventlog.uncapture(NULL);

-- a failing capture fails the business write: no write without its event
CREATE ROLE capture_writer;
GRANT INSERT, SELECT ON profiles TO capture_writer;
SET ROLE capture_writer;
INSERT INTO profiles VALUES (10, 'no right to produce', NULL);
RESET ROLE;
SELECT count(*) AS rows_written FROM profiles WHERE id = 10;
REVOKE ALL ON profiles FROM capture_writer;
DROP ROLE capture_writer;

-- uncapture stops it
SELECT eventlog.uncapture('profiles');
SELECT eventlog.uncapture('orders');
SELECT count(*) FROM eventlog.captures;
INSERT INTO profiles VALUES (20, 'quiet', NULL);
SELECT count(*) AS new_events FROM eventlog.consume('capture-reader', 'profile-changes', 100, commit => true)
 WHERE key = '{"id": 20}';
