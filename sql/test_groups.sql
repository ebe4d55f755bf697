-- Consumer groups: consume, commit, leave, assignment, fencing, administration
CREATE EXTENSION IF NOT EXISTS eventlog;
SELECT eventlog.create_topic('grp', 4);
SELECT count(*) FROM eventlog.produce_batch('grp', array(SELECT 'v' || i FROM generate_series(0, 7) i), partition => 0);
SELECT count(*) FROM eventlog.produce_batch('grp', array(SELECT 'w' || i FROM generate_series(0, 3) i), partition => 1);
SELECT count(*) FROM eventlog.produce_batch('grp', ARRAY['x0'], partition => 2);

-- a standalone consumer (no member) reads every partition from the earliest offset,
-- the partitions in turn: as much of max_records from each as it has
SELECT partition, "offset", convert_from(value, 'UTF8') AS value FROM eventlog.consume('solo', 'grp', 3);
-- without commit the same records come again
SELECT partition, "offset" FROM eventlog.consume('solo', 'grp', 3);
-- with commit the group moves past them
SELECT partition, "offset" FROM eventlog.consume('solo', 'grp', 3, commit => true);
SELECT partition, "offset" FROM eventlog.consume('solo', 'grp', 100, commit => true);
SELECT count(*) FROM eventlog.consume('solo', 'grp', 100, commit => true);
SELECT "group", topic, partition, member, committed_offset, last_stable_offset, lag FROM eventlog.lag WHERE "group" = 'solo' ORDER BY partition;
-- a rolled back consume leaves the offsets where they were
SELECT * FROM eventlog.produce('grp', 'late'::text, partition => 3);
BEGIN;
SELECT partition, "offset" FROM eventlog.consume('solo', 'grp', 100, commit => true);
ROLLBACK;
SELECT partition, "offset", convert_from(value, 'UTF8') AS value FROM eventlog.consume('solo', 'grp', 100, commit => true);

-- the catalog statements of a join run with sequential and bitmap scans off, and leave
-- the session's settings as they were
SET enable_seqscan = on;
BEGIN;
SELECT count(*) FROM eventlog.consume('settings', 'grp', 1, member => 'x');
SELECT current_setting('enable_seqscan') AS seqscan, current_setting('enable_bitmapscan') AS bitmapscan;
COMMIT;
SELECT eventlog.leave('settings', 'x');
SELECT eventlog.delete_group('settings');
RESET enable_seqscan;

-- members share the partitions, sticky and balanced
SELECT partition, count(*) FROM eventlog.consume('team', 'grp', 100, member => 'm1') GROUP BY partition ORDER BY partition;
SELECT member, partitions, generation, live FROM eventlog.members WHERE "group" = 'team' ORDER BY member;
SELECT count(*) FROM eventlog.consume('team', 'grp', 100, member => 'm2');
SELECT member, partitions, generation FROM eventlog.members WHERE "group" = 'team' ORDER BY member;
SELECT count(*) FROM eventlog.consume('team', 'grp', 100, member => 'm3');
SELECT member, partitions, generation FROM eventlog.members WHERE "group" = 'team' ORDER BY member;
SELECT count(*) FROM eventlog.consume('team', 'grp', 100, member => 'm4');
SELECT count(*) FROM eventlog.consume('team', 'grp', 100, member => 'm5');
-- more members than partitions: one stays idle
SELECT member, partitions FROM eventlog.members WHERE "group" = 'team' ORDER BY member;
SELECT "group", generation, live_members, state FROM eventlog.groups WHERE "group" = 'team';
-- leave hands the partitions over at once; the others keep theirs
SELECT eventlog.leave('team', 'm1');
SELECT eventlog.leave('team', 'nobody');
SELECT member, partitions FROM eventlog.members WHERE "group" = 'team' ORDER BY member;

-- fencing: only the owner commits
SELECT member FROM eventlog.lag WHERE "group" = 'team' AND partition = 0;
SELECT eventlog.commit('team', 'grp', 0, 2, member => 'm5');
SELECT eventlog.commit('team', 'grp', 0, 2, member => 'ghost');
SELECT eventlog.commit('team', 'grp', 0, 2);
SELECT eventlog.commit('team', 'grp', 0, 2, member => (SELECT member FROM eventlog.lag WHERE "group" = 'team' AND partition = 0));
SELECT eventlog.commit('team', 'grp', 0, 1, member => (SELECT member FROM eventlog.lag WHERE "group" = 'team' AND partition = 0));
SELECT eventlog.commit('team', 'grp', 0, 99, member => (SELECT member FROM eventlog.lag WHERE "group" = 'team' AND partition = 0));
SELECT committed_offset FROM eventlog.lag WHERE "group" = 'team' AND partition = 0;
-- administration needs a group without live members
SELECT * FROM eventlog.reset_offsets('team', 'grp', 'earliest');
SELECT eventlog.delete_group('team');
SELECT eventlog.leave('team', m) FROM unnest(ARRAY['m2', 'm3', 'm4', 'm5']) m;
SELECT "group", live_members, state FROM eventlog.groups WHERE "group" = 'team';
-- a standalone commit is allowed once the group is empty
SELECT eventlog.commit('team', 'grp', 1, 2);
SELECT committed_offset FROM eventlog.lag WHERE "group" = 'team' AND partition = 1;

