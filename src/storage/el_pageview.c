/*
 * el_pageview.c
 *		Copying a data page out of shared buffers for reading.
 *
 * Readers take a share lock, compute the verdict of every run under their
 * snapshot (setting hint bits on the shared page as they go), copy the page
 * and let go of the buffer.  Records are immutable once appended, so the
 * copy stays right; and appends change the shared page in place (el_wal.c),
 * so a private copy is also what keeps readers clear of them.
 *
 * A reader that starts in the middle of a page (a consumer at the tail, the
 * worker looking for new commits) needs neither the verdicts nor the bytes
 * of the records before its start: only the runs from the one holding the
 * start on are judged and copied.  At the tail of a busy partition that is
 * a run or two instead of a page of them.
 */
#include "postgres.h"

#include "storage/bufmgr.h"

#include "storage/storage_internal.h"

/*
 * Walks the runs of a locked data page, filling positions, and verdicts from
 * record number skip on (the runs wholly before it are not judged).  Returns
 * where the first run judged starts (pd_lower if none).
 */
static uint16
el_view_walk(Relation rel, Buffer buffer, Page page, Snapshot snapshot, ElPageView *view,
			 int skip)
{
	ElPageOpaque opaque = ElPageGetOpaque(page);
	uint16		lower = ((PageHeader) page)->pd_lower;
	uint16		copy_from = lower;
	uint16		pos = MAXALIGN(SizeOfPageHeaderData);
	int			n = 0;

	while (n < opaque->nrecords)
	{
		ElRunHeader *run;
		ElVerdict	verdict;
		uint16		runpos;
		int			i;

		pos = INTALIGN(pos);
		if (pos + sizeof(ElRunHeader) > lower)
			break;
		runpos = pos;
		run = (ElRunHeader *) (page + pos);
		if (n + run->nrecords > skip)
		{
			verdict = el_run_verdict(run, buffer, snapshot);
			copy_from = Min(copy_from, runpos);
		}
		else
			verdict = EL_INVISIBLE; /* before the start: never looked at */
		pos += sizeof(ElRunHeader);

		for (i = 0; i < run->nrecords && n < EL_MAX_RECORDS_PER_PAGE; i++)
		{
			uint16		len;

			memcpy(&len, page + pos, sizeof(uint16));
			if (len < EL_RECORD_HEADER_SIZE || pos + len > lower)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("corrupted record at block %u position %u of relation \"%s\"",
								BufferGetBlockNumber(buffer), pos,
								RelationGetRelationName(rel))));
			view->recpos[n] = pos;
			view->runpos[n] = runpos;
			view->verdict[n] = (uint8) verdict;
			n++;
			pos += len;
		}
	}

	if (n != opaque->nrecords)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("block %u of relation \"%s\" holds %d records, its header says %u",
						BufferGetBlockNumber(buffer), RelationGetRelationName(rel),
						n, opaque->nrecords)));
	view->nrecords = n;
	return copy_from;
}

/*
 * Loads block blkno into view with verdicts under snapshot (NULL: classify,
 * see el_run_verdict).  Returns false if the block is not a data page (a page
 * extended but never written before a crash reads as empty).
 */
bool
el_view_load(Relation rel, BlockNumber blkno, Snapshot snapshot,
			 ElPageView *view, BufferAccessStrategy strategy)
{
	return el_view_load_from(rel, blkno, snapshot, view, strategy, 0);
}

/*
 * el_view_load for a reader starting at start_offset: the records of the
 * block before it get no verdict and are not copied (view->start is the
 * first record number that may be looked at).
 */
bool
el_view_load_from(Relation rel, BlockNumber blkno, Snapshot snapshot,
				  ElPageView *view, BufferAccessStrategy strategy, int64 start_offset)
{
	return el_view_load_pinned(rel, ReadBufferExtended(rel, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy),
							   snapshot, view, start_offset);
}

/* el_view_load_from for a buffer the caller pinned; the pin is released. */
bool
el_view_load_pinned(Relation rel, Buffer buffer, Snapshot snapshot, ElPageView *view,
					int64 start_offset)
{
	Page		page;
	bool		isdata;

	view->blkno = BufferGetBlockNumber(buffer);
	view->nrecords = 0;
	view->first_offset = 0;
	view->sealed = false;
	view->start = 0;

	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buffer);

	isdata = el_page_is_data(page);
	if (isdata)
	{
		ElPageOpaque opaque = ElPageGetOpaque(page);
		int64		skip = Max(start_offset - opaque->first_offset, 0);
		uint16		from;

		view->first_offset = opaque->first_offset;
		view->sealed = (opaque->flags & EL_PAGE_SEALED) != 0;
		skip = Min(skip, (int64) opaque->nrecords);
		from = el_view_walk(rel, buffer, page, snapshot, view, (int) skip);
		view->start = (int) skip;
		if (skip == 0)
			memcpy(view->data.data, page, BLCKSZ);
		else
			memcpy(view->data.data + from, page + from, ((PageHeader) page)->pd_lower - from);
	}
	UnlockReleaseBuffer(buffer);
	return isdata;
}

/* Decodes record number index of a loaded view; pointers refer to the copy. */
void
el_view_record(ElPageView *view, int index, ElRecord *rec)
{
	char	   *page = view->data.data;
	char	   *p = page + view->recpos[index];
	char	   *end;
	uint16		len;
	uint8		flags;
	ElRunHeader *run = (ElRunHeader *) (page + view->runpos[index]);
	Pointer    *slots[3];
	uint8		bits[3] = {EL_REC_HAS_KEY, EL_REC_HAS_HEADERS, EL_REC_HAS_VALUE};
	int			i;

	Assert(index >= view->start && index < view->nrecords);
	memcpy(&len, p, sizeof(uint16));
	memcpy(&flags, p + sizeof(uint16), sizeof(uint8));
	memcpy(&rec->ts, p + sizeof(uint16) + sizeof(uint8), sizeof(int64));
	end = p + len;
	p += EL_RECORD_HEADER_SIZE;

	rec->offset = view->first_offset + index;
	rec->blkno = view->blkno;
	rec->index = index;
	rec->xmin = run->xmin;

	slots[0] = &rec->key;
	slots[1] = &rec->headers;
	slots[2] = &rec->value;
	for (i = 0; i < 3; i++)
	{
		*slots[i] = NULL;
		if (!(flags & bits[i]))
			continue;
		/* Skip alignment padding before a 4-byte-header varlena. */
		if ((p - page) != INTALIGN(p - page) && *p == 0)
			p = page + INTALIGN(p - page);
		Assert(p < end);
		*slots[i] = p;
		p += VARSIZE_ANY(p);
	}
	Assert(p <= end);
	(void) end;
}
