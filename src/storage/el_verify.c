/*
 * el_verify.c
 *		Checking an eventlog relation's pages against the invariants of the
 *		format, as amcheck does for heap and btree.
 *
 * Each page is copied out of its buffer under a share lock and checked in
 * the copy, with nothing trusted before it is checked: a bad length or
 * count is reported, never followed past the page.  A block that cannot
 * even be read (PostgreSQL refuses a page whose header is broken) is
 * reported with the error that refused it, and the check goes on with the
 * next block.  Problems are handed to the caller one at a time.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"

#include "storage/storage_internal.h"
#include "util/util.h"

typedef struct ElVerify
{
	Relation	rel;
	int32		partition;		/* expected partition, -1 if any */
	int64		lo;				/* bounds of the offsets it may hold */
	int64		hi;
	ElVerifyFn	report;
	void	   *arg;
	int			nproblems;
	/* the block being read */
	BlockNumber blkno;
	PGAlignedBlock copy;
	bool		isnew;
} ElVerify;

static void
el_problem(ElVerify *v, BlockNumber blkno, const char *fmt,...)
	pg_attribute_printf(3, 4);

static void
el_problem(ElVerify *v, BlockNumber blkno, const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	v->nproblems++;
	v->report(blkno, buf.data, v->arg);
	pfree(buf.data);
}

/* Copies block v->blkno out of shared buffers (in a subtransaction: see el_load). */
static void
el_load_block(void *arg)
{
	ElVerify   *v = (ElVerify *) arg;
	Buffer		buffer = ReadBufferExtended(v->rel, MAIN_FORKNUM, v->blkno, RBM_NORMAL, NULL);

	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	memcpy(v->copy.data, BufferGetPage(buffer), BLCKSZ);
	UnlockReleaseBuffer(buffer);
	v->isnew = PageIsNew((Page) v->copy.data);
}

/* Reads a block into v->copy; false, with the reason reported, if it cannot. */
static bool
el_load(ElVerify *v, BlockNumber blkno)
{
	ErrorData  *edata;

	v->blkno = blkno;
	edata = el_try(el_load_block, v);
	if (edata == NULL)
		return true;
	el_problem(v, blkno, "block cannot be read: %s", edata->message);
	FreeErrorData(edata);
	return false;
}

/* The standard page header and the special space of an eventlog page. */
static bool
el_check_header(ElVerify *v, BlockNumber blkno, uint16 page_id)
{
	PageHeader	hdr = (PageHeader) v->copy.data;

	if (hdr->pd_special != BLCKSZ - MAXALIGN(sizeof(ElPageOpaqueData)) ||
		hdr->pd_lower < SizeOfPageHeaderData || hdr->pd_lower > hdr->pd_special ||
		hdr->pd_upper < hdr->pd_lower || hdr->pd_upper > hdr->pd_special)
	{
		el_problem(v, blkno, "page header is not that of an eventlog page (lower %u, upper %u, special %u)",
				   hdr->pd_lower, hdr->pd_upper, hdr->pd_special);
		return false;
	}
	if (ElPageGetOpaque((Page) v->copy.data)->page_id != page_id)
	{
		el_problem(v, blkno, "page id is %04x, expected %04x",
				   ElPageGetOpaque((Page) v->copy.data)->page_id, page_id);
		return false;
	}
	return true;
}

/*
 * One data page: its runs and records, and its offsets and timestamps
 * against the pages before it.  *next_offset and *max_ts carry what the
 * previous data page ended with.
 */
