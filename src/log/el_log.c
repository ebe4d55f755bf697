/*
 * el_log.c
 *		A topic partition as one log over its segments.
 *
 * The relation of a partition ("topic$p") is partitioned by RANGE ("offset");
 * its partitions, the segments, are eventlog relations holding the offsets
 * [lo, hi) of their bounds, as Kafka's segment files hold offsets from their
 * base offset on.  Retention drops whole segments (el_retention.c), so no
 * record is ever deleted row by row and nothing needs vacuuming afterwards.
 *
 * Records are appended to the tail: the last segment whose offsets are in
 * use.  The worker creates the next segment before the tail is full; a
 * producer that fills the tail and finds no next segment has it made in a
 * transaction of its own (el_segmaker.c).
 * A segment is in use once it holds records or a floor (el_segment_used), so
 * a segment created ahead stays out of the way until the tail before it is
 * full, and the tail lock of each segment (its metapage) decides where each
 * offset goes.
 *
 * The lock on the partition's relation is held only while its list of
 * segments is read: a segment dropped meanwhile is simply found gone when
 * opened.  So retention, which drops a segment only when nobody holds it,
 * is delayed by nothing but the readers of that segment, for one call.
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "common/int.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "log/log_internal.h"
#include "storage/storage.h"

/* Offset bound of a range partition bound datum. */
static int64
el_bound_value(PartitionBoundInfo bi, int i)
{
	if (bi->kind && bi->kind[i][0] == PARTITION_RANGE_DATUM_MINVALUE)
		return 0;
	if (bi->kind && bi->kind[i][0] == PARTITION_RANGE_DATUM_MAXVALUE)
		return PG_INT64_MAX;
	return DatumGetInt64(bi->datums[i][0]);
}

/* Opens the log of one partition of a topic. */
void
el_log_open(ElLog *log, ElTopic *topic, int32 partition)
{
	memcpy(&log->topic, topic, sizeof(ElTopic));
	log->partition = partition;
	log->relid = el_topic_leaf(topic, partition);
	log->segments = NULL;
	log->nsegments = 0;
	el_log_refresh(log);
}

/*
 * Opens the log of a partition given its relation (for partition_state()):
 * the relation's name stands in for the topic in messages.
 */
void
el_log_open_relation(ElLog *log, Oid relid)
{
	char	   *name = get_rel_name(relid);

	memset(&log->topic, 0, sizeof(ElTopic));
	strlcpy(log->topic.name, name ? name : "?", sizeof(log->topic.name));
	log->partition = -1;
	log->relid = relid;
	log->segments = NULL;
	log->nsegments = 0;
	el_log_refresh(log);
}

/* (Re)reads the list of segments. */
void
el_log_refresh(ElLog *log)
{
	Relation	rel = try_relation_open(log->relid, AccessShareLock);

	if (rel == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("topic \"%s\" does not exist", log->topic.name),
				 errdetail("It was dropped while this command ran.")));

	if (log->segments)
		pfree(log->segments);
	log->nsegments = 0;

	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		PartitionDesc pd = RelationGetPartitionDesc(rel, true);
		PartitionBoundInfo bi = pd->boundinfo;
		int			i;

		log->segmented = true;
		log->segments = palloc(sizeof(ElSegment) * Max(pd->nparts, 1));

		/*
		 * Range bounds are sorted; indexes[i] is the partition whose upper
		 * bound is datums[i], its lower bound being datums[i - 1].
		 */
		for (i = 1; bi != NULL && i < bi->ndatums; i++)
		{
			int			idx = bi->indexes[i];
			ElSegment  *seg;

			if (idx < 0)
				continue;
			seg = &log->segments[log->nsegments++];
			seg->relid = pd->oids[idx];
			seg->lo = el_bound_value(bi, i - 1);
			seg->hi = el_bound_value(bi, i);
		}
	}
	else if (rel->rd_rel->relkind == RELKIND_RELATION && el_is_eventlog_relation(rel))
	{
		/* A partition made before segments existed: one unbounded segment. */
		log->segmented = false;
		log->segments = palloc(sizeof(ElSegment));
		log->segments[0].relid = log->relid;
		log->segments[0].lo = 0;
		log->segments[0].hi = PG_INT64_MAX;
		log->nsegments = 1;
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation \"%s\" of topic \"%s\" is not an eventlog partition",
						RelationGetRelationName(rel), log->topic.name),
				 errdetail("A partition is stored in eventlog relations partitioned by \"offset\".")));

	/* The list is ours now; see the header comment for why not to keep the lock. */
	relation_close(rel, AccessShareLock);
}

