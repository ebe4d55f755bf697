/*
 * el_grouprows.c
 *		The two group rows every consume() call reads, read directly.
 *
 * Each call of a member reads its group's row (owner, generation, session
 * timeout) and, with commit, the partitions the member owns after taking
 * their locks (the fence).  As SQL statements these were two executor
 * start-ups and shutdowns per call for two key lookups; here they are index
 * scans on the primary keys, as el_offsetrows.c does for the offset rows.
 * What they see is what the statements saw: what committed before now
 * (READ COMMITTED; the transaction's snapshot under REPEATABLE READ) and
 * what this transaction wrote so far.  Everything else about groups stays
 * in SQL (el_group.c): it runs when membership changes, not per call.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "compat/compat.h"
#include "groups/el_group.h"

/* Columns of eventlog.consumer_group and of eventlog.group_assignment. */
enum
{
	EL_CG_GRP = 1,
	EL_CG_OWNER,
	EL_CG_GENERATION,
	EL_CG_SESSION_TIMEOUT,
	EL_CG_NATTS = EL_CG_SESSION_TIMEOUT + 1	/* and created_at */
};
enum
{
	EL_GA_GRP = 1,
	EL_GA_TOPIC,
	EL_GA_PARTITION,
	EL_GA_MEMBER,
	EL_GA_NATTS = EL_GA_MEMBER + 1	/* and generation */
};

typedef struct ElGroupRows
{
	Relation	rel;
	Relation	index;
	TupleTableSlot *slot;
	Snapshot	snapshot;
	IndexScanDesc scan;
} ElGroupRows;

/*
 * Starts a scan of table eventlog.<name> by its primary key, whose first
 * nkeys columns must be the table's first columns, for rows whose first
 * text columns equal keys[0..nkeys-1].
 */
static void
el_grouprows_begin(ElGroupRows *rows, const char *name, int natts, const char **keys, int nkeys)
{
	Oid			relid = el_catalog_relid(name);
	Oid			indexid;
	ScanKeyData scankeys[2];
	int			i;

	Assert(nkeys <= lengthof(scankeys));
	if (!OidIsValid(relid))
		elog(ERROR, "table eventlog.%s does not exist", name);
	rows->rel = table_open(relid, AccessShareLock);
	if (RelationGetDescr(rows->rel)->natts != natts)
		elog(ERROR, "table eventlog.%s does not have %d columns", name, natts);
	indexid = el_primary_key_index(rows->rel);
	if (!OidIsValid(indexid))
		elog(ERROR, "table eventlog.%s has no primary key", name);
	rows->index = index_open(indexid, AccessShareLock);
	for (i = 0; i < nkeys; i++)
	{
		if (rows->index->rd_index->indkey.values[i] != i + 1)
			elog(ERROR, "the primary key of eventlog.%s does not start with its column %d", name, i + 1);
		ScanKeyEntryInitialize(&scankeys[i], 0, i + 1, BTEqualStrategyNumber, InvalidOid,
							   rows->index->rd_indcollation[i], F_TEXTEQ,
							   CStringGetTextDatum(keys[i]));
	}

	/* What committed before now, and this transaction's own writes. */
	CommandCounterIncrement();
	rows->snapshot = RegisterSnapshot(GetTransactionSnapshot());
	rows->slot = table_slot_create(rows->rel, NULL);
	rows->scan = el_index_beginscan(rows->rel, rows->index, rows->snapshot, nkeys, 0);
	index_rescan(rows->scan, scankeys, nkeys, NULL, 0);
}

static bool
el_grouprows_next(ElGroupRows *rows)
{
	return index_getnext_slot(rows->scan, ForwardScanDirection, rows->slot);
}

static void
el_grouprows_end(ElGroupRows *rows)
{
	index_endscan(rows->scan);
	ExecDropSingleTupleTableSlot(rows->slot);
	UnregisterSnapshot(rows->snapshot);
	index_close(rows->index, AccessShareLock);
	table_close(rows->rel, AccessShareLock);
}

/* Seconds of an interval, as extract(epoch from ...) counts them. */
static double
el_interval_secs(Interval *iv)
{
	return iv->time / (double) USECS_PER_SEC +
		((double) DAYS_PER_YEAR * SECS_PER_DAY) * (iv->month / MONTHS_PER_YEAR) +
		((double) DAYS_PER_MONTH * SECS_PER_DAY) * (iv->month % MONTHS_PER_YEAR) +
		((double) SECS_PER_DAY) * iv->day;
}

/*
 * The group's row: false if there is none.  Otherwise its owner's role
 * (InvalidOid if the role is gone), generation, and session timeout in
 * seconds (-1 where the group has none of its own).
 */
bool
el_grouprows_group(const char *grp, Oid *owner, int64 *generation, double *timeout_secs)
{
	ElGroupRows rows;
	bool		found;

	el_grouprows_begin(&rows, "consumer_group", EL_CG_NATTS, &grp, 1);
	found = el_grouprows_next(&rows);
	if (found)
	{
		bool		isnull;
		Datum		timeout;

		if (owner)
			*owner = get_role_oid(NameStr(*DatumGetName(slot_getattr(rows.slot, EL_CG_OWNER, &isnull))),
								  true);
		*generation = DatumGetInt64(slot_getattr(rows.slot, EL_CG_GENERATION, &isnull));
		timeout = slot_getattr(rows.slot, EL_CG_SESSION_TIMEOUT, &isnull);
		*timeout_secs = isnull ? -1 : el_interval_secs(DatumGetIntervalP(timeout));
	}
	el_grouprows_end(&rows);
	return found;
}

/*
 * The partitions of topic assigned to member now, in partition order, in
 * memory of the current SPI procedure's caller (as the statement's result
 * was).  Returns how many.
 */
int
el_grouprows_member_partitions(const char *grp, const char *topic, const char *member,
							   int npartitions, int32 **partitions)
{
	ElGroupRows rows;
	const char *keys[2] = {grp, topic};
	size_t		len = strlen(member);
	int			n = 0;

	*partitions = SPI_palloc(sizeof(int32) * Max(npartitions, 1));
	el_grouprows_begin(&rows, "group_assignment", EL_GA_NATTS, keys, 2);
	while (el_grouprows_next(&rows))
	{
		bool		isnull;
		text	   *owner = DatumGetTextPP(slot_getattr(rows.slot, EL_GA_MEMBER, &isnull));
		int32		partition;

		if (VARSIZE_ANY_EXHDR(owner) != len || memcmp(VARDATA_ANY(owner), member, len) != 0)
			continue;
		partition = DatumGetInt32(slot_getattr(rows.slot, EL_GA_PARTITION, &isnull));
		/* A row of a partition the topic does not have waits for a rebalance. */
		if (partition >= 0 && partition < npartitions)
			(*partitions)[n++] = partition;
	}
	el_grouprows_end(&rows);
	return n;
}
