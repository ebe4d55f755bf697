/*
 * el_offsetrows.c
 *		The rows of eventlog.group_offset, read, locked and written directly.
 *
 * Every consume(..., commit => true) call looks up, locks and replaces the
 * committed-offset row of each partition it reads.  Run as SQL statements
 * these were a third of the call: executor start-up and shutdown for a few
 * index lookups.  Here they are index scans on the primary key, row locks
 * and plain inserts and deletes, as PostgreSQL's own catalog code does them:
 * the table is written only by eventlog's functions, and has no triggers,
 * no rules and no indexes but its primary key (others would be maintained
 * all the same).  Its CHECK constraint, committed_offset >= 0, is checked
 * here.
 *
 * A partition's row is looked for first where this backend saw it last
 * (el_seqhint.c), then by the primary key.  What the statements did, this
 * does the same way: each lookup sees what
 * committed before it (a new snapshot in READ COMMITTED, after this
 * command's own changes), and a lock that meets a row deleted by a
 * transaction that committed meanwhile fails under REPEATABLE READ as the
 * executor's row locks do.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "executor/execdesc.h"
#include "nodes/execnodes.h"
#include "executor/tuptable.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "compat/compat.h"
#include "groups/el_group.h"

/* Columns of eventlog.group_offset. */
enum
{
	EL_GO_GRP = 1,
	EL_GO_TOPIC,
	EL_GO_PARTITION,
	EL_GO_SEQ,
	EL_GO_OFFSET,
	EL_GO_AT,
	EL_GO_NATTS = EL_GO_AT
};

/* A relation of schema eventlog by name (InvalidOid if there is none). */
Oid
el_catalog_relid(const char *name)
{
	return get_relname_relid(name, get_namespace_oid("eventlog", false));
}

/*
 * Opens the table and its primary key, for writing or only for reading,
 * with a snapshot that sees what committed before now (READ COMMITTED) and
 * what this transaction did so far.
 */
void
el_offsetrows_open(ElOffsetRows *rows, bool write)
{
	Oid			relid = el_catalog_relid("group_offset");
	Oid			indexid;

	if (!OidIsValid(relid))
		elog(ERROR, "table eventlog.group_offset does not exist");
	rows->lockmode = write ? RowExclusiveLock : AccessShareLock;
	rows->rel = table_open(relid, rows->lockmode);
	indexid = el_primary_key_index(rows->rel);
	if (!OidIsValid(indexid))
		elog(ERROR, "table eventlog.group_offset has no primary key");
	rows->index = index_open(indexid, rows->lockmode);
	if (RelationGetDescr(rows->rel)->natts != EL_GO_NATTS)
		elog(ERROR, "table eventlog.group_offset does not have %d columns", EL_GO_NATTS);
	/* Scan keys name the key's columns by number: (grp, topic, partition, seq). */
	if (rows->index->rd_index->indnkeyatts != EL_GO_SEQ)
		elog(ERROR, "the primary key of eventlog.group_offset is not (grp, topic, partition, seq)");
	for (AttrNumber a = EL_GO_GRP; a <= EL_GO_SEQ; a++)
		if (rows->index->rd_index->indkey.values[a - 1] != a)
			elog(ERROR, "the primary key of eventlog.group_offset is not (grp, topic, partition, seq)");
	rows->indstate = NULL;
	if (write)
	{
		int			i;

		rows->indstate = CatalogOpenIndexes(rows->rel);
		/* Index entries are made from the columns alone, as for catalogs. */
		for (i = 0; i < rows->indstate->ri_NumIndices; i++)
		{
			IndexInfo  *info = rows->indstate->ri_IndexRelationInfo[i];

			if (info->ii_Expressions != NIL || info->ii_Predicate != NIL ||
				info->ii_ExclusionOps != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("eventlog cannot maintain index \"%s\" of table eventlog.group_offset",
								RelationGetRelationName(rows->indstate->ri_IndexRelationDescs[i])),
						 errdetail("Indexes on expressions, partial indexes and exclusion constraints are not supported there."),
						 errhint("Drop the index.")));
		}
	}
	rows->slot = table_slot_create(rows->rel, NULL);
	rows->snapshot = NULL;
	el_offsetrows_refresh(rows);
}

/* A new snapshot, after this transaction's changes so far. */
void
el_offsetrows_refresh(ElOffsetRows *rows)
{
	if (rows->snapshot)
		UnregisterSnapshot(rows->snapshot);
	CommandCounterIncrement();
	rows->snapshot = RegisterSnapshot(GetTransactionSnapshot());
}

