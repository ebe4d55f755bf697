/*
 * el_reader.c
 *		Reading a partition in offset order, as Kafka's fetch does.
 *
 * A reader walks records from an offset under its snapshot: visible records
 * are returned, aborted ones skipped, and it stops at the first record whose
 * transaction is still open for the snapshot.  So a consumer never sees an
 * uncommitted record and never moves past one that may still commit, however
 * producers interleave their commits.
 */
#include "postgres.h"

#include "datatype/timestamp.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/snapmgr.h"

#include "compat/compat.h"
#include "storage/storage_internal.h"

/*
 * Where the last seek or read of a relation ended, per backend: the block
 * and its first offset.  A consumer goes on from where its previous call
 * stopped, so its next seek lands in that block or the one after it.  A
 * hint is only looked at, never trusted: a look at the block narrows the
 * search like any other.
 */
typedef struct ElSeekHint
{
	RelFileLocator locator;
	BlockNumber blkno;
	int64		first;			/* first offset of blkno, -1 if unknown */
} ElSeekHint;

#define EL_SEEK_HINTS 64

/* Looks that estimate the block from the density of offsets, then halving. */
#define EL_SEEK_ESTIMATES 4

static ElSeekHint el_seek_hints[EL_SEEK_HINTS];

static ElSeekHint *
el_seek_hint(Relation rel)
{
	return &el_seek_hints[(EL_LOCATOR_NUMBER(EL_REL_LOCATOR(rel)) ^
							EL_LOCATOR_DB(EL_REL_LOCATOR(rel))) % EL_SEEK_HINTS];
}

static void
el_seek_remember(Relation rel, BlockNumber blkno, int64 first)
{
	ElSeekHint *hint = el_seek_hint(rel);

	hint->locator = EL_REL_LOCATOR(rel);
	hint->blkno = blkno;
	hint->first = first;
}

/* Does a block whose first offset is first start at or below offset? */
static inline bool
el_starts_at_or_below(int64 first, int64 offset)
{
	return first >= 0 && first <= offset;
}

/*
 * Finds the data block holding offset (the last block whose first offset is
 * at or below it).  Offsets before the first retained one map to the first
 * data block.
 *
 * Pages are filled in offset order, and offsets are dense: between two
 * blocks whose first offsets are known, an offset's block is about where
 * its share of their offset range puts it.  So each look estimates the
 * block from the two ends of the range left (the first offset of its first
 * block, the first offset past its last one) and narrows the range by what
 * it finds; with records of similar sizes the first look lands on the block
 * or next to it, and a second one confirms it, where halving the range
 * would take a dozen looks in a log of millions of records (each a page
 * read, from disk for a cold log).  Records of very different sizes make
 * the estimates poor: after a few looks the search halves the range, so it
 * never takes more than a few looks over a binary search.
 *
 * A seek at or after where the backend's last seek or read of the relation
 * was starts by looking at that block: a consumer reading on finds its
 * block at the first look.  A seek into the tail page, which the metapage
 * read has just looked at, takes no look at all.
 */
BlockNumber
el_seek_block(Relation rel, ElMetaInfo *meta, int64 offset)
{
	ElSeekHint *hint = el_seek_hint(rel);
	BlockNumber lo = EL_FIRST_DATA_BLOCK;
	BlockNumber hi = meta->last_block;
	int64		lo_first = meta->earliest_offset;	/* estimate until looked at */
	int64		end = meta->next_offset;	/* first offset past block hi */
	int			looks = 0;

	if (hi < EL_FIRST_DATA_BLOCK)
		return InvalidBlockNumber;
	if (meta->tail_first_offset >= 0 && offset >= meta->tail_first_offset)
	{
		el_seek_remember(rel, hi, meta->tail_first_offset);
		return hi;
	}

	while (lo < hi)
	{
		BlockNumber probe;
		int64		first;

		if (looks == 0 && RelFileLocatorEquals(hint->locator, EL_REL_LOCATOR(rel)) &&
			hint->blkno > lo && hint->blkno <= hi && el_starts_at_or_below(hint->first, offset))
			probe = hint->blkno;
		else if (looks < EL_SEEK_ESTIMATES && end > lo_first)
		{
			double		share = (double) Max(offset - lo_first, 0) / (double) (end - lo_first);

			probe = lo + (BlockNumber) (share * (double) (hi - lo + 1));
			probe = Min(Max(probe, lo + 1), hi);
		}
		else
			probe = lo + (hi - lo + 1) / 2;
		looks++;

		first = el_block_first_offset(rel, probe);
		if (el_starts_at_or_below(first, offset))
		{
			lo = probe;
			lo_first = first;
		}
		else
		{
			hi = probe - 1;
			if (first >= 0)
				end = first;
		}
	}
	el_seek_remember(rel, lo, lo_first);
	return lo;
}