static void
el_check_data_page(ElVerify *v, BlockNumber blkno, int64 *next_offset, TimestampTz *max_ts)
{
	char	   *page = v->copy.data;
	ElPageOpaque opaque = ElPageGetOpaque((Page) page);
	uint16		lower = ((PageHeader) page)->pd_lower;
	uint16		pos = MAXALIGN(SizeOfPageHeaderData);
	int			n = 0;

	if (opaque->nrecords > EL_MAX_RECORDS_PER_PAGE)
		el_problem(v, blkno, "page says it holds %u records, at most %d fit",
				   opaque->nrecords, (int) EL_MAX_RECORDS_PER_PAGE);
	if ((opaque->flags & ~(EL_PAGE_SEALED | EL_PAGE_FROZEN)) != 0)
		el_problem(v, blkno, "unknown page flags %04x", opaque->flags);
	if (opaque->first_offset < *next_offset)
		el_problem(v, blkno, "first offset " INT64_FORMAT " is below the next offset " INT64_FORMAT " of the pages before it",
				   opaque->first_offset, *next_offset);
	if (opaque->first_offset < v->lo || opaque->first_offset + opaque->nrecords > v->hi)
		el_problem(v, blkno, "offsets " INT64_FORMAT " to " INT64_FORMAT " lie outside the relation's bounds [" INT64_FORMAT ", " INT64_FORMAT ")",
				   opaque->first_offset, opaque->first_offset + opaque->nrecords - 1, v->lo, v->hi);
	if (opaque->max_ts < *max_ts)
		el_problem(v, blkno, "largest timestamp is below that of the pages before it");

	while (n < opaque->nrecords && n <= EL_MAX_RECORDS_PER_PAGE)
	{
		ElRunHeader run;
		int			i;

		pos = INTALIGN(pos);
		if (pos + sizeof(ElRunHeader) > lower)
		{
			el_problem(v, blkno, "runs end after %d records, the page says %u", n, opaque->nrecords);
			break;
		}
		memcpy(&run, page + pos, sizeof(ElRunHeader));
		if (run.nrecords == 0)
		{
			el_problem(v, blkno, "run at position %u has no records", pos);
			break;
		}
		if ((run.infomask & ~(EL_RUN_COMMITTED | EL_RUN_ABORTED | EL_RUN_FROZEN)) != 0 ||
			((run.infomask & EL_RUN_ABORTED) && (run.infomask & (EL_RUN_COMMITTED | EL_RUN_FROZEN))))
			el_problem(v, blkno, "run at position %u has contradictory or unknown flags %04x",
					   pos, run.infomask);
		if (!(run.infomask & EL_RUN_FROZEN) && !TransactionIdIsNormal(run.xmin))
			el_problem(v, blkno, "run at position %u has transaction id %u", pos, run.xmin);
		pos += sizeof(ElRunHeader);

		for (i = 0; i < run.nrecords; i++, n++)
		{
			uint16		len;
			uint8		flags;
			uint16		end;
			uint16		p;
			int			a;

			if (pos + EL_RECORD_HEADER_SIZE > lower)
			{
				el_problem(v, blkno, "record %d starts past the end of the records", n);
				return;
			}
			memcpy(&len, page + pos, sizeof(uint16));
			memcpy(&flags, page + pos + sizeof(uint16), sizeof(uint8));
			if (len < EL_RECORD_HEADER_SIZE || pos + len > lower)
			{
				el_problem(v, blkno, "record %d at position %u has length %u, past the end of the records (%u)",
						   n, pos, len, lower);
				return;
			}
			if ((flags & ~(EL_REC_HAS_KEY | EL_REC_HAS_HEADERS | EL_REC_HAS_VALUE)) != 0)
				el_problem(v, blkno, "record %d has unknown flags %02x", n, flags);
			/* the attributes it says it has fit in its length */
			end = pos + len;
			p = pos + EL_RECORD_HEADER_SIZE;
			for (a = 0; a < 3; a++)
			{
				static const uint8 bits[3] = {EL_REC_HAS_KEY, EL_REC_HAS_HEADERS, EL_REC_HAS_VALUE};
				Size		size;

				if (!(flags & bits[a]))
					continue;
				if (p != INTALIGN(p) && p < end && page[p] == 0)
					p = INTALIGN(p);
				if (p >= end || (!VARATT_IS_1B(page + p) && p + 4 > end))
				{
					el_problem(v, blkno, "record %d: an attribute starts past its end", n);
					break;
				}
				size = VARSIZE_ANY(page + p);
				if (size == 0 || p + size > end)
				{
					el_problem(v, blkno, "record %d: an attribute of %zu bytes runs past its end", n, size);
					break;
				}
				p += size;
			}
			pos += len;
		}
	}
	if (n == opaque->nrecords && pos < lower)
		el_problem(v, blkno, "bytes %u to %u follow the last record", pos, lower);

	*next_offset = opaque->first_offset + opaque->nrecords;
	*max_ts = Max(*max_ts, opaque->max_ts);
}

