/*
 * el_scan.h
 *		Scan callbacks of the eventlog table access method (el_scan.c).
 */
#ifndef EL_SCAN_H
#define EL_SCAN_H

#include "storage/storage.h"

#include "access/relscan.h"
#include "executor/tuptable.h"
#include "nodes/tidbitmap.h"

extern TableScanDesc el_scan_begin(Relation rel, Snapshot snapshot, int nkeys,
								   struct ScanKeyData *key,
								   ParallelTableScanDesc pscan, uint32 flags);
extern void el_scan_end(TableScanDesc scan);
extern void el_scan_rescan(TableScanDesc scan, struct ScanKeyData *key, bool set_params,
						   bool allow_strat, bool allow_sync, bool allow_pagemode);
extern bool el_scan_getnextslot(TableScanDesc scan, ScanDirection direction,
								TupleTableSlot *slot);
extern void el_scan_set_tidrange(TableScanDesc scan, ItemPointer mintid, ItemPointer maxtid);
extern bool el_scan_getnextslot_tidrange(TableScanDesc scan, ScanDirection direction,
										 TupleTableSlot *slot);
/* A bitmap's page: the listed records (offsets), or every visible one (noffsets < 0). */
extern bool el_scan_bitmap_page(TableScanDesc scan, BlockNumber blk, const OffsetNumber *offsets,
								int noffsets);
extern bool el_scan_bitmap_record(TableScanDesc scan, TupleTableSlot *slot);
/* A sampled block for ANALYZE, pinned by the caller; the pin is released. */
extern void el_scan_analyze_buffer(TableScanDesc scan, Buffer buffer);
extern bool el_scan_analyze_next_tuple(TableScanDesc scan, TransactionId OldestXmin,
									   double *liverows, double *deadrows,
									   TupleTableSlot *slot);

extern struct IndexFetchTableData *el_index_fetch_begin(Relation rel);
extern void el_index_fetch_reset(struct IndexFetchTableData *data);
extern void el_index_fetch_end(struct IndexFetchTableData *data);
extern bool el_index_fetch_tuple(struct IndexFetchTableData *scan, ItemPointer tid,
								 Snapshot snapshot, TupleTableSlot *slot,
								 bool *call_again, bool *all_dead);
extern bool el_fetch_row_version(Relation rel, ItemPointer tid, Snapshot snapshot,
								 TupleTableSlot *slot);
extern bool el_tuple_satisfies_snapshot(Relation rel, TupleTableSlot *slot, Snapshot snapshot);

extern double el_index_build_range_scan(Relation table_rel, Relation index_rel,
										struct IndexInfo *index_info, bool allow_sync,
										bool anyvisible, bool progress,
										BlockNumber start_blockno, BlockNumber numblocks,
										IndexBuildCallback callback, void *callback_state,
										TableScanDesc scan);

#endif							/* EL_SCAN_H */
