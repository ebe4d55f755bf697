/*
 * el_wal.c
 *		WAL logging of page changes as generic WAL records.
 *
 * Every change to an eventlog page is logged as a record of core's generic
 * resource manager (RM_GENERIC_ID), which crash recovery, standbys and
 * point-in-time recovery replay with no library loaded.  The records are
 * those GenericXLogFinish() writes: per page either a full image, or a delta
 * made of fragments [uint16 offset][uint16 length][bytes], applied in order
 * by generic_redo(), which then zeroes the hole between pd_lower and
 * pd_upper.
 *
 * What differs is how the delta is found.  GenericXLogFinish() compares the
 * old and new page byte by byte, over everything below pd_lower: for an
 * append of one small record to a half-full page, that comparison was most
 * of the cost of producing it.  Here the pages are compared a machine word
 * at a time, and the fragments are cut at word boundaries (a fragment may
 * carry a few unchanged bytes at its ends, which replay rewrites with the
 * same values).  The bytes past the old pd_lower (the hole, zero on every
 * page) are taken as changed without comparing, as generic WAL does: that is
 * where appended records go.
 *
 * As with the generic WAL API, callers change a private copy of each page
 * and nothing reaches the buffers until el_wal_finish(), which applies the
 * copies and logs them in one critical section; an error before that leaves
 * the buffers untouched.  Relations that need no WAL (temporary ones, or
 * created in this transaction under wal_level=minimal) are changed in place.
 */
#include "postgres.h"

#include "access/rmgr.h"
#include "access/xloginsert.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"

#include "storage/storage_internal.h"

/* One fragment header: offset and length, as generic_redo() reads them. */
#define EL_FRAGMENT_HEADER	(2 * sizeof(uint16))

/* Unchanged stretches are passed over this many words at a time. */
#define EL_SKIP_WORDS		8

/* Pages of a record, as generic WAL allows (MAX_GENERIC_XLOG_PAGES). */
#define EL_WAL_MAX_PAGES	4

/* A registered page: its private copy, and its delta once computed. */
typedef struct ElWalPage
{
	Buffer		buffer;
	bool		full_image;
	char	   *image;			/* BLCKSZ bytes, MAXALIGNed (palloc) */
	char	   *delta;			/* BLCKSZ bytes */
	int			delta_len;
} ElWalPage;

/*
 * Appends one fragment to the page's delta: false if it would not fit, in
 * which case the page is logged whole (a delta that large saves nothing).
 */
static bool
el_wal_fragment(ElWalPage *wp, int start, int end)
{
	uint16		offset = (uint16) start;
	uint16		length = (uint16) (end - start);

	if (wp->delta_len + EL_FRAGMENT_HEADER + length > BLCKSZ)
		return false;
	memcpy(wp->delta + wp->delta_len, &offset, sizeof(offset));
	memcpy(wp->delta + wp->delta_len + sizeof(offset), &length, sizeof(length));
	memcpy(wp->delta + wp->delta_len + EL_FRAGMENT_HEADER, wp->image + start, length);
	wp->delta_len += EL_FRAGMENT_HEADER + length;
	return true;
}

/*
 * Adds the fragment [start, end) found changed a word at a time, less the
 * unchanged bytes at its ends (compared only below trusted_end, where the
 * page's bytes can be trusted): the WAL carries exactly what changed.
 */
static bool
el_wal_emit(ElWalPage *wp, const char *cur, int start, int end, int trusted_end)
{
	const char *image = wp->image;

	while (start < end && start < trusted_end && cur[start] == image[start])
		start++;
	while (end > start && end <= trusted_end && cur[end - 1] == image[end - 1])
		end--;
	if (start == end)
		return true;
	return el_wal_fragment(wp, start, end);
}

