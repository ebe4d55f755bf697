/*
 * el_logreader.c
 *		Reading a partition in offset order across its segments.
 *
 * A log reader runs a segment reader (el_reader.c) over each segment in
 * turn, with the same rules: visible records are returned, aborted ones
 * skipped, and it stops at the first record whose transaction is still open
 * for the snapshot.  It moves on to the next segment only when no record can
 * arrive any more in the one it read: the segment is full, or a later one is
 * already in use.  A segment dropped by retention meanwhile is passed over,
 * so a reader behind the earliest retained offset continues from there, as
 * Kafka's auto.offset.reset=earliest does.
 */
#include "postgres.h"

#include "access/relation.h"
#include "datatype/timestamp.h"

#include "log/log_internal.h"
#include "storage/storage.h"

ElLogReader *
el_log_reader_begin(ElLog *log, Snapshot snapshot, int64 start_offset)
{
	ElLogReader *reader = palloc0(sizeof(ElLogReader));
	int			i;

	reader->log = log;
	reader->snapshot = snapshot;
	reader->position = Max(start_offset, 0);

	/* The first segment with offsets at or after the start. */
	for (i = 0; i < log->nsegments && log->segments[i].hi <= reader->position; i++)
		;
	reader->seg = i;
	return reader;
}

/* Whether a segment after seg is in use (then seg can get no more records). */
static bool
el_later_segment_used(ElLog *log, int seg)
{
	int			i;

	for (i = log->nsegments - 1; i > seg; i--)
	{
		Relation	rel = el_log_open_segment(log, i, AccessShareLock);
		ElMetaInfo	meta;

		if (rel == NULL)
			continue;
		el_read_meta(rel, &meta);
		relation_close(rel, AccessShareLock);
		if (el_segment_used(&log->segments[i], &meta))
			return true;
	}
	return false;
}

static void
el_log_reader_close_segment(ElLogReader *reader)
{
	if (reader->reader)
		el_reader_end(reader->reader);
	if (reader->rel)
		relation_close(reader->rel, AccessShareLock);
	reader->reader = NULL;
	reader->rel = NULL;
}

/*
 * Returns the next visible record, or false at the end of the log or at an
 * open transaction (then blocked is set, with its offset and xid).
 */
bool
el_log_reader_next(ElLogReader *reader, ElRecord *rec)
{
	ElLog	   *log = reader->log;

	while (!reader->done)
	{
		ElSegment  *segment;

		if (reader->seg >= log->nsegments)
		{
			reader->done = true;
			break;
		}
		segment = &log->segments[reader->seg];

		if (reader->reader == NULL)
		{
			reader->rel = el_log_open_segment(log, reader->seg, AccessShareLock);
			if (reader->rel == NULL)
			{
				/* dropped by retention: its records are gone */
				reader->seg++;
				reader->position = Max(reader->position, segment->hi);
				continue;
			}
			reader->reader = el_reader_begin(reader->rel, reader->snapshot,
											 Max(reader->position, segment->lo));
			reader->position = Max(reader->position, reader->reader->position);
		}

		if (el_reader_next(reader->reader, rec))
		{
			reader->position = reader->reader->position;
			return true;
		}
		reader->position = Max(reader->position, reader->reader->position);
		if (reader->reader->blocked)
		{
			reader->blocked = true;
			reader->blocked_offset = reader->reader->blocked_offset;
			reader->blocked_xid = reader->reader->blocked_xid;
			reader->done = true;
			break;
		}

		/*
		 * The end of what this segment shows.  A segment that is not full
		 * may still be the tail, and get more records at the position.
		 */
		if (reader->position < segment->hi &&
			!el_later_segment_used(log, reader->seg))
		{
			reader->done = true;
			break;
		}
		el_log_reader_close_segment(reader);
		reader->seg++;
		if (reader->seg < log->nsegments)
			reader->position = Max(reader->position, log->segments[reader->seg].lo);
	}
	el_log_reader_close_segment(reader);
	return false;
}

void
el_log_reader_end(ElLogReader *reader)
{
	el_log_reader_close_segment(reader);
	pfree(reader);
}

/*
 * Last stable offset of a partition now (not under a snapshot): the offset
 * of the first record whose transaction is still running, or the high
 * watermark.  Each segment is read from its settled prefix on (see
 * el_last_stable_offset).  *meta gets the partition's offsets, as
 * el_log_meta gives them, from the same one pass over the segments.
 */
int64
el_log_last_stable_offset(ElLog *log, ElMetaInfo *meta, TransactionId *held_by)
{
	ElMetaInfo	tailmeta;
	int			tail = 0;
	bool		have_earliest = false;
	int64		earliest = 0;
	int64		lso = -1;
	int			i;

	*held_by = InvalidTransactionId;
	memset(&tailmeta, 0, sizeof(tailmeta));
	for (i = 0; i < log->nsegments; i++)
	{
		Relation	rel = el_log_open_segment(log, i, AccessShareLock);
		ElMetaInfo	segmeta;

		if (rel == NULL)
			continue;
		el_read_meta(rel, &segmeta);

		/* the tail: the last segment in use, else the first */
		if (i == 0 || el_segment_used(&log->segments[i], &segmeta))
		{
			tail = i;
			tailmeta = segmeta;
		}
		if (!have_earliest && segmeta.exists && segmeta.earliest_offset < segmeta.next_offset)
		{
			have_earliest = true;
			earliest = segmeta.earliest_offset;
		}

		if (lso < 0)
		{
			TransactionId holder;
			int64		seglso = el_last_stable_offset(rel, &segmeta, &holder);

			if (TransactionIdIsValid(holder))
			{
				lso = seglso;
				*held_by = holder;
			}

			/*
			 * A full segment with nothing running gets no more records:
			 * say so, so that the next look at it reads its metapage only.
			 */
			else if (segmeta.exists && segmeta.next_offset >= log->segments[i].hi)
				el_note_all_settled(rel, &segmeta);
		}
		relation_close(rel, AccessShareLock);
	}

	*meta = tailmeta;
	if (log->nsegments > 0)
		meta->next_offset = Max(meta->next_offset, log->segments[tail].lo);
	meta->earliest_offset = have_earliest ? earliest : meta->next_offset;
	return lso >= 0 ? lso : meta->next_offset;
}

/*
 * First offset whose record has a timestamp at or after ts, by Kafka's rule
 * (see el_offset_for_time): in the first segment whose largest timestamp
 * reaches ts.  The high watermark if no record is that recent.
 */
int64
el_log_offset_for_time(ElLog *log, TimestampTz ts)
{
	ElMetaInfo	meta;
	int			i;

	for (i = 0; i < log->nsegments; i++)
	{
		Relation	rel = el_log_open_segment(log, i, AccessShareLock);
		int64		offset = -1;

		if (rel == NULL)
			continue;
		el_read_meta(rel, &meta);
		if (el_max_ts(rel, &meta) >= ts)
			offset = el_offset_for_time(rel, ts);
		relation_close(rel, AccessShareLock);
		if (offset >= 0)
			return offset;
	}
	el_log_meta(log, &meta);
	return meta.next_offset;
}
