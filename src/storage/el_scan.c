/*
 * el_scan.c
 *		Scans of an eventlog relation: sequential (serial and parallel), TID
 *		range, bitmap, ANALYZE sampling, fetches by TID and index builds.
 *
 * Every scan reads a page at a time through a private copy (el_pageview.c)
 * and returns records in offset order as virtual tuples whose by-reference
 * values point into that copy.  The partition column is not stored per
 * record: an eventlog relation holds one partition, named in its metapage.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "catalog/index.h"
#include "executor/executor.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/snapmgr.h"

#include "storage/el_scan.h"
#include "storage/storage_internal.h"

typedef struct ElScanDescData
{
	TableScanDescData base;
	BlockNumber nblocks;		/* blocks when the scan started */
	BlockNumber cur;			/* block in view, InvalidBlockNumber before */
	int			index;			/* next record of the view */
	bool		started;
	int32		partition;
	BufferAccessStrategy strategy;
	ElPageView *view;

	/* TID range scans */
	bool		tidrange;
	ItemPointerData mintid;
	ItemPointerData maxtid;

	/* parallel scans */
	ParallelBlockTableScanWorkerData *pwork;

	/* bitmap scans: record indexes of the current block to return */
	int			nmatches;
	int			nextmatch;
	uint16		matches[EL_MAX_RECORDS_PER_PAGE];
} ElScanDescData;

typedef ElScanDescData *ElScanDesc;

typedef struct ElIndexFetchData
{
	IndexFetchTableData base;
	int32		partition;
	ElPageView *view;
} ElIndexFetchData;

/* ---- Slots ---- */

/* Stores a decoded record as a virtual tuple. */
void
el_store_record(TupleTableSlot *slot, Relation rel, int32 partition, ElRecord *rec)
{
	Datum	   *values = slot->tts_values;
	bool	   *isnull = slot->tts_isnull;
	int			natts = slot->tts_tupleDescriptor->natts;
	int			i;

	ExecClearTuple(slot);
	for (i = 0; i < natts; i++)
		isnull[i] = true;

	values[EL_ATT_PARTITION - 1] = Int32GetDatum(partition);
	isnull[EL_ATT_PARTITION - 1] = false;
	values[EL_ATT_OFFSET - 1] = Int64GetDatum(rec->offset);
	isnull[EL_ATT_OFFSET - 1] = false;
	if (rec->key)
	{
		values[EL_ATT_KEY - 1] = PointerGetDatum(rec->key);
		isnull[EL_ATT_KEY - 1] = false;
	}
	if (rec->value)
	{
		values[EL_ATT_VALUE - 1] = PointerGetDatum(rec->value);
		isnull[EL_ATT_VALUE - 1] = false;
	}
	if (rec->headers)
	{
		values[EL_ATT_HEADERS - 1] = PointerGetDatum(rec->headers);
		isnull[EL_ATT_HEADERS - 1] = false;
	}
	values[EL_ATT_TS - 1] = TimestampTzGetDatum(rec->ts);
	isnull[EL_ATT_TS - 1] = false;

	ExecStoreVirtualTuple(slot);
	ItemPointerSet(&slot->tts_tid, rec->blkno, rec->index + 1);
	slot->tts_tableOid = RelationGetRelid(rel);
}

static int32
el_relation_partition(Relation rel)
{
	ElMetaInfo	meta;

	el_read_meta(rel, &meta);
	return meta.partition;
}

/* ---- Sequential scans ---- */

TableScanDesc
el_scan_begin(Relation rel, Snapshot snapshot, int nkeys, struct ScanKeyData *key,
			  ParallelTableScanDesc pscan, uint32 flags)
{
	ElScanDesc	scan = palloc0(sizeof(ElScanDescData));

	RelationIncrementReferenceCount(rel);
	scan->base.rs_rd = rel;
	scan->base.rs_snapshot = snapshot;
	scan->base.rs_nkeys = nkeys;
	scan->base.rs_flags = flags;
	scan->base.rs_parallel = pscan;
	scan->view = palloc(sizeof(ElPageView));
	scan->view->blkno = InvalidBlockNumber;
	scan->view->nrecords = 0;
	scan->cur = InvalidBlockNumber;
	scan->partition = el_relation_partition(rel);
	scan->nblocks = RelationGetNumberOfBlocks(rel);
	if (flags & (SO_TYPE_SEQSCAN | SO_TYPE_ANALYZE))
		scan->strategy = scan->nblocks > NBuffers / 4 ? GetAccessStrategy(BAS_BULKREAD) : NULL;
	if (pscan)
		scan->pwork = palloc0(sizeof(ParallelBlockTableScanWorkerData));

	if (flags & SO_TYPE_SEQSCAN)
		pgstat_count_heap_scan(rel);
	return (TableScanDesc) scan;
}

