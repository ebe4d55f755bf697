/*
 * el_tableam.c
 *		The eventlog table access method: handler, inserts, storage
 *		management, and the operations an append-only log refuses.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/multixact.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_am_d.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "executor/tuptable.h"
#include "storage/bufmgr.h"
#include "storage/smgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "compat/compat.h"
#include "storage/el_scan.h"
#include "storage/storage_internal.h"

PG_FUNCTION_INFO_V1(eventlog_tableam_handler);

/* ---- Inserts ---- */

static const TupleTableSlotOps *
el_slot_callbacks(Relation rel)
{
	return &TTSOpsVirtual;
}

/* Turns an inserted row into a record; returns its partition. */
static int32
el_slot_to_record(Relation rel, TupleTableSlot *slot, ElNewRecord *rec)
{
	Datum	   *values;
	bool	   *isnull;

	slot_getallattrs(slot);
	values = slot->tts_values;
	isnull = slot->tts_isnull;

	if (isnull[EL_ATT_PARTITION - 1])
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("null value in column \"partition\" of eventlog relation \"%s\"",
						RelationGetRelationName(rel))));

	rec->offset = -1;
	if (!isnull[EL_ATT_OFFSET - 1])
	{
		rec->offset = DatumGetInt64(values[EL_ATT_OFFSET - 1]);
		if (rec->offset < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("offset must not be negative"),
					 errhint("Leave \"offset\" NULL to have the next offset assigned.")));
	}
	rec->key = isnull[EL_ATT_KEY - 1] ? NULL : (struct varlena *) DatumGetPointer(values[EL_ATT_KEY - 1]);
	rec->value = isnull[EL_ATT_VALUE - 1] ? NULL : (struct varlena *) DatumGetPointer(values[EL_ATT_VALUE - 1]);
	rec->headers = isnull[EL_ATT_HEADERS - 1] ? NULL : (struct varlena *) DatumGetPointer(values[EL_ATT_HEADERS - 1]);
	rec->ts = isnull[EL_ATT_TS - 1] ? GetCurrentTimestamp() : DatumGetTimestampTz(values[EL_ATT_TS - 1]);
	return DatumGetInt32(values[EL_ATT_PARTITION - 1]);
}

/* Shows the assigned offset and timestamp to RETURNING and AFTER triggers. */
static void
el_slot_set_assigned(TupleTableSlot *slot, Relation rel, ElNewRecord *rec)
{
	slot->tts_tableOid = RelationGetRelid(rel);
	if (TTS_IS_VIRTUAL(slot))
	{
		slot->tts_values[EL_ATT_OFFSET - 1] = Int64GetDatum(rec->offset);
		slot->tts_isnull[EL_ATT_OFFSET - 1] = false;
		slot->tts_values[EL_ATT_TS - 1] = TimestampTzGetDatum(rec->ts);
		slot->tts_isnull[EL_ATT_TS - 1] = false;
	}
}

/* Set by the log layer, which wakes those waiting for these rows. */
ElTableAppendHook el_table_append_hook = NULL;

/*
 * Appends rows inserted through SQL.  Into a segment, the executor has
 * checked that their offsets lie within its bounds.
 */
static void
el_table_append(Relation rel, int32 partition, ElNewRecord *recs, int n, CommandId cid,
				ItemPointer tids)
{
	int			m = el_append(rel, partition, recs, n, cid, tids, 0, PG_INT64_MAX);

	Assert(m == n);
	(void) m;
	if (el_table_append_hook)
		el_table_append_hook(rel);
}

static void
el_tuple_insert(Relation rel, TupleTableSlot *slot, CommandId cid, int options,
				struct BulkInsertStateData *bistate)
{
	ElNewRecord rec;
	int32		partition;

	el_check_tupdesc(rel);
	partition = el_slot_to_record(rel, slot, &rec);
	el_prepare_record(rel, &rec);
	el_table_append(rel, partition, &rec, 1, cid, &slot->tts_tid);
	el_slot_set_assigned(slot, rel, &rec);
}