/*
 * Adds the fragments that turn region [start, end) of the buffer's page
 * into the copy's.  The page's bytes are compared a word at a time from
 * start up to valid_end, as far as whole words go; the rest is written
 * (from the old pd_lower on, the page had its hole there, which replay does
 * not keep), less the unchanged bytes before valid_end at its start.  Two
 * changed stretches with an unchanged word between them are separate
 * fragments (a word costs more than a fragment header).  False if the delta
 * outgrew its buffer.
 */
static bool
el_wal_region(ElWalPage *wp, const char *cur, int start, int end, int valid_end)
{
	const char *image = wp->image;
	int			trusted_end = Max(start, Min(end, valid_end));
	int			words = (trusted_end - start) / (int) sizeof(uint64);
	int			frag = -1;		/* start of the pending fragment */
	int			frag_end = -1;	/* end of its changed bytes */
	int			i = start;

	for (; words > 0; words--, i += sizeof(uint64))
	{
		uint64		a;
		uint64		b;

		/* Outside a fragment, pass over equal blocks at memcmp's pace. */
		while (frag < 0 && words > EL_SKIP_WORDS &&
			   memcmp(cur + i, image + i, EL_SKIP_WORDS * sizeof(uint64)) == 0)
		{
			words -= EL_SKIP_WORDS;
			i += EL_SKIP_WORDS * sizeof(uint64);
		}
		memcpy(&a, cur + i, sizeof(a));
		memcpy(&b, image + i, sizeof(b));
		if (a != b)
		{
			if (frag < 0)
				frag = i;
			frag_end = i + sizeof(uint64);
		}
		else if (frag >= 0)
		{
			if (!el_wal_emit(wp, cur, frag, frag_end, trusted_end))
				return false;
			frag = -1;
		}
	}
	if (i < end)
	{
		if (frag < 0)
			frag = i;
		frag_end = end;
	}
	if (frag >= 0 && !el_wal_emit(wp, cur, frag, frag_end, trusted_end))
		return false;
	return true;
}

/*
 * The delta from the buffer's page to the copy, over the two parts replay
 * keeps: below pd_lower and from pd_upper on.  A page whose delta would not
 * fit, or whose pd_upper moved down into its old hole (eventlog pages keep
 * theirs at the special space), is logged as a full image instead.
 */
static void
el_wal_delta(ElWalPage *wp)
{
	const char *cur = BufferGetPage(wp->buffer);
	PageHeader	old = (PageHeader) cur;
	PageHeader	new = (PageHeader) wp->image;

	wp->delta_len = 0;
	if (new->pd_upper < old->pd_upper ||
		!el_wal_region(wp, cur, 0, new->pd_lower, old->pd_lower) ||
		!el_wal_region(wp, cur, new->pd_upper, BLCKSZ, BLCKSZ))
		wp->full_image = true;
}

/* Makes the page the copy, with the hole zero, as replay leaves it. */
static void
el_wal_copy(Page page, const char *image)
{
	PageHeader	hdr = (PageHeader) image;

	memcpy(page, image, hdr->pd_lower);
	memset(page + hdr->pd_lower, 0, hdr->pd_upper - hdr->pd_lower);
	memcpy(page + hdr->pd_upper, image + hdr->pd_upper, BLCKSZ - hdr->pd_upper);
}

/*
 * Applies a delta to the page as replay does: cheaper than copying the page
 * back when a small record was appended.  The hole is zero on every page
 * (each change leaves it so); what leaves the used parts joins it zeroed.
 */
static void
el_wal_apply(Page page, const char *delta, int len)
{
	PageHeader	hdr = (PageHeader) page;
	int			old_lower = hdr->pd_lower;
	int			old_upper = hdr->pd_upper;
	int			pos = 0;

	while (pos < len)
	{
		uint16		offset;
		uint16		length;

		memcpy(&offset, delta + pos, sizeof(offset));
		memcpy(&length, delta + pos + sizeof(offset), sizeof(length));
		memcpy(page + offset, delta + pos + EL_FRAGMENT_HEADER, length);
		pos += EL_FRAGMENT_HEADER + length;
	}
	if (hdr->pd_lower < old_lower)
		memset(page + hdr->pd_lower, 0, old_lower - hdr->pd_lower);
	if (hdr->pd_upper > old_upper)
		memset(page + old_upper, 0, hdr->pd_upper - old_upper);
}

