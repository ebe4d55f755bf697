/*
 * el_retention.c
 *		Retention: whole segments dropped by age and by size, as Kafka deletes
 *		segment files, and the next segment of each partition created ahead.
 *
 * A segment goes when every record in it is older than the topic's
 * retention (its largest timestamp is), or while the partition without it
 * is still at least retention_bytes, or when it holds no record at all.
 * Segments go oldest first, and never the tail or anything after it, so the
 * partition's earliest offset only moves forward and producers are never in
 * the way.  A DROP takes its locks only if nobody holds them at that moment
 * (else the segment is tried again next time), so retention never holds up
 * producers or consumers, and a reader of an old segment only delays its
 * drop: they lock the partition's relation only while reading its list of
 * segments, and a segment while reading it.
 *
 * The worker runs a pass every eventlog.retention_check_interval;
 * enforce_retention() runs one now.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "compat/compat.h"
#include "log/log_internal.h"
#include "storage/storage.h"
#include "util/util.h"

PG_FUNCTION_INFO_V1(eventlog_enforce_retention);
PG_FUNCTION_INFO_V1(eventlog_topic_segments);

/* How long a DROP may wait for any other lock it needs (TOAST, indexes). */
#define EL_RETENTION_LOCK_TIMEOUT	"100ms"

int			eventlog_retention_check_interval = 10000;

/* A topic's retention settings as of one pass. */
typedef struct ElRetention
{
	char		topic[256];
	bool		has_time;
	TimestampTz cutoff;			/* records older than this may go */
	bool		has_bytes;
	int64		bytes;
} ElRetention;

/* A segment dropped, for enforce_retention()'s result. */
typedef struct ElDropped
{
	int32		partition;
	int64		lo;
	int64		hi;
} ElDropped;

/* Bytes a segment takes: its own file and its TOAST relation's. */
static int64
el_segment_bytes(Relation rel)
{
	int64		size = (int64) RelationGetNumberOfBlocks(rel) * BLCKSZ;

	if (OidIsValid(rel->rd_rel->reltoastrelid))
	{
		Relation	toast = try_relation_open(rel->rd_rel->reltoastrelid, AccessShareLock);

		if (toast)
		{
			size += (int64) RelationGetNumberOfBlocks(toast) * BLCKSZ;
			relation_close(toast, AccessShareLock);
		}
	}
	return size;
}

/* A segment's DROP, in a subtransaction of its own (el_try). */
typedef struct ElDropStep
{
	Oid			relid;
	Oid			parent;
	const char *relname;
	const char *sql;
} ElDropStep;

