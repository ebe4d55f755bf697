/*
 * el_consume.c
 *		consume(), commit(), leave() and the administration of groups:
 *		reset_offsets(), delete_group(), alter_group().
 */
#include "postgres.h"

#include "access/detoast.h"
#include "access/relation.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "groups/el_group.h"
#include "log/log.h"
#include "storage/storage.h"

PG_FUNCTION_INFO_V1(eventlog_consume);
PG_FUNCTION_INFO_V1(eventlog_commit);
PG_FUNCTION_INFO_V1(eventlog_leave);
PG_FUNCTION_INFO_V1(eventlog_reset_offsets);
PG_FUNCTION_INFO_V1(eventlog_delete_group);
PG_FUNCTION_INFO_V1(eventlog_alter_group);
PG_FUNCTION_INFO_V1(eventlog_offset_for_time);
PG_FUNCTION_INFO_V1(eventlog_session_timeout_in_force);

static bool el_wait_notice_given = false;

/* ---- Arguments ---- */

static char *
el_group_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *grp = el_text_arg(fcinfo, argno, "group");

	el_check_group_name(grp);
	return grp;
}

static char *
el_member_arg(FunctionCallInfo fcinfo, int argno)
{
	char	   *member;

	if (PG_ARGISNULL(argno))
		return NULL;
	member = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (member[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("member name must not be empty"),
				 errhint("Pass NULL to consume without joining the group.")));
	return member;
}

static void
el_topic_arg(FunctionCallInfo fcinfo, int argno, ElTopic *topic)
{
	char	   *name = el_text_arg(fcinfo, argno, "topic");

	el_topic_lookup(name, false, topic);
	el_check_topic_privilege(topic, ACL_SELECT);
}

/* ---- consume ---- */

/*
 * consume(grp, topic, max_records, member, commit, wait): records of the
 * partitions assigned to this member (all partitions without a member),
 * from the group's committed offsets.  With commit, the positions after the
 * returned records are committed in the caller's transaction, each
 * partition's offset row locked before reading: exactly-once processing for
 * work done in the same transaction.
 */
Datum
eventlog_consume(PG_FUNCTION_ARGS)
{
	char	   *grp = el_group_arg(fcinfo, 0);
	ElTopic		topic;
	int32		max_records;
	char	   *member = el_member_arg(fcinfo, 3);
	bool		commit = !PG_ARGISNULL(4) && PG_GETARG_BOOL(4);
	TimestampTz deadline = GetCurrentTimestamp();
	ElRowOut	out;
	int			got = 0;
	int32	   *parts = NULL;
	int			nparts = 0;
	Oid		   *leaves = NULL;
	TimestampTz joined = 0;

	el_topic_arg(fcinfo, 1, &topic);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("max_records must not be null")));
	max_records = PG_GETARG_INT32(2);
	if (max_records <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_records must be positive")));
	if (!PG_ARGISNULL(5))
	{
		Interval   *wait = PG_GETARG_INTERVAL_P(5);
		int64		usecs = wait->time + (wait->day + (int64) wait->month * DAYS_PER_MONTH) * USECS_PER_DAY;

		if (usecs < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("wait must not be negative")));
		deadline += usecs;
	}
	if (commit)
	{
		PreventCommandIfReadOnly("eventlog.consume(commit => true)");
		el_group_lock_offsets(grp);
	}
	if (deadline > GetCurrentTimestamp() && !el_wakeup_available() && !el_wait_notice_given)
	{
		/* Said once per session: waiting works, only less promptly. */
		ereport(NOTICE,
				(errmsg("eventlog is not loaded by shared_preload_libraries: waiting consumers look every 100 ms"),
				 errhint("Add eventlog to shared_preload_libraries to wake them when records are committed.")));
		el_wait_notice_given = true;
	}

	el_rowout_begin(&out, fcinfo, topic.name);

	SPI_connect();
	for (;;)
	{
		uint64		stamp;
		int			i;

		/*
		 * Join (and heartbeat) at the start of the call, and again only
		 * after a second of waiting: a consumer woken by a commit goes
		 * straight to the records.  Partitions taken from it meanwhile are
		 * skipped by the ownership check after the lock.
		 */
		if (parts == NULL || TimestampDifferenceExceeds(joined, GetCurrentTimestamp(), 1000))
		{
			if (member)
				nparts = el_group_join(grp, member, &topic, &parts);
			else
			{
				(void) el_group_ensure_access(grp);
				el_group_require_empty(grp, "Consuming without a member");
				nparts = topic.npartitions;
				parts = palloc(sizeof(int32) * nparts);
				for (i = 0; i < nparts; i++)
					parts[i] = i;
			}
			joined = GetCurrentTimestamp();

			leaves = palloc(sizeof(Oid) * Max(nparts, 1));
			for (i = 0; i < nparts; i++)
				leaves[i] = el_topic_leaf(&topic, parts[i]);
		}
		stamp = el_wakeup_stamp(leaves, nparts);

		got = el_consume_round(&out, grp, member, &topic, parts, nparts,
							   commit, max_records);

		if (got > 0 || IsolationUsesXactSnapshot() ||
			!el_wakeup_wait(leaves, nparts, stamp, deadline))
			break;
	}
	el_rowout_end(&out);
	SPI_finish();
	return (Datum) 0;
}

