/* eventlog 0.5.0 -> 0.6.0: the group functions no longer carry planner settings */

\echo Use "ALTER EXTENSION eventlog UPDATE TO '0.6.0'" to load this file. \quit

/*
 * The group functions were declared with SET enable_seqscan = off and SET
 * enable_bitmapscan = off, so that the catalog statements they run use
 * index scans.  A function with settings is called through a wrapper that
 * looks the function up again and opens a settings level on every call: a
 * fortieth of a consume() call of 1,000 records, which since 0.5.0's
 * library runs no SQL at all in the usual case.  The library now applies
 * the two settings around each of its catalog statements instead (el_run in
 * el_group.c).
 */
ALTER FUNCTION eventlog.consume(text, text, integer, text, boolean, interval) RESET ALL;
ALTER FUNCTION eventlog.commit(text, text, integer, bigint, text) RESET ALL;
ALTER FUNCTION eventlog.leave(text, text) RESET ALL;
ALTER FUNCTION eventlog.reset_offsets(text, text, text) RESET ALL;
ALTER FUNCTION eventlog.delete_group(text) RESET ALL;
ALTER FUNCTION eventlog.alter_group(text, interval) RESET ALL;