/*
 * Read-ahead in memory.  Copying a page out of shared buffers walks its
 * records one length after the other (el_pageview.c): on a page not in the
 * CPU's caches each step waits for memory, which was a tenth of a
 * sequential read.  So while a reader returns the records of one page it
 * pins the next block and asks, a few lines per record returned, for that
 * page's lines, which are then in cache when it gets there.  The pin is
 * only a pin: the next page is locked, judged and copied as any other when
 * the reader moves to it.
 *
 * Only a reader that went on to a second page does so: most reads that
 * start on a page end there (a fetch of one record, a consumer at the
 * tail), and pinning the next block would read it from disk for nothing
 * when it is not in shared buffers.
 */
#define EL_AHEAD_LINE		64
#define EL_AHEAD_LINES_PER_RECORD	4

static void
el_reader_ahead(ElReader *reader)
{
	Assert(reader->ahead == InvalidBuffer);
	if (!reader->view->sealed || reader->blkno + 1 > reader->meta.last_block)
		return;
	reader->ahead = ReadBufferExtended(reader->rel, MAIN_FORKNUM, reader->blkno + 1,
									   RBM_NORMAL, NULL);
	reader->ahead_next = BufferGetPage(reader->ahead);
}

static inline void
el_reader_prefetch(ElReader *reader)
{
#if defined(__GNUC__)
	const char *page;
	int			i;

	if (reader->ahead == InvalidBuffer)
		return;
	page = BufferGetPage(reader->ahead);
	for (i = 0; i < EL_AHEAD_LINES_PER_RECORD && reader->ahead_next < page + BLCKSZ; i++)
	{
		__builtin_prefetch(reader->ahead_next);
		reader->ahead_next += EL_AHEAD_LINE;
	}
#endif
}

/* Starts reading rel at start_offset under snapshot. */
ElReader *
el_reader_begin(Relation rel, Snapshot snapshot, int64 start_offset)
{
	ElReader   *reader = palloc0(sizeof(ElReader));

	reader->rel = rel;
	reader->snapshot = snapshot;
	reader->view = palloc(sizeof(ElPageView));
	reader->view->blkno = InvalidBlockNumber;
	el_read_meta(rel, &reader->meta);

	reader->position = Max(start_offset, reader->meta.earliest_offset);
	reader->blkno = el_seek_block(rel, &reader->meta, start_offset);
	if (reader->blkno == InvalidBlockNumber)
	{
		reader->done = true;
		return reader;
	}

	el_view_load_from(rel, reader->blkno, snapshot, reader->view, NULL, start_offset);
	if (start_offset > reader->view->first_offset)
		reader->index = (int) Min(start_offset - reader->view->first_offset,
								  (int64) reader->view->nrecords);
	reader->position = Max(reader->position, reader->view->first_offset + reader->index);
	return reader;
}

/*
 * Returns the next visible record, or false at the end of the log or at an
 * open transaction (then blocked is set, with its offset and xid).  position
 * is where a consumer continues: past the records returned and the aborted
 * ones skipped, never past an open one.
 */
bool
el_reader_next(ElReader *reader, ElRecord *rec)
{
	ElPageView *view = reader->view;

	while (!reader->done)
	{
		if (reader->index >= view->nrecords)
		{
			/*
			 * Only a sealed page can have a successor; the tail may still
			 * grow, but what it gets now is invisible to our snapshot.
			 */
			if (!view->sealed)
			{
				reader->done = true;
				break;
			}
			reader->blkno++;
			if (reader->blkno > reader->meta.last_block)
				el_read_meta(reader->rel, &reader->meta);
			if (reader->blkno > reader->meta.last_block)
			{
				reader->done = true;
				break;
			}
			if (reader->ahead != InvalidBuffer)
				el_view_load_pinned(reader->rel, reader->ahead, reader->snapshot, view, 0);
			else
				el_view_load(reader->rel, reader->blkno, reader->snapshot, view, NULL);
			reader->ahead = InvalidBuffer;
			el_reader_ahead(reader);
			reader->index = 0;
			if (view->nrecords > 0)
				reader->position = Max(reader->position, view->first_offset);
			continue;
		}

		switch ((ElVerdict) view->verdict[reader->index])
		{
			case EL_VISIBLE:
				el_reader_prefetch(reader);
				el_view_record(view, reader->index, rec);
				reader->index++;
				reader->position = rec->offset + 1;
				return true;
			case EL_INVISIBLE:
				/* aborted: skipped, and the position moves past it */
				reader->index++;
				reader->position = view->first_offset + reader->index;
				break;
			case EL_IN_PROGRESS:
				el_view_record(view, reader->index, rec);
				reader->blocked = true;
				reader->blocked_offset = rec->offset;
				reader->blocked_xid = rec->xmin;
				reader->done = true;
				return false;
		}
	}
	return false;
}