-- reset_offsets: earliest, latest, an offset (clamped per partition), a time
SELECT * FROM eventlog.reset_offsets('team', 'grp', 'latest');
SELECT * FROM eventlog.reset_offsets('team', 'grp', 'earliest');
SELECT * FROM eventlog.reset_offsets('team', 'grp', 3);
SELECT * FROM eventlog.reset_offsets('team', 'grp', '5');
SELECT * FROM eventlog.reset_offsets('team', 'grp', now() + interval '1 day');
SELECT * FROM eventlog.reset_offsets('team', 'grp', '2000-01-01 00:00:00+00'::timestamptz);
SELECT * FROM eventlog.reset_offsets('team', 'grp', -1);
SELECT * FROM eventlog.reset_offsets('team', 'grp', 'yesterday-ish');
SELECT * FROM eventlog.reset_offsets('nosuch', 'grp', 'earliest');
SELECT * FROM eventlog.reset_offsets('team', 'nosuch', 'earliest');
SELECT eventlog.offset_for_time('grp', 0, '2000-01-01');
SELECT eventlog.offset_for_time('grp', 0, now() + interval '1 day');

-- per-group session timeout
SELECT eventlog.alter_group('team', '30 s');
SELECT session_timeout FROM eventlog.groups WHERE "group" = 'team';
SELECT eventlog.alter_group('team', NULL);
SELECT session_timeout FROM eventlog.groups WHERE "group" = 'team';
SELECT eventlog.alter_group('team', '-1 s');
SHOW eventlog.session_timeout;

-- delete_group
SELECT eventlog.delete_group('team');
SELECT count(*) FROM eventlog.groups WHERE "group" = 'team';
SELECT count(*) FROM eventlog.group_offset WHERE grp = 'team';
SELECT eventlog.delete_group('team');

-- bad input
SELECT * FROM eventlog.consume('', 'grp');
SELECT * FROM eventlog.consume(NULL, 'grp');
SELECT * FROM eventlog.consume('g1', NULL);
SELECT * FROM eventlog.consume('g1', 'nosuch');
SELECT * FROM eventlog.consume('g1', 'grp', 0);
SELECT * FROM eventlog.consume('g1', 'grp', NULL);
SELECT * FROM eventlog.consume('g1', 'grp', member => '');
SELECT * FROM eventlog.consume('g1', 'grp', wait => '-1 s');
SELECT eventlog.commit('g1', 'grp', 0, -1);
SELECT eventlog.commit('g1', 'grp', 9, 0);
SELECT eventlog.commit('g1', 'grp', NULL, 0);
SELECT eventlog.commit('g1', 'grp', 0, NULL);
SELECT eventlog.commit('never-seen', 'grp', 0, 0);
SELECT eventlog.commit('g1', 'grp', 0, 1000);
SELECT eventlog.leave('g1', NULL);
SELECT eventlog.leave('never-seen', 'm');
BEGIN READ ONLY;
SELECT * FROM eventlog.consume('g1', 'grp', commit => true);
ROLLBACK;

-- a member's calls in a row: the first one joins, the next ones read on from where it
-- committed; a member that left and comes back at once joins again; a call rolled back
-- to a savepoint leaves the member as it was
SELECT count(*) FROM eventlog.consume('memo', 'grp', 2, member => 'a', commit => true);
SELECT count(*) FROM eventlog.consume('memo', 'grp', 2, member => 'a', commit => true);
SELECT sum(committed_offset) FROM eventlog.lag WHERE "group" = 'memo';
SELECT eventlog.leave('memo', 'a');
SELECT count(*) FROM eventlog.members WHERE "group" = 'memo';
SELECT count(*) FROM eventlog.consume('memo', 'grp', 2, member => 'a', commit => true);
SELECT member, partitions FROM eventlog.members WHERE "group" = 'memo';
BEGIN;
SAVEPOINT s;
SELECT count(*) FROM eventlog.consume('memo', 'grp', 2, member => 'b', commit => true);
ROLLBACK TO SAVEPOINT s;
SELECT count(*) FROM eventlog.consume('memo', 'grp', 2, member => 'a', commit => true);
COMMIT;
SELECT member, partitions FROM eventlog.members WHERE "group" = 'memo';
SELECT sum(committed_offset) FROM eventlog.lag WHERE "group" = 'memo';

-- a committed position is found whatever the session looked up before: after calls
-- that moved it were rolled back, and in a group deleted and made again
SELECT string_agg(partition || ':' || "offset", ' ' ORDER BY partition, "offset")
  FROM eventlog.consume('hint', 'grp', 4, commit => true);