/* Starts a set of page changes to rel, logged as one record. */
void
el_wal_start(ElWal *wal, Relation rel)
{
	wal->logged = RelationNeedsWAL(rel);
	wal->npages = 0;
	wal->pages = NULL;
}

/*
 * Registers an exclusively locked buffer (held until after el_wal_finish)
 * and returns the page to modify: a copy for logged relations.  new_page
 * logs a full image (of the page as it is at finish).  A buffer registered
 * twice gets the same copy.
 */
Page
el_wal_register(ElWal *wal, Buffer buffer, bool new_page)
{
	ElWalPage  *wp;
	int			i;

	for (i = 0; i < wal->npages; i++)
		if (wal->pages[i].buffer == buffer)
			return (Page) (wal->logged ? wal->pages[i].image : BufferGetPage(buffer));
	if (wal->npages >= EL_WAL_MAX_PAGES)
		elog(ERROR, "an eventlog WAL record changes at most %d pages", EL_WAL_MAX_PAGES);
	if (wal->pages == NULL)
		wal->pages = palloc(sizeof(ElWalPage) * EL_WAL_MAX_PAGES);

	wp = &wal->pages[wal->npages++];
	wp->buffer = buffer;
	wp->full_image = new_page;
	wp->image = NULL;
	wp->delta = NULL;
	wp->delta_len = 0;
	if (!wal->logged)
		return BufferGetPage(buffer);
	/* Both allocated now: nothing may be allocated in the critical section. */
	wp->image = palloc(BLCKSZ);
	memcpy(wp->image, BufferGetPage(buffer), BLCKSZ);
	if (!new_page)
		wp->delta = palloc(BLCKSZ);
	return (Page) wp->image;
}

/* Applies and logs the changes atomically. */
void
el_wal_finish(ElWal *wal)
{
	XLogRecPtr	lsn;
	int			i;

	if (!wal->logged)
	{
		for (i = 0; i < wal->npages; i++)
			MarkBufferDirty(wal->pages[i].buffer);
		if (wal->pages)
			pfree(wal->pages);
		return;
	}

	/* Deltas first: they only read the pages. */
	for (i = 0; i < wal->npages; i++)
		if (!wal->pages[i].full_image)
			el_wal_delta(&wal->pages[i]);

	XLogBeginInsert();
	START_CRIT_SECTION();
	for (i = 0; i < wal->npages; i++)
	{
		ElWalPage  *wp = &wal->pages[i];
		Page		page = BufferGetPage(wp->buffer);

		if (wp->full_image)
			el_wal_copy(page, wp->image);
		else
			el_wal_apply(page, wp->delta, wp->delta_len);
		MarkBufferDirty(wp->buffer);

		if (wp->full_image)
			XLogRegisterBuffer(i, wp->buffer, REGBUF_FORCE_IMAGE | REGBUF_STANDARD);
		else
		{
			XLogRegisterBuffer(i, wp->buffer, REGBUF_STANDARD);
			XLogRegisterBufData(i, wp->delta, wp->delta_len);
		}
	}
	lsn = XLogInsert(RM_GENERIC_ID, 0);
	for (i = 0; i < wal->npages; i++)
		PageSetLSN(BufferGetPage(wal->pages[i].buffer), lsn);
	END_CRIT_SECTION();

	for (i = 0; i < wal->npages; i++)
	{
		pfree(wal->pages[i].image);
		if (wal->pages[i].delta)
			pfree(wal->pages[i].delta);
	}
	pfree(wal->pages);
	wal->pages = NULL;
	wal->npages = 0;
}