static void
el_multi_insert(Relation rel, TupleTableSlot **slots, int nslots, CommandId cid,
				int options, struct BulkInsertStateData *bistate)
{
	ElNewRecord *recs = palloc(sizeof(ElNewRecord) * nslots);
	ItemPointerData *tids = palloc(sizeof(ItemPointerData) * nslots);
	int32		partition = 0;
	int			i;

	el_check_tupdesc(rel);
	for (i = 0; i < nslots; i++)
	{
		int32		p = el_slot_to_record(rel, slots[i], &recs[i]);

		if (i == 0)
			partition = p;
		else if (p != partition)
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("rows for partitions %d and %d inserted into one eventlog relation \"%s\"",
							partition, p, RelationGetRelationName(rel)),
					 errdetail("An eventlog relation stores the records of one partition.")));
		el_prepare_record(rel, &recs[i]);
	}
	el_table_append(rel, partition, recs, nslots, cid, tids);
	for (i = 0; i < nslots; i++)
	{
		slots[i]->tts_tid = tids[i];
		el_slot_set_assigned(slots[i], rel, &recs[i]);
	}
	pfree(recs);
	pfree(tids);
}

static void
el_finish_bulk_insert(Relation rel, int options)
{
	/* Every page change was logged as it happened: nothing to sync. */
}

/* ---- What an append-only log refuses ---- */

static void
el_tuple_insert_speculative(Relation rel, TupleTableSlot *slot, CommandId cid,
							int options, struct BulkInsertStateData *bistate,
							uint32 specToken)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("INSERT ... ON CONFLICT is not supported on eventlog relation \"%s\"",
					RelationGetRelationName(rel)),
			 errdetail("Records of an event log never conflict: each one gets a new offset.")));
}

static void
el_tuple_complete_speculative(Relation rel, TupleTableSlot *slot, uint32 specToken,
							  bool succeeded)
{
	elog(ERROR, "speculative insertion is not supported on eventlog relations");
}

static TM_Result
el_tuple_delete(Relation rel, ItemPointer tid, CommandId cid, Snapshot snapshot,
				Snapshot crosscheck, bool wait, TM_FailureData *tmfd, bool changingPart)
{
	if (changingPart)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot move records of eventlog relation \"%s\" to another partition",
						RelationGetRelationName(rel)),
				 errdetail("A record's partition and offset are fixed when it is appended."),
				 errhint("Produce a new record to the other partition instead.")));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot delete records from eventlog relation \"%s\"",
					RelationGetRelationName(rel)),
			 errdetail("An event log is append-only: records leave it only through retention, whole segments at a time."),
			 errhint("Use TRUNCATE to empty a partition.")));
	return TM_Invisible;		/* keep compiler quiet */
}

static TM_Result
el_tuple_update(Relation rel, ItemPointer otid, TupleTableSlot *slot, CommandId cid,
				Snapshot snapshot, Snapshot crosscheck, bool wait, TM_FailureData *tmfd,
				LockTupleMode *lockmode, TU_UpdateIndexes *update_indexes)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot update records of eventlog relation \"%s\"",
					RelationGetRelationName(rel)),
			 errdetail("An event log is append-only: a record never changes once written."),
			 errhint("Produce a new record with the same key instead.")));
	return TM_Invisible;		/* keep compiler quiet */
}

static TM_Result
el_tuple_lock(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot,
			  CommandId cid, LockTupleMode mode, LockWaitPolicy wait_policy, uint8 flags,
			  TM_FailureData *tmfd)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot lock records of eventlog relation \"%s\"",
					RelationGetRelationName(rel)),
			 errdetail("Row locks guard rows against change, and records of an event log never change."),
			 errhint("Leave out FOR UPDATE / FOR SHARE.")));
	return TM_Invisible;		/* keep compiler quiet */
}

static void
el_relation_copy_for_cluster(Relation OldTable, Relation NewTable, Relation OldIndex,
							 bool use_sort, TransactionId OldestXmin,
							 TransactionId *xid_cutoff, MultiXactId *multi_cutoff,
							 double *num_tuples, double *tups_vacuumed,
							 double *tups_recently_dead)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot rewrite eventlog relation \"%s\"",
					RelationGetRelationName(OldTable)),
			 errdetail("VACUUM FULL and CLUSTER reclaim the space of dead rows, and an event log has none."),
			 errhint("Plain VACUUM freezes old transaction ids.")));
}