void
el_log_close(ElLog *log)
{
	if (log->segments)
		pfree(log->segments);
	log->segments = NULL;
	log->nsegments = 0;
}

/*
 * Opens one segment, or returns NULL if it was dropped (by retention) since
 * the list was read.
 */
Relation
el_log_open_segment(ElLog *log, int seg, LOCKMODE lockmode)
{
	Relation	rel = try_relation_open(log->segments[seg].relid, lockmode);

	if (rel == NULL)
		return NULL;
	if (rel->rd_rel->relkind != RELKIND_RELATION || !el_is_eventlog_relation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("relation \"%s\" of topic \"%s\" is not stored by the eventlog access method",
						RelationGetRelationName(rel), log->topic.name),
				 errhint("Every partition of a partition of a topic must be an eventlog relation.")));
	return rel;
}

/*
 * Whether a segment's offsets are in use: it holds records (committed or
 * not), had records before a TRUNCATE, or carries a floor.  The first
 * segment of a partition counts as soon as it has a metapage.
 */
bool
el_segment_used(ElSegment *segment, ElMetaInfo *meta)
{
	return meta->exists &&
		(meta->next_offset > segment->lo || meta->floor_offset >= segment->lo);
}

/* Reads a segment's metapage; false if the segment is gone. */
static bool
el_segment_meta(ElLog *log, int seg, ElMetaInfo *meta)
{
	Relation	rel = el_log_open_segment(log, seg, AccessShareLock);

	if (rel == NULL)
	{
		memset(meta, 0, sizeof(ElMetaInfo));
		return false;
	}
	el_read_meta(rel, meta);
	relation_close(rel, AccessShareLock);
	return true;
}

/*
 * The tail: the last segment in use (the first one if none is), with its
 * metapage in *meta.  Offsets are assigned there next.
 */
int
el_log_tail(ElLog *log, ElMetaInfo *meta)
{
	int			i;

	for (i = log->nsegments - 1; i >= 0; i--)
	{
		if (el_segment_meta(log, i, meta) && el_segment_used(&log->segments[i], meta))
			return i;
	}
	memset(meta, 0, sizeof(ElMetaInfo));
	if (log->nsegments > 0)
	{
		(void) el_segment_meta(log, 0, meta);
		meta->next_offset = Max(meta->next_offset, log->segments[0].lo);
		meta->earliest_offset = Max(meta->earliest_offset, log->segments[0].lo);
	}
	return 0;
}

/*
 * What the partition holds as a whole: the earliest offset retained (of the
 * first segment holding records) and the high watermark (the tail's next
 * offset).  Other fields are those of the tail.
 */
void
el_log_meta(ElLog *log, ElMetaInfo *info)
{
	int			tail = el_log_tail(log, info);
	int			i;

	if (log->nsegments > 0)
		info->next_offset = Max(info->next_offset, log->segments[tail].lo);
	info->earliest_offset = info->next_offset;
	for (i = 0; i <= tail && i < log->nsegments; i++)
	{
		ElMetaInfo	meta;

		if (el_segment_meta(log, i, &meta) && meta.exists &&
			meta.earliest_offset < meta.next_offset)
		{
			info->earliest_offset = meta.earliest_offset;
			return;
		}
	}
}

