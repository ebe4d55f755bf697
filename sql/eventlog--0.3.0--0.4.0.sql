/* eventlog 0.3.0 -> 0.4.0: committed offsets without a foreign key check per commit */

\echo Use "ALTER EXTENSION eventlog UPDATE TO '0.4.0'" to load this file. \quit

/*
 * consume(..., commit => true) inserts one row per partition it moved: the
 * foreign key made each of them run a trigger that locked the group's row
 * (a multixact when several members commit at once), a fifth of the cost of
 * a call.  eventlog's functions are the only writers of these tables: they
 * create a group before its first offset and delete_group() removes its
 * offsets with it.
 */
ALTER TABLE eventlog.group_offset DROP CONSTRAINT group_offset_grp_fkey;
COMMENT ON TABLE eventlog.group_offset IS
'Committed offsets, the next record each group reads in each partition: the row with the highest seq of a partition is current; written only by eventlog''s functions';