static void
el_index_validate_scan(Relation table_rel, Relation index_rel, struct IndexInfo *index_info,
					   Snapshot snapshot, struct ValidateIndexState *state)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("CREATE INDEX CONCURRENTLY is not supported on eventlog relation \"%s\"",
					RelationGetRelationName(table_rel)),
			 errhint("Use CREATE INDEX without CONCURRENTLY.")));
}

static bool
el_scan_sample_next_block(TableScanDesc scan, struct SampleScanState *scanstate)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("TABLESAMPLE is not supported on eventlog relations"),
			 errhint("Read a range of offsets with eventlog.fetch() instead.")));
	return false;				/* keep compiler quiet */
}

static bool
el_scan_sample_next_tuple(TableScanDesc scan, struct SampleScanState *scanstate,
						  TupleTableSlot *slot)
{
	return false;
}

/* ---- Fetch helpers with nothing to do for a log ---- */

static bool
el_tuple_tid_valid(TableScanDesc scan, ItemPointer tid)
{
	BlockNumber blk = ItemPointerGetBlockNumber(tid);

	return blk >= EL_FIRST_DATA_BLOCK &&
		blk < RelationGetNumberOfBlocks(scan->rs_rd) &&
		ItemPointerGetOffsetNumber(tid) >= 1 &&
		ItemPointerGetOffsetNumber(tid) <= EL_MAX_RECORDS_PER_PAGE;
}

static void
el_tuple_get_latest_tid(TableScanDesc scan, ItemPointer tid)
{
	/* Records are never updated: a TID is always the latest version. */
}

static TransactionId
el_index_delete_tuples(Relation rel, TM_IndexDeleteOp *delstate)
{
	int			i;

	/* Records are never deleted, so no index entry is ever dead. */
	for (i = 0; i < delstate->ndeltids; i++)
		delstate->status[i].knowndeletable = false;
	return InvalidTransactionId;
}

/* ---- Storage ---- */

static void
el_relation_set_new_storage(Relation rel, const RelFileLocator *newlocator, char persistence,
							TransactionId *freezeXid, MultiXactId *minmulti)
{
	SMgrRelation srel;
	ElMetaInfo	carry;

	el_check_tupdesc(rel);
	if (persistence == RELPERSISTENCE_UNLOGGED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("eventlog relations cannot be unlogged"),
				 errdetail("Unlogged relations are emptied after a crash, and the offsets of an event log must never be reused.")));

	/*
	 * TRUNCATE gives an existing relation new storage: carry the partition
	 * and the next offset over, so the log continues where it was.
	 */
	memset(&carry, 0, sizeof(carry));
	if (!RelFileLocatorEquals(EL_REL_LOCATOR(rel), *newlocator) &&
		smgrexists(RelationGetSmgr(rel), MAIN_FORKNUM))
		el_read_meta(rel, &carry);

	*freezeXid = RecentXmin;
	*minmulti = GetOldestMultiXactId();

	srel = RelationCreateStorage(*newlocator, persistence, true);
	if (carry.exists && (carry.next_offset > 0 || carry.partition >= 0))
		el_write_initial_meta(srel, persistence == RELPERSISTENCE_PERMANENT && XLogIsNeeded(),
							  carry.partition, carry.next_offset);
	smgrclose(srel);
}

static void
el_relation_nontransactional_truncate(Relation rel)
{
	ElMetaInfo	carry;

	el_read_meta(rel, &carry);
	RelationTruncate(rel, 0);
	/* The cached knowledge that the metapage exists is now wrong. */
	if (rel->rd_amcache)
	{
		pfree(rel->rd_amcache);
		rel->rd_amcache = NULL;
	}
	if (carry.exists && (carry.next_offset > 0 || carry.partition >= 0))
		el_create_meta(rel, carry.partition, carry.next_offset);
}