/* ---- commit ---- */

/*
 * commit(grp, topic, partition, offset, member): the group's position in a
 * partition becomes offset (the next record to read).  With member, only
 * while that member owns the partition (fencing); without, only while the
 * group has no live members.  Never moves backwards.
 */
Datum
eventlog_commit(PG_FUNCTION_ARGS)
{
	char	   *grp = el_group_arg(fcinfo, 0);
	ElTopic		topic;
	int32		partition;
	int64		offset;
	char	   *member = el_member_arg(fcinfo, 4);
	ElLog		log;
	ElMetaInfo	meta;
	int64		current;
	int64		seq;

	el_topic_arg(fcinfo, 1, &topic);
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("partition must not be null")));
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("offset must not be null")));
	partition = PG_GETARG_INT32(2);
	offset = PG_GETARG_INT64(3);
	el_check_partition(&topic, partition);
	if (offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset must not be negative"),
				 errhint("Commit the offset of the next record to read: the last processed offset plus one.")));
	PreventCommandIfReadOnly("eventlog.commit()");

	el_log_open(&log, &topic, partition);
	el_log_meta(&log, &meta);
	el_log_close(&log);
	if (offset > meta.next_offset)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset " INT64_FORMAT " is beyond the high watermark " INT64_FORMAT " of partition %d of topic \"%s\"",
						offset, meta.next_offset, partition, topic.name),
				 errhint("Commit the offset of the next record to read: the last processed offset plus one.")));

	el_group_lock_offsets(grp);
	SPI_connect();
	el_group_require_access(grp);

	/*
	 * Lock the offset row first, then check ownership: a rebalance that
	 * committed while this waited for the lock is seen.
	 */
	el_offset_lock(grp, topic.name, partition, offset, &current, &seq);
	if (member)
		el_group_check_ownership(grp, member, &topic, partition);
	else
		el_group_require_empty(grp, "Committing without a member");
	if (offset < current)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset " INT64_FORMAT " is below the committed offset " INT64_FORMAT " of consumer group \"%s\" in partition %d of topic \"%s\"",
						offset, current, grp, partition, topic.name),
				 errdetail("Committed offsets only move forward."),
				 errhint("Use eventlog.reset_offsets() to move a group back.")));
	el_offset_set(grp, topic.name, partition, offset, seq);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ---- leave ---- */

Datum
eventlog_leave(PG_FUNCTION_ARGS)
{
	char	   *grp = el_group_arg(fcinfo, 0);
	char	   *member = el_member_arg(fcinfo, 1);
	bool		found;

	if (member == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("member must not be null")));
	SPI_connect();
	el_group_require_access(grp);
	found = el_group_leave(grp, member);
	SPI_finish();
	PG_RETURN_BOOL(found);
}

/* ---- administration ---- */

/*
 * reset_offsets(grp, topic, to): moves the group's committed offsets of
 * every partition of the topic to 'earliest', 'latest', an offset (clamped
 * to what the partition holds) or a timestamp (the first record at or after
 * it), as kafka-consumer-groups --reset-offsets does; only while the group
 * has no live members.  Returns the new offsets.
 */