void
el_offsetrows_close(ElOffsetRows *rows)
{
	UnregisterSnapshot(rows->snapshot);
	ExecDropSingleTupleTableSlot(rows->slot);
	if (rows->indstate)
		CatalogCloseIndexes(rows->indstate);
	index_close(rows->index, rows->lockmode);
	table_close(rows->rel, rows->lockmode);
}

/* Key column attno of the primary key compared to value, in the index's collation. */
static void
el_offsetrows_key(ElOffsetRows *rows, ScanKey key, AttrNumber attno, StrategyNumber strategy,
				  RegProcedure proc, Datum value)
{
	ScanKeyEntryInitialize(key, 0, attno, strategy, InvalidOid,
						   rows->index->rd_indcollation[attno - 1], proc, value);
}

/*
 * Finds the current row of a partition (the visible one with the highest
 * seq, from from_seq on; with exact, the one with seq from_seq), leaving it
 * in rows->slot.
 */
static bool
el_offsetrows_find(ElOffsetRows *rows, const char *grp, const char *topic, int32 partition,
				   int64 from_seq, bool exact)
{
	ScanKeyData keys[4];
	IndexScanDesc scan;
	bool		found;

	el_offsetrows_key(rows, &keys[0], EL_GO_GRP, BTEqualStrategyNumber, F_TEXTEQ,
					  CStringGetTextDatum(grp));
	el_offsetrows_key(rows, &keys[1], EL_GO_TOPIC, BTEqualStrategyNumber, F_TEXTEQ,
					  CStringGetTextDatum(topic));
	el_offsetrows_key(rows, &keys[2], EL_GO_PARTITION, BTEqualStrategyNumber, F_INT4EQ,
					  Int32GetDatum(partition));
	if (exact)
		el_offsetrows_key(rows, &keys[3], EL_GO_SEQ, BTEqualStrategyNumber, F_INT8EQ,
						  Int64GetDatum(from_seq));
	else
		el_offsetrows_key(rows, &keys[3], EL_GO_SEQ, BTGreaterEqualStrategyNumber, F_INT8GE,
						  Int64GetDatum(from_seq));

	scan = el_index_beginscan(rows->rel, rows->index, rows->snapshot, 4, 0);
	index_rescan(scan, keys, 4, NULL, 0);
	found = index_getnext_slot(scan, BackwardScanDirection, rows->slot);
	index_endscan(scan);
	return found;
}

/* Whether column attno of the row in rows->slot is the text s. */
static bool
el_offsetrows_text_is(ElOffsetRows *rows, AttrNumber attno, const char *s)
{
	bool		isnull;
	text	   *t = DatumGetTextPP(slot_getattr(rows->slot, attno, &isnull));

	return strlen(s) == VARSIZE_ANY_EXHDR(t) && memcmp(s, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)) == 0;
}

/*
 * Whether the row at tid (where this backend last saw the partition's row)
 * is the partition's current row, leaving it in rows->slot.  Rows are never
 * updated in place and a commit replaces a partition's row in one
 * transaction, so a visible row with the partition's key and a seq at least
 * the one seen there is its current row; a tuple id freed by VACUUM and
 * taken by another row fails the key.
 */
static bool
el_offsetrows_at(ElOffsetRows *rows, const char *grp, const char *topic, int32 partition,
				 int64 from_seq, ItemPointer tid)
{
	bool		isnull;

	if (ItemPointerGetBlockNumber(tid) >= RelationGetNumberOfBlocks(rows->rel) ||
		!table_tuple_fetch_row_version(rows->rel, tid, rows->snapshot, rows->slot))
		return false;
	return DatumGetInt32(slot_getattr(rows->slot, EL_GO_PARTITION, &isnull)) == partition &&
		DatumGetInt64(slot_getattr(rows->slot, EL_GO_SEQ, &isnull)) >= from_seq &&
		el_offsetrows_text_is(rows, EL_GO_TOPIC, topic) &&
		el_offsetrows_text_is(rows, EL_GO_GRP, grp);
}

static void
el_offsetrows_values(ElOffsetRows *rows, int64 *offset, int64 *seq)
{
	bool		isnull;

	*seq = DatumGetInt64(slot_getattr(rows->slot, EL_GO_SEQ, &isnull));
	*offset = DatumGetInt64(slot_getattr(rows->slot, EL_GO_OFFSET, &isnull));
}