static void
el_relation_copy_data(Relation rel, const RelFileLocator *newlocator)
{
	SMgrRelation dstrel;

	FlushRelationBuffers(rel);
	dstrel = RelationCreateStorage(*newlocator, rel->rd_rel->relpersistence, true);
	RelationCopyStorage(RelationGetSmgr(rel), dstrel, MAIN_FORKNUM,
						rel->rd_rel->relpersistence);
	RelationDropStorage(rel);
	smgrclose(dstrel);
}

static bool
el_relation_needs_toast_table(Relation rel)
{
	/* key, value and headers may each be up to eventlog.max_record_bytes */
	return true;
}

static Oid
el_relation_toast_am(Relation rel)
{
	return HEAP_TABLE_AM_OID;
}

static void
el_relation_estimate_size(Relation rel, int32 *attr_widths, BlockNumber *pages,
						  double *tuples, double *allvisfrac)
{
	table_block_relation_estimate_size(rel, attr_widths, pages, tuples, allvisfrac,
									   EL_RECORD_HEADER_SIZE + sizeof(ElRunHeader) / 4,
									   EL_PAGE_CAPACITY);
}

/* ---- Handler ---- */

static const TableAmRoutine el_methods = {
	.type = T_TableAmRoutine,

	.slot_callbacks = el_slot_callbacks,

	.scan_begin = el_scan_begin,
	.scan_end = el_scan_end,
	.scan_rescan = el_scan_rescan,
	.scan_getnextslot = el_scan_getnextslot,

	.scan_set_tidrange = el_scan_set_tidrange,
	.scan_getnextslot_tidrange = el_scan_getnextslot_tidrange,

	.parallelscan_estimate = table_block_parallelscan_estimate,
	.parallelscan_initialize = table_block_parallelscan_initialize,
	.parallelscan_reinitialize = table_block_parallelscan_reinitialize,

	.index_fetch_begin = el_index_fetch_begin,
	.index_fetch_reset = el_index_fetch_reset,
	.index_fetch_end = el_index_fetch_end,
	.index_fetch_tuple = el_index_fetch_tuple,

	.tuple_fetch_row_version = el_fetch_row_version,
	.tuple_tid_valid = el_tuple_tid_valid,
	.tuple_get_latest_tid = el_tuple_get_latest_tid,
	.tuple_satisfies_snapshot = el_tuple_satisfies_snapshot,
	.index_delete_tuples = el_index_delete_tuples,

	.tuple_insert = el_tuple_insert,
	.tuple_insert_speculative = el_tuple_insert_speculative,
	.tuple_complete_speculative = el_tuple_complete_speculative,
	.multi_insert = el_multi_insert,
	.tuple_delete = el_tuple_delete,
	.tuple_update = el_tuple_update,
	.tuple_lock = el_tuple_lock,
	.finish_bulk_insert = el_finish_bulk_insert,

	.relation_set_new_filelocator = el_relation_set_new_storage,
	.relation_nontransactional_truncate = el_relation_nontransactional_truncate,
	.relation_copy_data = el_relation_copy_data,
	.relation_copy_for_cluster = el_relation_copy_for_cluster,
	.relation_vacuum = el_relation_vacuum,
	.scan_analyze_next_block = el_compat_analyze_next_block,
	.scan_analyze_next_tuple = el_scan_analyze_next_tuple,
	.index_build_range_scan = el_index_build_range_scan,
	.index_validate_scan = el_index_validate_scan,

	.relation_size = table_block_relation_size,
	.relation_needs_toast_table = el_relation_needs_toast_table,
	.relation_toast_am = el_relation_toast_am,
	.relation_fetch_toast_slice = heap_fetch_toast_slice,

	.relation_estimate_size = el_relation_estimate_size,

	EL_TABLEAM_BITMAP_CALLBACKS,
	.scan_sample_next_block = el_scan_sample_next_block,
	.scan_sample_next_tuple = el_scan_sample_next_tuple,
};

const TableAmRoutine *
el_tableam_routine(void)
{
	return &el_methods;
}

/* True if rel is stored by the eventlog access method. */
bool
el_is_eventlog_relation(Relation rel)
{
	return rel->rd_tableam == &el_methods;
}

Datum
eventlog_tableam_handler(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(&el_methods);
}