/*
 * Checks relation rel, which may hold the offsets [lo, hi) of partition
 * partition (-1: any).  Calls report for each problem found; returns how
 * many there were.
 */
int
el_verify_relation(Relation rel, int32 partition, int64 lo, int64 hi, ElVerifyFn report, void *arg)
{
	ElVerify	v;
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
	BlockNumber blkno;
	BlockNumber last_block;
	ElMetaPage	meta;
	int64		next_offset;
	TimestampTz max_ts = DT_NOBEGIN;

	memset(&v, 0, sizeof(v));
	v.rel = rel;
	v.partition = partition;
	v.lo = lo;
	v.hi = hi;
	v.report = report;
	v.arg = arg;

	if (nblocks == 0)
		return 0;				/* never written: empty */
	if (!el_load(&v, EL_META_BLOCK))
		return v.nproblems;
	if (v.isnew)
	{
		if (nblocks > 1)
			el_problem(&v, EL_META_BLOCK, "metapage is empty but the relation has %u blocks", nblocks);
		return v.nproblems;
	}
	if (!el_check_header(&v, EL_META_BLOCK, EL_META_PAGE_ID))
		return v.nproblems;
	meta = ElPageGetMeta((Page) v.copy.data);
	if (meta->magic != EL_MAGIC)
	{
		el_problem(&v, EL_META_BLOCK, "metapage magic is %08x, expected %08x", meta->magic, EL_MAGIC);
		return v.nproblems;
	}
	if (meta->version != EL_FORMAT_VERSION)
	{
		el_problem(&v, EL_META_BLOCK, "format version %u, this build reads version %d",
				   meta->version, EL_FORMAT_VERSION);
		return v.nproblems;
	}
	if (partition >= 0 && meta->partition >= 0 && meta->partition != partition)
		el_problem(&v, EL_META_BLOCK, "metapage says partition %d, the relation belongs to partition %d",
				   meta->partition, partition);
	if (meta->base_offset < lo || meta->base_offset > hi)
		el_problem(&v, EL_META_BLOCK, "base offset " INT64_FORMAT " lies outside the relation's bounds [" INT64_FORMAT ", " INT64_FORMAT ")",
				   meta->base_offset, lo, hi);
	if (meta->last_block >= nblocks)
		el_problem(&v, EL_META_BLOCK, "last block %u is past the end of the relation (%u blocks)",
				   meta->last_block, nblocks);
	if (meta->frozen_block > meta->last_block + 1 && meta->frozen_block > EL_FIRST_DATA_BLOCK)
		el_problem(&v, EL_META_BLOCK, "frozen block %u is past the last block %u",
				   meta->frozen_block, meta->last_block);
	last_block = Min(meta->last_block, nblocks - 1);
	next_offset = meta->base_offset;

	for (blkno = EL_FIRST_DATA_BLOCK; blkno <= last_block; blkno++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!el_load(&v, blkno))
			continue;
		if (v.isnew)
			continue;			/* extended but never written before a crash */
		if (!el_check_header(&v, blkno, EL_DATA_PAGE_ID))
			continue;
		el_check_data_page(&v, blkno, &next_offset, &max_ts);
	}
	return v.nproblems;
}