Datum
eventlog_reset_offsets(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *grp = el_group_arg(fcinfo, 0);
	ElTopic		topic;
	Oid			owner;
	char	   *to;
	int64		to_offset = -1;
	TimestampTz to_ts = 0;
	enum
	{
		TO_EARLIEST, TO_LATEST, TO_OFFSET, TO_TIME
	}			kind;
	int32		p;

	el_topic_arg(fcinfo, 1, &topic);
	to = el_text_arg(fcinfo, 2, "to");
	if (pg_strcasecmp(to, "earliest") == 0)
		kind = TO_EARLIEST;
	else if (pg_strcasecmp(to, "latest") == 0)
		kind = TO_LATEST;
	else
	{
		char	   *end;

		errno = 0;
		to_offset = strtoll(to, &end, 10);
		if (*to != '\0' && *end == '\0' && errno == 0)
		{
			kind = TO_OFFSET;
			if (to_offset < 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("offset must not be negative")));
		}
		else
		{
			kind = TO_TIME;
			to_ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
															CStringGetDatum(to),
															ObjectIdGetDatum(InvalidOid),
															Int32GetDatum(-1)));
		}
	}
	PreventCommandIfReadOnly("eventlog.reset_offsets()");

	InitMaterializedSRF(fcinfo, 0);
	el_group_lock_offsets(grp);
	SPI_connect();
	el_group_require(grp, &owner);
	el_group_check_owner(grp, owner);
	el_group_require_empty(grp, "Resetting offsets");

	for (p = 0; p < topic.npartitions; p++)
	{
		ElLog		log;
		ElMetaInfo	meta;
		int64		target = 0;
		Datum		values[2];
		bool		nulls[2] = {false, false};

		el_log_open(&log, &topic, p);
		el_log_meta(&log, &meta);
		switch (kind)
		{
			case TO_EARLIEST:
				target = meta.earliest_offset;
				break;
			case TO_LATEST:
				target = meta.next_offset;
				break;
			case TO_OFFSET:
				target = Min(Max(to_offset, meta.earliest_offset), meta.next_offset);
				break;
			case TO_TIME:
				target = Max(el_log_offset_for_time(&log, to_ts), meta.earliest_offset);
				break;
		}
		el_log_close(&log);
		el_offset_reset(grp, topic.name, p, target);

		values[0] = Int32GetDatum(p);
		values[1] = Int64GetDatum(target);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

/* delete_group(grp): forgets a group with no live members, and its offsets. */
Datum
eventlog_delete_group(PG_FUNCTION_ARGS)
{
	char	   *grp = el_group_arg(fcinfo, 0);
	Oid			owner;

	/* Waits for the transactions writing its offsets (el_grouplock.c). */
	el_group_lock_delete(grp);
	SPI_connect();
	el_group_require(grp, &owner);
	el_group_check_owner(grp, owner);
	el_group_require_empty(grp, "Deleting a group");
	el_group_delete(grp);
	SPI_finish();
	PG_RETURN_VOID();
}

/* alter_group(grp, session_timeout): the group's own session timeout. */
Datum
eventlog_alter_group(PG_FUNCTION_ARGS)
{
	char	   *grp = el_group_arg(fcinfo, 0);
	Oid			owner;

	if (!PG_ARGISNULL(1))
	{
		Interval   *timeout = PG_GETARG_INTERVAL_P(1);

		if (timeout->month < 0 || timeout->day < 0 || timeout->time < 0 ||
			(timeout->month == 0 && timeout->day == 0 && timeout->time == 0))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("session_timeout must be a positive interval"),
					 errhint("Pass NULL to use eventlog.session_timeout.")));
	}
	SPI_connect();
	el_group_ensure(grp);
	el_group_require(grp, &owner);
	el_group_check_owner(grp, owner);
	el_group_set_timeout(grp, PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1), PG_ARGISNULL(1));
	SPI_finish();
	PG_RETURN_VOID();
}

/* offset_for_time(topic, partition, ts): Kafka's ListOffsets by timestamp. */
Datum
eventlog_offset_for_time(PG_FUNCTION_ARGS)
{
	ElTopic		topic;
	int32		partition;
	ElLog		log;
	int64		offset;

	el_topic_arg(fcinfo, 0, &topic);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("partition and ts must not be null")));
	partition = PG_GETARG_INT32(1);
	el_check_partition(&topic, partition);
	el_log_open(&log, &topic, partition);
	offset = el_log_offset_for_time(&log, PG_GETARG_TIMESTAMPTZ(2));
	el_log_close(&log);
	PG_RETURN_INT64(offset);
}

/*
 * session_timeout(group_timeout): a group's own timeout, else the setting.
 * The views call it, so that they work in sessions that have not loaded
 * the library yet (the setting exists only once it is loaded).
 */
Datum
eventlog_session_timeout_in_force(PG_FUNCTION_ARGS)
{
	Interval   *result;

	if (!PG_ARGISNULL(0))
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	result = palloc0(sizeof(Interval));
	result->time = (int64) eventlog_session_timeout * 1000;
	PG_RETURN_INTERVAL_P(result);
}
