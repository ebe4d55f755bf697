/*
 * compat.c
 *		The table access method callbacks whose signatures differ between
 *		PostgreSQL majors: thin adapters onto the storage layer's scans
 *		(el_scan.c), which are the same for every major.
 */
#include "postgres.h"

#include "storage/bufmgr.h"

#include "compat/compat.h"
#include "storage/el_scan.h"

/* ---- ANALYZE: the next sampled block ---- */

#if PG_VERSION_NUM >= 170000
bool
el_compat_analyze_next_block(TableScanDesc scan, ReadStream *stream)
{
	Buffer		buffer = read_stream_next_buffer(stream, NULL);

	if (!BufferIsValid(buffer))
		return false;			/* every sampled block was seen */
	el_scan_analyze_buffer(scan, buffer);
	return true;
}
#else
bool
el_compat_analyze_next_block(TableScanDesc scan, BlockNumber blockno,
							 BufferAccessStrategy bstrategy)
{
	el_scan_analyze_buffer(scan, ReadBufferExtended(scan->rs_rd, MAIN_FORKNUM, blockno,
												   RBM_NORMAL, bstrategy));
	return true;
}
#endif

/* ---- Bitmap scans ---- */

#if PG_VERSION_NUM >= 180000
bool
el_compat_bitmap_next_tuple(TableScanDesc scan, TupleTableSlot *slot, bool *recheck,
							uint64 *lossy_pages, uint64 *exact_pages)
{
	while (!el_scan_bitmap_record(scan, slot))
	{
		TBMIterateResult tbmres;
		OffsetNumber offsets[TBM_MAX_TUPLES_PER_PAGE];
		int			noffsets = -1;

		if (!tbm_iterate(&scan->st.rs_tbmiterator, &tbmres))
			return false;
		if (tbmres.lossy)
			(*lossy_pages)++;
		else
		{
			noffsets = tbm_extract_page_tuple(&tbmres, offsets, TBM_MAX_TUPLES_PER_PAGE);
			(*exact_pages)++;
		}
		*recheck = tbmres.recheck;
		el_scan_bitmap_page(scan, tbmres.blockno, offsets, noffsets);
	}
	return true;
}
#else
bool
el_compat_bitmap_next_block(TableScanDesc scan, TBMIterateResult *tbmres)
{
	return el_scan_bitmap_page(scan, tbmres->blockno, tbmres->offsets, tbmres->ntuples);
}

bool
el_compat_bitmap_next_tuple(TableScanDesc scan, TBMIterateResult *tbmres, TupleTableSlot *slot)
{
	return el_scan_bitmap_record(scan, slot);
}
#endif