void
el_scan_end(TableScanDesc sscan)
{
	ElScanDesc	scan = (ElScanDesc) sscan;

	if (scan->base.rs_flags & SO_TEMP_SNAPSHOT)
		UnregisterSnapshot(scan->base.rs_snapshot);
	if (scan->strategy)
		FreeAccessStrategy(scan->strategy);
	RelationDecrementReferenceCount(scan->base.rs_rd);
	pfree(scan->view);
	if (scan->pwork)
		pfree(scan->pwork);
	pfree(scan);
}

void
el_scan_rescan(TableScanDesc sscan, struct ScanKeyData *key, bool set_params,
			   bool allow_strat, bool allow_sync, bool allow_pagemode)
{
	ElScanDesc	scan = (ElScanDesc) sscan;

	scan->started = false;
	scan->cur = InvalidBlockNumber;
	scan->index = 0;
	scan->view->nrecords = 0;
	scan->nmatches = scan->nextmatch = 0;
	scan->nblocks = RelationGetNumberOfBlocks(scan->base.rs_rd);
}

/* Next block to read, or InvalidBlockNumber at the end. */
static BlockNumber
el_scan_next_block(ElScanDesc scan)
{
	Relation	rel = scan->base.rs_rd;

	if (scan->base.rs_parallel)
	{
		ParallelBlockTableScanDesc pbscan = (ParallelBlockTableScanDesc) scan->base.rs_parallel;
		BlockNumber blk;

		if (!scan->started)
			table_block_parallelscan_startblock_init(rel, scan->pwork, pbscan);
		scan->started = true;
		do
			blk = table_block_parallelscan_nextpage(rel, scan->pwork, pbscan);
		while (blk == EL_META_BLOCK);
		return blk;
	}

	if (!scan->started)
	{
		scan->started = true;
		scan->cur = EL_FIRST_DATA_BLOCK;
		if (scan->tidrange)
			scan->cur = Max(ItemPointerGetBlockNumber(&scan->mintid), EL_FIRST_DATA_BLOCK);
	}
	else
		scan->cur++;

	if (scan->cur >= scan->nblocks)
		return InvalidBlockNumber;
	if (scan->tidrange && scan->cur > ItemPointerGetBlockNumber(&scan->maxtid))
		return InvalidBlockNumber;
	return scan->cur;
}

bool
el_scan_getnextslot(TableScanDesc sscan, ScanDirection direction, TupleTableSlot *slot)
{
	ElScanDesc	scan = (ElScanDesc) sscan;
	ElPageView *view = scan->view;

	if (ScanDirectionIsBackward(direction))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("backward scans are not supported on eventlog relations"),
				 errhint("Declare the cursor NO SCROLL, or read in offset order with eventlog.fetch().")));

	for (;;)
	{
		while (scan->index < view->nrecords)
		{
			int			i = scan->index++;

			if (view->verdict[i] == EL_VISIBLE)
			{
				ElRecord	rec;

				el_view_record(view, i, &rec);
				el_store_record(slot, scan->base.rs_rd, scan->partition, &rec);
				pgstat_count_heap_getnext(scan->base.rs_rd);
				return true;
			}
		}

		{
			BlockNumber blk = el_scan_next_block(scan);

			if (blk == InvalidBlockNumber)
			{
				ExecClearTuple(slot);
				return false;
			}
			if (!el_view_load(scan->base.rs_rd, blk, scan->base.rs_snapshot, view,
							  scan->strategy))
				view->nrecords = 0;
			scan->index = 0;
		}
	}
}

/* ---- TID range scans ---- */

void
el_scan_set_tidrange(TableScanDesc sscan, ItemPointer mintid, ItemPointer maxtid)
{
	ElScanDesc	scan = (ElScanDesc) sscan;

	scan->tidrange = true;
	ItemPointerCopy(mintid, &scan->mintid);
	ItemPointerCopy(maxtid, &scan->maxtid);
	el_scan_rescan(sscan, NULL, false, false, false, false);
}

bool
el_scan_getnextslot_tidrange(TableScanDesc sscan, ScanDirection direction,
							 TupleTableSlot *slot)
{
	ElScanDesc	scan = (ElScanDesc) sscan;

	while (el_scan_getnextslot(sscan, direction, slot))
	{
		if (ItemPointerCompare(&slot->tts_tid, &scan->mintid) < 0)
			continue;
		if (ItemPointerCompare(&slot->tts_tid, &scan->maxtid) > 0)
		{
			ExecClearTuple(slot);
			return false;
		}
		return true;
	}
	return false;
}