/* The segment whose bounds hold offset, or -1. */
int
el_log_find(ElLog *log, int64 offset)
{
	int			lo = 0;
	int			hi = log->nsegments - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		ElSegment  *seg = &log->segments[mid];

		if (offset < seg->lo)
			hi = mid - 1;
		else if (offset >= seg->hi)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/*
 * Makes sure a segment holds offset, creating one after the last segment in
 * steps of the topic's segment size; returns its index.
 */
static int
el_log_segment_for(ElLog *log, int64 offset)
{
	int			seg = el_log_find(log, offset);
	int64		span = Max(log->topic.segment_records, 1);
	int64		lo;
	int64		hi;

	if (seg >= 0)
		return seg;
	/* Made by someone else since the list was read? */
	el_log_refresh(log);
	seg = el_log_find(log, offset);
	if (seg >= 0)
		return seg;

	if (!log->segmented)
		elog(ERROR, "unsegmented partition %d of topic \"%s\" has no room for offset " INT64_FORMAT,
			 log->partition, log->topic.name, offset);
	if (log->nsegments > 0 && offset < log->segments[log->nsegments - 1].hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("offset " INT64_FORMAT " of partition %d of topic \"%s\" is below its newest segment",
						offset, log->partition, log->topic.name),
				 errdetail("Offsets of a partition only increase; older segments may have been dropped by retention.")));

	if (log->nsegments > 0)
	{
		int64		last = log->segments[log->nsegments - 1].hi;

		lo = last + ((offset - last) / span) * span;
	}
	else
		lo = offset - offset % span;
	if (pg_add_s64_overflow(lo, span, &hi))
		hi = PG_INT64_MAX;

	/*
	 * In a transaction of its own if possible: created in ours, the segment
	 * would keep the partition's relation locked until we commit, and two
	 * producers filling segments of two partitions could deadlock.
	 */
	if (!el_create_segment_apart(log->relid, lo, hi))
		el_create_segment(log->relid, lo, hi, true);
	el_log_refresh(log);
	seg = el_log_find(log, offset);
	if (seg < 0)
	{
		/* the worker gave up (a lock it could not get soon): our turn */
		el_create_segment(log->relid, lo, hi, true);
		el_log_refresh(log);
		seg = el_log_find(log, offset);
	}
	if (seg < 0)
		elog(ERROR, "segment for offset " INT64_FORMAT " of partition %d of topic \"%s\" not found after creating it",
			 offset, log->partition, log->topic.name);
	return seg;
}

/*
 * The segment this backend last appended to in this partition, if it is
 * still there: a guess at the tail that saves reading the metapages of the
 * newest segments.  A guess behind the tail costs one look at each full
 * segment in between (el_append takes nothing from a full segment).
 */
typedef struct ElTailHint
{
	Oid			relid;			/* the partition's relation (hash key) */
	Oid			segment;
} ElTailHint;

static HTAB *el_tail_hints = NULL;

static int
el_log_tail_hint(ElLog *log)
{
	ElTailHint *hint;
	int			i;

	if (el_tail_hints == NULL || !log->segmented)
		return -1;
	hint = hash_search(el_tail_hints, &log->relid, HASH_FIND, NULL);
	if (hint == NULL)
		return -1;
	for (i = log->nsegments - 1; i >= 0; i--)
	{
		ElMetaInfo	meta;

		if (log->segments[i].relid == hint->segment)
			return i;
		/* a later segment in use (a floor, offsets given): not a guess to take */
		if (el_segment_meta(log, i, &meta) && el_segment_used(&log->segments[i], &meta))
			return -1;
	}
	return -1;
}