/*
 * The current row of a partition: read, or locked FOR UPDATE (skipping a
 * row another transaction holds, or waiting for it).  It is looked for at
 * *tid first if that is valid, then by the primary key from from_seq on;
 * *tid is set to where it was found.  EL_ROW_GONE means the row was
 * replaced by a transaction that committed after the snapshot: refresh and
 * look again.
 */
ElRowResult
el_offsetrows_current(ElOffsetRows *rows, const char *grp, const char *topic, int32 partition,
					  int64 from_seq, ItemPointer tid, ElRowLock lock, int64 *offset, int64 *seq)
{
	TM_FailureData tmfd;
	TM_Result	result;

	if (!(ItemPointerIsValid(tid) && el_offsetrows_at(rows, grp, topic, partition, from_seq, tid)) &&
		!el_offsetrows_find(rows, grp, topic, partition, from_seq, false))
	{
		ItemPointerSetInvalid(tid);
		return EL_ROW_NONE;
	}
	*tid = rows->slot->tts_tid;
	if (lock == EL_ROW_READ)
	{
		el_offsetrows_values(rows, offset, seq);
		return EL_ROW_FOUND;
	}

	result = table_tuple_lock(rows->rel, &rows->slot->tts_tid, rows->snapshot, rows->slot,
							  GetCurrentCommandId(true), LockTupleExclusive,
							  lock == EL_ROW_LOCK_SKIP ? LockWaitSkip : LockWaitBlock,
							  0, &tmfd);
	switch (result)
	{
		case TM_Ok:
			el_offsetrows_values(rows, offset, seq);
			return EL_ROW_FOUND;
		case TM_WouldBlock:
		case TM_SelfModified:
			return EL_ROW_HELD;
		case TM_Updated:
		case TM_Deleted:
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent delete")));
			return EL_ROW_GONE;
		case TM_Invisible:
			elog(ERROR, "attempted to lock invisible tuple");
			break;
		default:
			elog(ERROR, "unexpected table_tuple_lock status: %u", result);
			break;
	}
	return EL_ROW_NONE;			/* keep compiler quiet */
}

/* The seq of a new row: a partition's rows are ordered by it. */
int64
el_offsetrows_next_seq(void)
{
	Oid			seqid = el_catalog_relid("group_offset_seq");

	if (!OidIsValid(seqid))
		elog(ERROR, "sequence eventlog.group_offset_seq does not exist");
	return nextval_internal(seqid, false);
}

/* Inserts a partition's row; *tid is where it went. */
void
el_offsetrows_insert(ElOffsetRows *rows, const char *grp, const char *topic, int32 partition,
					 int64 seq, int64 offset, ItemPointer tid)
{
	Datum		values[EL_GO_NATTS];
	bool		nulls[EL_GO_NATTS] = {false};
	HeapTuple	tuple;

	if (offset < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("committed offset " INT64_FORMAT " of consumer group \"%s\" is negative",
						offset, grp)));
	values[EL_GO_GRP - 1] = CStringGetTextDatum(grp);
	values[EL_GO_TOPIC - 1] = CStringGetTextDatum(topic);
	values[EL_GO_PARTITION - 1] = Int32GetDatum(partition);
	values[EL_GO_SEQ - 1] = Int64GetDatum(seq);
	values[EL_GO_OFFSET - 1] = Int64GetDatum(offset);
	values[EL_GO_AT - 1] = TimestampTzGetDatum(GetCurrentTimestamp());
	tuple = heap_form_tuple(RelationGetDescr(rows->rel), values, nulls);
	CatalogTupleInsertWithInfo(rows->rel, tuple, rows->indstate);
	*tid = tuple->t_self;
	heap_freetuple(tuple);
}

/*
 * Deletes a partition's row of seq, which this transaction holds locked:
 * nobody else can have deleted it, and a locked row stays where it is.  tid
 * is where the lock found it, if valid; otherwise it is looked up.  False
 * if there is none.
 */
bool
el_offsetrows_delete(ElOffsetRows *rows, const char *grp, const char *topic, int32 partition,
					 int64 seq, ItemPointer tid)
{
	if (!ItemPointerIsValid(tid))
	{
		if (!el_offsetrows_find(rows, grp, topic, partition, seq, true))
			return false;
		tid = &rows->slot->tts_tid;
	}
	CatalogTupleDelete(rows->rel, tid);
	return true;
}