/* ---- Bitmap scans ---- */

bool
el_scan_bitmap_page(TableScanDesc sscan, BlockNumber blk, const OffsetNumber *offsets,
					int noffsets)
{
	ElScanDesc	scan = (ElScanDesc) sscan;
	ElPageView *view = scan->view;
	int			i;

	scan->nmatches = scan->nextmatch = 0;
	if (blk < EL_FIRST_DATA_BLOCK || blk >= scan->nblocks)
		return false;
	if (!el_view_load(scan->base.rs_rd, blk, scan->base.rs_snapshot, view, NULL))
		return false;

	if (noffsets >= 0)
	{
		/* exact page: the listed records */
		for (i = 0; i < noffsets; i++)
		{
			int			idx = offsets[i] - 1;

			if (idx >= 0 && idx < view->nrecords && view->verdict[idx] == EL_VISIBLE)
				scan->matches[scan->nmatches++] = idx;
		}
	}
	else
	{
		/* lossy page: every visible record, rechecked by the executor */
		for (i = 0; i < view->nrecords; i++)
			if (view->verdict[i] == EL_VISIBLE)
				scan->matches[scan->nmatches++] = i;
	}
	return scan->nmatches > 0;
}

bool
el_scan_bitmap_record(TableScanDesc sscan, TupleTableSlot *slot)
{
	ElScanDesc	scan = (ElScanDesc) sscan;
	ElRecord	rec;

	if (scan->nextmatch >= scan->nmatches)
		return false;
	el_view_record(scan->view, scan->matches[scan->nextmatch++], &rec);
	el_store_record(slot, scan->base.rs_rd, scan->partition, &rec);
	pgstat_count_heap_fetch(scan->base.rs_rd);
	return true;
}

/* ---- ANALYZE ---- */

void
el_scan_analyze_buffer(TableScanDesc sscan, Buffer buffer)
{
	ElScanDesc	scan = (ElScanDesc) sscan;

	scan->index = 0;
	scan->view->nrecords = 0;
	/* The metapage holds no records; a data page is copied with its verdicts. */
	if (BufferGetBlockNumber(buffer) < EL_FIRST_DATA_BLOCK)
		ReleaseBuffer(buffer);
	else if (!el_view_load_pinned(scan->base.rs_rd, buffer, NULL, scan->view, 0))
		scan->view->nrecords = 0;
}

bool
el_scan_analyze_next_tuple(TableScanDesc sscan, TransactionId OldestXmin,
						   double *liverows, double *deadrows, TupleTableSlot *slot)
{
	ElScanDesc	scan = (ElScanDesc) sscan;
	ElPageView *view = scan->view;

	while (scan->index < view->nrecords)
	{
		int			i = scan->index++;
		ElRecord	rec;

		switch ((ElVerdict) view->verdict[i])
		{
			case EL_VISIBLE:
				el_view_record(view, i, &rec);
				el_store_record(slot, scan->base.rs_rd, scan->partition, &rec);
				*liverows += 1;
				return true;
			case EL_INVISIBLE:
				*deadrows += 1;
				break;
			case EL_IN_PROGRESS:
				break;
		}
	}
	ExecClearTuple(slot);
	return false;
}

/* ---- Fetching by TID ---- */

/*
 * Fetches the record at tid into slot if snapshot sees it.  The verdict is
 * taken for that record's run alone, on the private copy, so that a dirty
 * snapshot reports the inserter of this record and no other.
 */
static bool
el_fetch_tid(Relation rel, int32 partition, ItemPointer tid, Snapshot snapshot,
			 TupleTableSlot *slot, ElPageView *view)
{
	BlockNumber blk = ItemPointerGetBlockNumber(tid);
	int			idx = ItemPointerGetOffsetNumber(tid) - 1;
	ElRunHeader *run;
	ElRecord	rec;

	if (blk < EL_FIRST_DATA_BLOCK || blk >= RelationGetNumberOfBlocks(rel))
		return false;
	if (!el_view_load(rel, blk, SnapshotAny, view, NULL))
		return false;
	if (idx < 0 || idx >= view->nrecords)
		return false;

	run = (ElRunHeader *) (view->data.data + view->runpos[idx]);
	if (el_run_verdict(run, InvalidBuffer, snapshot) != EL_VISIBLE)
		return false;

	el_view_record(view, idx, &rec);
	el_store_record(slot, rel, partition, &rec);
	return true;
}