static void
el_drop_step(void *arg)
{
	ElDropStep *step = arg;

	(void) set_config_option("lock_timeout", EL_RETENTION_LOCK_TIMEOUT, PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	if (!ConditionalLockRelationOid(step->parent, AccessExclusiveLock) ||
		!ConditionalLockRelationOid(step->relid, AccessExclusiveLock))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("segment \"%s\" is in use", step->relname)));
	SPI_connect();
	if (SPI_execute(step->sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not execute: %s", step->sql);
	SPI_finish();
}

/*
 * Drops a segment unless someone is using it or its partition's relation
 * right now (then false: it is tried again next time).  The locks DROP
 * needs are taken without waiting, so that no producer or reader ever
 * queues behind a DROP; other errors propagate.
 */
static bool
el_try_drop_segment(Oid relid, Oid parent)
{
	char	   *relname = get_rel_name(relid);
	char	   *nspname = get_namespace_name(get_rel_namespace(relid));
	ElDropStep	step;
	ErrorData  *edata;

	if (relname == NULL || nspname == NULL)
		return false;
	step.relid = relid;
	step.parent = parent;
	step.relname = relname;
	step.sql = psprintf("DROP TABLE %s", quote_qualified_identifier(nspname, relname));

	edata = el_try(el_drop_step, &step);
	if (edata == NULL)
		return true;
	if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
		ReThrowError(edata);
	ereport(DEBUG1,
			(errmsg("segment \"%s\" is in use, to be dropped later", relname)));
	FreeErrorData(edata);
	return false;
}

/*
 * Applies retention to one partition and, with ahead, creates the segment
 * after the tail once the tail is half full.  Appends what it dropped to
 * *dropped.
 */
static void
el_retain_partition(ElTopic *topic, int32 partition, ElRetention *ret, bool ahead,
					List **dropped)
{
	ElLog		log;
	ElMetaInfo	meta;
	int			tail;
	int64	   *sizes;
	int64		total = 0;
	int			i;

	el_log_open(&log, topic, partition);
	if (!log.segmented || log.nsegments == 0)
	{
		el_log_close(&log);
		return;
	}
	tail = el_log_tail(&log, &meta);

	if (ahead && tail == log.nsegments - 1)
	{
		ElSegment  *t = &log.segments[tail];
		int64		hi;

		if (t->hi < PG_INT64_MAX && meta.next_offset - t->lo >= (t->hi - t->lo) / 2)
		{
			if (pg_add_s64_overflow(t->hi, Max(topic->segment_records, 1), &hi))
				hi = PG_INT64_MAX;
			(void) el_create_segment(log.relid, t->hi, hi, false);
		}
	}

	sizes = palloc0(sizeof(int64) * log.nsegments);
	for (i = 0; i < log.nsegments; i++)
	{
		Relation	rel = el_log_open_segment(&log, i, AccessShareLock);

		if (rel == NULL)
			continue;
		sizes[i] = el_segment_bytes(rel);
		total += sizes[i];
		relation_close(rel, AccessShareLock);
	}

	for (i = 0; i < tail; i++)
	{
		Relation	rel = el_log_open_segment(&log, i, AccessShareLock);
		ElMetaInfo	segmeta;
		bool		empty;
		TimestampTz max_ts;
		ElDropped  *d;

		if (rel == NULL)
			continue;
		el_read_meta(rel, &segmeta);
		empty = !segmeta.exists || segmeta.earliest_offset >= segmeta.next_offset;
		max_ts = el_max_ts(rel, &segmeta);
		relation_close(rel, AccessShareLock);

		if (!empty &&
			!(ret->has_time && max_ts < ret->cutoff) &&
			!(ret->has_bytes && total - sizes[i] >= ret->bytes))
			break;
		if (!el_try_drop_segment(log.segments[i].relid, log.relid))
			break;
		total -= sizes[i];
		d = palloc(sizeof(ElDropped));
		d->partition = partition;
		d->lo = log.segments[i].lo;
		d->hi = log.segments[i].hi;
		*dropped = lappend(*dropped, d);
	}
	pfree(sizes);
	el_log_close(&log);
}

/* Reads the retention settings of the topics (all if topic is NULL). */
static List *
el_retention_settings(const char *topic)
{
	List	   *result = NIL;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char		nulls[1] = {' '};
	uint64		i;
	MemoryContext cxt = CurrentMemoryContext;

	args[0] = topic ? CStringGetTextDatum(topic) : (Datum) 0;
	if (topic == NULL)
		nulls[0] = 'n';
	SPI_connect();
	if (SPI_execute_with_args("SELECT topic, now() - retention, retention_bytes FROM eventlog.topic "
							  "WHERE $1 IS NULL OR topic = $1 ORDER BY topic",
							  1, argtypes, args, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the eventlog topic catalog");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		ElRetention *r = palloc0(sizeof(ElRetention));
		bool		isnull;
		Datum		d;

		strlcpy(r->topic, SPI_getvalue(tup, desc, 1), sizeof(r->topic));
		d = SPI_getbinval(tup, desc, 2, &isnull);
		r->has_time = !isnull;
		if (!isnull)
			r->cutoff = DatumGetTimestampTz(d);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		r->has_bytes = !isnull;
		if (!isnull)
			r->bytes = DatumGetInt64(d);
		result = lappend(result, r);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return result;
}

/*
 * One pass of the worker over every topic, one transaction per partition:
 * the locks of a DROP are held no longer than that.  A partition that
 * fails (dropped meanwhile, say) is reported and the pass goes on.
 */
void
el_retention_pass(void)
{
	List	   *settings;
	ListCell   *lc;
	MemoryContext pass_cxt = AllocSetContextCreate(TopMemoryContext, "eventlog retention",
												   ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt;

	/* A worker has no client statements: now() must be set for the cutoff. */
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	oldcxt = MemoryContextSwitchTo(pass_cxt);
	settings = el_retention_settings(NULL);
	MemoryContextSwitchTo(oldcxt);
	PopActiveSnapshot();
	CommitTransactionCommand();

	foreach(lc, settings)
	{
		ElRetention *ret = lfirst(lc);
		volatile int32 p;
		volatile int32 npartitions = 1;

		for (p = 0; p < npartitions; p++)
		{
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			PG_TRY();
			{
				ElTopic		topic;
				List	   *dropped = NIL;

				if (el_topic_lookup(ret->topic, true, &topic))
				{
					npartitions = topic.npartitions;
					el_retain_partition(&topic, p, ret, true, &dropped);
					if (dropped != NIL)
						ereport(DEBUG1,
								(errmsg("dropped %d segment(s) of partition %d of topic \"%s\"",
										list_length(dropped), p, ret->topic)));
				}
				PopActiveSnapshot();
				CommitTransactionCommand();
			}
			PG_CATCH();
			{
				/* report, and go on with the next partition */
				EmitErrorReport();
				FlushErrorState();
				AbortCurrentTransaction();
			}
			PG_END_TRY();
			CHECK_FOR_INTERRUPTS();
		}
	}
	MemoryContextDelete(pass_cxt);
}

/*
 * enforce_retention(topic): a pass now over one topic (NULL: every topic
 * the caller owns), returning the segments dropped.
 */
Datum
eventlog_enforce_retention(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *only = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	List	   *settings;
	ListCell   *lc;

	PreventCommandIfReadOnly("eventlog.enforce_retention()");
	InitMaterializedSRF(fcinfo, 0);
	if (only)
	{
		ElTopic		topic;

		el_topic_lookup(only, false, &topic);
	}
	settings = el_retention_settings(only);

	foreach(lc, settings)
	{
		ElRetention *ret = lfirst(lc);
		ElTopic		topic;
		int32		p;

		if (!el_topic_lookup(ret->topic, true, &topic))
			continue;
		if (!el_rel_ownercheck(topic.parent, GetUserId()))
		{
			if (only)
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("must be owner of topic \"%s\"", topic.name)));
			continue;
		}
		for (p = 0; p < topic.npartitions; p++)
		{
			List	   *dropped = NIL;
			ListCell   *dc;

			el_retain_partition(&topic, p, ret, false, &dropped);
			foreach(dc, dropped)
			{
				ElDropped  *d = lfirst(dc);
				Datum		values[4];
				bool		nulls[4] = {false, false, false, false};

				values[0] = CStringGetTextDatum(topic.name);
				values[1] = Int32GetDatum(d->partition);
				values[2] = Int64GetDatum(d->lo);
				values[3] = Int64GetDatum(d->hi);
				tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			}
		}
	}
	return (Datum) 0;
}

/*
 * topic_segments(topic): the segments of a topic's partitions, with their
 * bounds, the offsets they hold, their newest timestamp and size.
 */
Datum
eventlog_topic_segments(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *name = el_text_arg(fcinfo, 0, "topic");
	ElTopic		topic;
	int32		p;

	InitMaterializedSRF(fcinfo, 0);
	if (!el_topic_lookup(name, true, &topic))
		return (Datum) 0;

	for (p = 0; p < topic.npartitions; p++)
	{
		ElLog		log;
		int			i;

		el_log_open(&log, &topic, p);
		for (i = 0; i < log.nsegments; i++)
		{
			Relation	rel = el_log_open_segment(&log, i, AccessShareLock);
			ElMetaInfo	meta;
			TimestampTz max_ts;
			Datum		values[8];
			bool		nulls[8] = {false, false, false, false, false, false, false, false};

			if (rel == NULL)
				continue;
			el_read_meta(rel, &meta);
			max_ts = el_max_ts(rel, &meta);
			values[0] = Int32GetDatum(p);
			values[1] = ObjectIdGetDatum(log.segments[i].relid);
			values[2] = Int64GetDatum(log.segments[i].lo);
			values[3] = Int64GetDatum(log.segments[i].hi);
			if (meta.exists && meta.earliest_offset < meta.next_offset)
			{
				values[4] = Int64GetDatum(meta.earliest_offset);
				values[5] = Int64GetDatum(meta.next_offset);
			}
			else
				nulls[4] = nulls[5] = true;
			if (max_ts == DT_NOBEGIN)
				nulls[6] = true;
			else
				values[6] = TimestampTzGetDatum(max_ts);
			values[7] = Int64GetDatum(el_segment_bytes(rel));
			relation_close(rel, AccessShareLock);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		el_log_close(&log);
	}
	return (Datum) 0;
}