BEGIN;
SELECT count(*) FROM eventlog.consume('hint', 'grp', 4, commit => true);
SELECT count(*) FROM eventlog.consume('hint', 'grp', 4, commit => true);
ROLLBACK;
SELECT string_agg(partition || ':' || "offset", ' ' ORDER BY partition, "offset")
  FROM eventlog.consume('hint', 'grp', 4, commit => true);
SELECT eventlog.delete_group('hint');
SELECT string_agg(partition || ':' || "offset", ' ' ORDER BY partition, "offset")
  FROM eventlog.consume('hint', 'grp', 4, commit => true);
SELECT eventlog.delete_group('hint');

-- the partitions in turn: a call starts with the partition after the one the group
-- committed last, and takes what it can from each, so a backlog is read one partition
-- per call and the next call goes on with the next partition
SELECT eventlog.create_topic('turns', 3);
SELECT count(*) FROM generate_series(0, 2) p,
       eventlog.produce_batch('turns', array(SELECT 'r' || i FROM generate_series(0, 4) i), partition => p);
SELECT string_agg(partition || ':' || "offset", ' ') FROM eventlog.consume('rr', 'turns', 3, commit => true);
-- a call without commit returns what the next call with commit will
SELECT string_agg(partition || ':' || "offset", ' ') FROM eventlog.consume('rr', 'turns', 3);
SELECT string_agg(partition || ':' || "offset", ' ') FROM eventlog.consume('rr', 'turns', 3);
-- the first call with commit gave the group a position in every partition
SELECT partition, committed_offset FROM eventlog.lag WHERE "group" = 'rr' ORDER BY partition;
-- each call writes the positions of the partitions it read, no others
SELECT max(seq) AS seq_before FROM eventlog.group_offset WHERE grp = 'rr' \gset
SELECT string_agg(partition || ':' || "offset", ' ') FROM eventlog.consume('rr', 'turns', 3, commit => true);
SELECT partition, committed_offset FROM eventlog.group_offset WHERE grp = 'rr' AND seq > :seq_before ORDER BY seq;
SELECT string_agg(partition || ':' || "offset", ' ') FROM eventlog.consume('rr', 'turns', 3, commit => true);
-- a call that empties a partition goes on with the next ones, wrapping around
SELECT string_agg(partition || ':' || "offset", ' ') FROM eventlog.consume('rr', 'turns', 3, commit => true);
SELECT max(seq) AS seq_before FROM eventlog.group_offset WHERE grp = 'rr' \gset
SELECT string_agg(partition || ':' || "offset", ' ') FROM eventlog.consume('rr', 'turns', 3, commit => true);
SELECT partition, committed_offset FROM eventlog.group_offset WHERE grp = 'rr' AND seq > :seq_before ORDER BY seq;
SELECT string_agg(partition || ':' || "offset", ' ') FROM eventlog.consume('rr', 'turns', 3, commit => true);
SELECT count(*) FROM eventlog.consume('rr', 'turns', 3, commit => true);
-- a busy partition does not starve a quiet one: the next call starts after it
SELECT count(*) FROM eventlog.produce_batch('turns', array(SELECT 'busy' || i FROM generate_series(1, 20) i), partition => 0);
SELECT * FROM eventlog.produce('turns', 'quiet'::text, partition => 2);
SELECT partition, count(*) FROM eventlog.consume('rr', 'turns', 5, commit => true) GROUP BY partition ORDER BY partition;
SELECT partition, count(*) FROM eventlog.consume('rr', 'turns', 5, commit => true) GROUP BY partition ORDER BY partition;
-- a commit made by hand counts as the latest too: this call starts after partition 1
SELECT count(*) FROM generate_series(1, 2) p, eventlog.produce_batch('turns', ARRAY['a', 'b'], partition => p);
SELECT eventlog.commit('rr', 'turns', 1, 6);
SELECT string_agg(partition || ':' || "offset", ' ') FROM eventlog.consume('rr', 'turns', 4, commit => true);
-- a member starts after the partition of its own that the group committed last
SELECT partition, count(*) FROM eventlog.consume('rr2', 'turns', 4, member => 'solo', commit => true) GROUP BY partition ORDER BY partition;
SELECT partition, count(*) FROM eventlog.consume('rr2', 'turns', 4, member => 'solo', commit => true) GROUP BY partition ORDER BY partition;
SELECT eventlog.leave('rr2', 'solo');
SELECT eventlog.delete_group('rr');
SELECT eventlog.delete_group('rr2');
SELECT eventlog.drop_topic('turns');

-- offsets across dump and restore: save, then restore (nothing to move here)
SELECT eventlog.save_offsets() >= 4 AS saved;
SELECT earliest_offset, high_watermark FROM eventlog.partition_mark WHERE topic = 'grp' ORDER BY partition;
SELECT * FROM eventlog.restore_offsets();

-- dropping a topic drops the groups' positions in it
SELECT count(*) FROM eventlog.group_offset WHERE topic = 'grp';
SELECT eventlog.drop_topic('grp');
SELECT count(*) FROM eventlog.group_offset WHERE topic = 'grp';