struct IndexFetchTableData *
el_index_fetch_begin(Relation rel)
{
	ElIndexFetchData *data = palloc0(sizeof(ElIndexFetchData));

	data->base.rel = rel;
	data->partition = el_relation_partition(rel);
	data->view = palloc(sizeof(ElPageView));
	return &data->base;
}

void
el_index_fetch_reset(struct IndexFetchTableData *data)
{
}

void
el_index_fetch_end(struct IndexFetchTableData *data)
{
	ElIndexFetchData *d = (ElIndexFetchData *) data;

	pfree(d->view);
	pfree(d);
}

bool
el_index_fetch_tuple(struct IndexFetchTableData *scan, ItemPointer tid, Snapshot snapshot,
					 TupleTableSlot *slot, bool *call_again, bool *all_dead)
{
	ElIndexFetchData *d = (ElIndexFetchData *) scan;

	/* Records are never updated: there is no chain to follow. */
	*call_again = false;
	if (all_dead)
		*all_dead = false;
	return el_fetch_tid(scan->rel, d->partition, tid, snapshot, slot, d->view);
}

/* tuple_fetch_row_version: the slot keeps its own copy of the values. */
bool
el_fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot)
{
	ElPageView *view = palloc(sizeof(ElPageView));
	bool		found;

	found = el_fetch_tid(rel, el_relation_partition(rel), tid, snapshot, slot, view);
	if (found)
		ExecMaterializeSlot(slot);
	pfree(view);
	return found;
}

bool
el_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot, Snapshot snapshot)
{
	ElPageView *view = palloc(sizeof(ElPageView));
	TupleTableSlot *tmp = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
	bool		found;

	found = el_fetch_tid(rel, el_relation_partition(rel), &slot->tts_tid, snapshot, tmp, view);
	ExecDropSingleTupleTableSlot(tmp);
	pfree(view);
	return found;
}

/* ---- Index builds ---- */

/*
 * Feeds records of blocks [start_blockno, start_blockno + numblocks) to an
 * index build.  Every record not known aborted is indexed: open inserts may
 * still commit, and fetches through the index check visibility anyway.
 */
double
el_index_build_range_scan(Relation table_rel, Relation index_rel, struct IndexInfo *index_info,
						  bool allow_sync, bool anyvisible, bool progress,
						  BlockNumber start_blockno, BlockNumber numblocks,
						  IndexBuildCallback callback, void *callback_state,
						  TableScanDesc scan)
{
	EState	   *estate = CreateExecutorState();
	ExprContext *econtext = GetPerTupleExprContext(estate);
	TupleTableSlot *slot = table_slot_create(table_rel, NULL);
	ExprState  *predicate = ExecPrepareQual(index_info->ii_Predicate, estate);
	ElPageView *view = palloc(sizeof(ElPageView));
	int32		partition = el_relation_partition(table_rel);
	BlockNumber nblocks = RelationGetNumberOfBlocks(table_rel);
	BlockNumber blk;
	BlockNumber end;
	double		reltuples = 0;
	Datum		values[INDEX_MAX_KEYS];
	bool		isnull[INDEX_MAX_KEYS];

	econtext->ecxt_scantuple = slot;

	if (scan != NULL)
	{
		/* A parallel build hands us its scan: take blocks from it. */
		ElScanDesc	escan = (ElScanDesc) scan;

		blk = el_scan_next_block(escan);
		end = nblocks;
		(void) escan;
	}
	else
	{
		blk = Max(start_blockno, EL_FIRST_DATA_BLOCK);
		end = numblocks == InvalidBlockNumber ? nblocks : Min(nblocks, start_blockno + numblocks);
	}

	while (blk != InvalidBlockNumber && blk < end)
	{
		int			i;

		CHECK_FOR_INTERRUPTS();
		if (el_view_load(table_rel, blk, NULL, view, NULL))
		{
			for (i = 0; i < view->nrecords; i++)
			{
				ElRecord	rec;

				if (view->verdict[i] == EL_INVISIBLE)
					continue;
				MemoryContextReset(econtext->ecxt_per_tuple_memory);
				el_view_record(view, i, &rec);
				el_store_record(slot, table_rel, partition, &rec);
				reltuples += 1;

				if (predicate != NULL && !ExecQual(predicate, econtext))
					continue;
				FormIndexDatum(index_info, slot, estate, values, isnull);
				callback(index_rel, &slot->tts_tid, values, isnull, true, callback_state);
			}
		}

		if (scan != NULL)
			blk = el_scan_next_block((ElScanDesc) scan);
		else
			blk++;
	}

	ExecDropSingleTupleTableSlot(slot);
	FreeExecutorState(estate);
	pfree(view);
	return reltuples;
}