/* Releases a reader, remembering where it stopped for the next seek. */
void
el_reader_end(ElReader *reader)
{
	if (reader->view->blkno != InvalidBlockNumber)
		el_seek_remember(reader->rel, reader->view->blkno,
						 reader->view->nrecords > 0 ? reader->view->first_offset : -1);
	if (reader->ahead != InvalidBuffer)
		ReleaseBuffer(reader->ahead);
	pfree(reader->view);
	pfree(reader);
}

/* Running maximum timestamp of a data page, or DT_NOBEGIN if not one. */
static TimestampTz
el_block_max_ts(Relation rel, BlockNumber blkno)
{
	Buffer		buffer = ReadBuffer(rel, blkno);
	Page		page;
	TimestampTz ts = DT_NOBEGIN;

	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buffer);
	if (el_page_is_data(page))
		ts = ElPageGetOpaque(page)->max_ts;
	UnlockReleaseBuffer(buffer);
	return ts;
}

/* Largest timestamp of a relation's records (DT_NOBEGIN if it has none). */
TimestampTz
el_max_ts(Relation rel, ElMetaInfo *meta)
{
	if (!meta->exists || meta->last_block < EL_FIRST_DATA_BLOCK)
		return DT_NOBEGIN;
	return el_block_max_ts(rel, meta->last_block);
}

/*
 * First offset whose record has a timestamp at or after ts, by Kafka's rule:
 * the first record at which the running maximum timestamp reaches ts.  A
 * binary search over pages (their running maximum never decreases), then one
 * page; the high watermark if no record is that recent.
 */
int64
el_offset_for_time(Relation rel, TimestampTz ts)
{
	ElMetaInfo	meta;
	BlockNumber lo;
	BlockNumber hi;
	ElPageView *view;
	int64		result;
	int			i;

	el_read_meta(rel, &meta);
	if (meta.last_block < EL_FIRST_DATA_BLOCK ||
		el_block_max_ts(rel, meta.last_block) < ts)
		return meta.next_offset;

	lo = EL_FIRST_DATA_BLOCK;
	hi = meta.last_block;
	while (lo < hi)
	{
		BlockNumber mid = lo + (hi - lo) / 2;

		if (el_block_max_ts(rel, mid) >= ts)
			hi = mid;
		else
			lo = mid + 1;
	}

	view = palloc(sizeof(ElPageView));
	result = meta.next_offset;
	if (el_view_load(rel, lo, SnapshotAny, view, NULL))
	{
		for (i = 0; i < view->nrecords; i++)
		{
			ElRecord	rec;

			el_view_record(view, i, &rec);
			if (rec.ts >= ts)
			{
				result = rec.offset;
				break;
			}
		}
	}
	pfree(view);
	return result;
}

/*
 * Last stable offset of a relation now (not under a snapshot): the offset of
 * the first record whose transaction is still running, or the high
 * watermark.  Reads from the settled prefix on and moves it forward, so the
 * cost follows the records added since the last look, not the log.  Sets
 * *held_by to the running transaction, if any.
 */
int64
el_last_stable_offset(Relation rel, ElMetaInfo *meta, TransactionId *held_by)
{
	int64		start = meta->earliest_offset;
	int64		lso = meta->next_offset;
	ElReader   *reader;
	ElRecord	rec;

	*held_by = InvalidTransactionId;
	if (!meta->exists || meta->last_block < EL_FIRST_DATA_BLOCK ||
		meta->settled_block > meta->last_block)
		return lso;

	if (meta->settled_block > EL_FIRST_DATA_BLOCK && meta->settled_block <= meta->last_block)
	{
		int64		first = el_block_first_offset(rel, meta->settled_block);

		if (first >= 0)
			start = Max(start, first);
	}

	/* No snapshot: committed records pass, aborted are skipped, running stop. */
	reader = el_reader_begin(rel, NULL, start);
	while (el_reader_next(reader, &rec))
		CHECK_FOR_INTERRUPTS();
	if (reader->blocked)
	{
		lso = reader->blocked_offset;
		*held_by = reader->blocked_xid;
		el_note_settled(rel, reader->blkno);
	}
	else
		el_note_settled(rel, reader->meta.last_block);
	el_reader_end(reader);
	return lso;
}