static void
el_log_note_tail(ElLog *log, int seg)
{
	ElTailHint *hint;

	if (!log->segmented)
		return;
	if (el_tail_hints == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(ElTailHint);
		ctl.hcxt = TopMemoryContext;
		el_tail_hints = hash_create("eventlog tail hints", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	hint = hash_search(el_tail_hints, &log->relid, HASH_ENTER, NULL);
	hint->segment = log->segments[seg].relid;
}

/* Set by the worker, which creates segments ahead. */
ElLogSegmentWantedHook el_log_segment_wanted_hook = NULL;

/*
 * When an append crosses the middle of the newest segment, asks the worker
 * for the next one now, so that producers seldom have to create it.
 */
static void
el_log_check_half(ElLog *log, int seg, int64 first, int64 last)
{
	ElSegment  *s = &log->segments[seg];
	int64		mid = s->lo + (s->hi - s->lo) / 2;

	if (log->segmented && seg == log->nsegments - 1 && s->hi < PG_INT64_MAX &&
		first <= mid && last >= mid && el_log_segment_wanted_hook)
		el_log_segment_wanted_hook();
}

/*
 * Appends records to the partition: from the tail on, each segment taking
 * the offsets within its bounds (records asking for an offset go to the
 * segment holding it).  appended is told about each segment's share, for
 * the indexes.  Records are prepared (compressed, toasted) for the segment
 * they go to; when a segment fills up, the rest are prepared again for the
 * next one, from their original values.
 */
void
el_log_append(ElLog *log, ElNewRecord *recs, int n, CommandId cid, ElAppendedFn appended)
{
	ItemPointerData *tids = palloc(sizeof(ItemPointerData) * Max(n, 1));
	ElNewRecord *orig = palloc(sizeof(ElNewRecord) * Max(n, 1));
	ElMetaInfo	meta;
	int			done = 0;
	int			seg;

	if (n <= 0)
		return;
	memcpy(orig, recs, sizeof(ElNewRecord) * n);
	if (recs[0].offset >= 0)
		seg = el_log_segment_for(log, recs[0].offset);
	else if ((seg = el_log_tail_hint(log)) < 0)
		seg = el_log_tail(log, &meta);

	while (done < n)
	{
		ElSegment	segment = log->segments[seg];
		Relation	rel = el_log_open_segment(log, seg, RowExclusiveLock);
		int			i;
		int			m;

		if (rel == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("segment of partition %d of topic \"%s\" for offset " INT64_FORMAT " was dropped",
							log->partition, log->topic.name, Max(recs[done].offset, segment.lo)),
					 errdetail("Retention dropped it while records were being appended.")));
		for (i = done; i < n; i++)
			el_prepare_record(rel, &recs[i]);
		m = el_append(rel, log->partition, recs + done, n - done, cid, tids + done,
					  segment.lo, segment.hi);
		if (m > 0 && appended)
			appended(rel, log->partition, recs + done, tids + done, m);
		relation_close(rel, NoLock);
		if (m > 0)
		{
			el_log_note_tail(log, seg);
			el_log_check_half(log, seg, recs[done].offset, recs[done + m - 1].offset);
		}
		done += m;
		if (done >= n)
			break;

		/* The rest goes further on: as given, or past this full segment. */
		for (i = done; i < n; i++)
		{
			recs[i].key = orig[i].key;
			recs[i].value = orig[i].value;
			recs[i].headers = orig[i].headers;
		}
		seg = el_log_segment_for(log, recs[done].offset >= 0 ? recs[done].offset : segment.hi);
	}
	el_wakeup_note_append(log->relid);
	el_producer_note();
	pfree(orig);
	pfree(tids);
}

/*
 * Raises the partition's next offset to at least floor (see el_set_floor),
 * on the segment that holds floor.
 */
void
el_log_set_floor(ElLog *log, int64 floor)
{
	int			seg = el_log_segment_for(log, floor);
	Relation	rel = el_log_open_segment(log, seg, RowExclusiveLock);

	if (rel == NULL)
		elog(ERROR, "segment for offset " INT64_FORMAT " of topic \"%s\" vanished",
			 floor, log->topic.name);
	el_set_floor(rel, floor);
	relation_close(rel, NoLock);
}

/*
 * Cuts the log back to to_offset, newest segment first, when everything from
 * there on was aborted (see el_rewind_aborted_tail).
 */
void
el_log_rewind_aborted_tail(ElLog *log, int64 to_offset)
{
	int			i;

	for (i = log->nsegments - 1; i >= 0 && log->segments[i].hi > to_offset; i--)
	{
		Relation	rel = el_log_open_segment(log, i, RowExclusiveLock);

		if (rel == NULL)
			continue;
		if (RelationGetNumberOfBlocks(rel) > 0)
			el_rewind_aborted_tail(rel, Max(to_offset, log->segments[i].lo));
		relation_close(rel, NoLock);
	}
}
