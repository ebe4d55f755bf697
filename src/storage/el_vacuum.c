/*
 * el_vacuum.c
 *		VACUUM of an eventlog relation: freezing.
 *
 * A log has no dead rows to remove (aborted records keep their offsets, as
 * in Kafka), so VACUUM's work is to settle transaction ids before they wrap
 * around: committed runs older than the freeze limit become frozen, aborted
 * ones are marked so for good, both WAL-logged, and relfrozenxid advances.
 * Pages are sealed once the log goes on past them and never take records
 * afterwards, so the metapage remembers the frozen prefix and VACUUM starts
 * after it.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/multixact.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "commands/vacuum.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

#include "compat/compat.h"
#include "storage/storage_internal.h"

/*
 * Returns the next run header of a data page, or NULL after the last.
 * Start with *pos = 0 and *seen = 0.
 */
static ElRunHeader *
el_next_run(Page page, Size *pos, int *seen)
{
	ElRunHeader *run;
	int			i;

	if (*pos == 0)
		*pos = MAXALIGN(SizeOfPageHeaderData);
	if (*seen >= ElPageGetOpaque(page)->nrecords)
		return NULL;

	*pos = INTALIGN(*pos);
	run = (ElRunHeader *) ((char *) page + *pos);
	*pos += sizeof(ElRunHeader);
	for (i = 0; i < run->nrecords; i++)
	{
		uint16		len;

		memcpy(&len, (char *) page + *pos, sizeof(uint16));
		*pos += len;
	}
	*seen += run->nrecords;
	return run;
}

#define foreach_run(page, run) \
	for (Size _pos = 0, _dummy = 0; _dummy == 0; _dummy = 1) \
		for (int _seen = 0; (run = el_next_run(page, &_pos, &_seen)) != NULL;)

static bool
el_run_needs_freeze(ElRunHeader *run, TransactionId freeze_limit)
{
	return !(run->infomask & EL_RUN_FROZEN) &&
		TransactionIdIsNormal(run->xmin) &&
		TransactionIdPrecedes(run->xmin, freeze_limit);
}

/*
 * Freezes what needs it on one locked data page.  Returns true if every run
 * of the page is frozen afterwards.
 */
static bool
el_freeze_page(Relation rel, Buffer buffer, TransactionId freeze_limit,
			   double *live, double *dead)
{
	Page		page = BufferGetPage(buffer);
	ElRunHeader *run;
	bool		needed = false;
	bool		all_frozen = true;

	foreach_run(page, run)
	{
		if (el_run_needs_freeze(run, freeze_limit))
			needed = true;
	}

	if (needed)
	{
		ElWal		wal;
		Page		copy;

		el_wal_start(&wal, rel);
		copy = el_wal_register(&wal, buffer, false);
		foreach_run(copy, run)
		{
			if (!el_run_needs_freeze(run, freeze_limit))
				continue;
			/* Older than every snapshot: the commit log has the last word. */
			if ((run->infomask & EL_RUN_COMMITTED) || TransactionIdDidCommit(run->xmin))
				run->infomask = EL_RUN_COMMITTED | EL_RUN_FROZEN;
			else
				run->infomask = EL_RUN_ABORTED | EL_RUN_FROZEN;
		}
		el_wal_finish(&wal);
	}

	foreach_run(page, run)
	{
		if (!(run->infomask & EL_RUN_FROZEN))
			all_frozen = false;
		if (run->infomask & EL_RUN_ABORTED)
			*dead += run->nrecords;
		else
			*live += run->nrecords;
	}
	return all_frozen;
}

/* Records the new frozen prefix in the metapage. */
static void
el_set_frozen_block(Relation rel, BlockNumber frozen_block)
{
	Buffer		buffer = ReadBuffer(rel, EL_META_BLOCK);
	ElWal		wal;
	Page		page;

	LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
	el_check_meta(rel, BufferGetPage(buffer));
	el_wal_start(&wal, rel);
	page = el_wal_register(&wal, buffer, false);
	if (ElPageGetMeta(page)->frozen_block < frozen_block)
		ElPageGetMeta(page)->frozen_block = frozen_block;
	el_wal_finish(&wal);
	UnlockReleaseBuffer(buffer);
}

/* Lets index AMs do their post-VACUUM work (BRIN summarises new ranges). */
static void
el_vacuum_indexes(Relation rel, double reltuples, BufferAccessStrategy bstrategy)
{
	Relation   *indexes;
	int			nindexes;
	int			i;

	vac_open_indexes(rel, RowExclusiveLock, &nindexes, &indexes);
	for (i = 0; i < nindexes; i++)
	{
		IndexVacuumInfo ivinfo;
		IndexBulkDeleteResult *stats;

		memset(&ivinfo, 0, sizeof(ivinfo));
		ivinfo.index = indexes[i];
		ivinfo.analyze_only = false;
		ivinfo.report_progress = false;
		ivinfo.estimated_count = true;
		ivinfo.message_level = DEBUG2;
		ivinfo.num_heap_tuples = reltuples;
		ivinfo.strategy = bstrategy;
		stats = index_vacuum_cleanup(&ivinfo, NULL);
		if (stats)
			pfree(stats);
	}
	vac_close_indexes(nindexes, indexes, NoLock);
}

void
el_relation_vacuum(Relation rel, struct VacuumParams *params, BufferAccessStrategy bstrategy)
{
	TransactionId oldest_xmin;
	TransactionId freeze_limit;
	MultiXactId multi_cutoff;
	ElMetaInfo	meta;
	BlockNumber nblocks;
	BlockNumber blk;
	BlockNumber frozen_block;
	BlockNumber scanned = 0;
	bool		prefix = true;
	double		live = 0;
	double		dead = 0;
	double		reltuples;
	TimestampTz starttime = GetCurrentTimestamp();

	el_vacuum_cutoffs(rel, params, &oldest_xmin, &freeze_limit, &multi_cutoff);

	el_read_meta(rel, &meta);
	nblocks = RelationGetNumberOfBlocks(rel);
	frozen_block = Max(meta.frozen_block, EL_FIRST_DATA_BLOCK);

	for (blk = frozen_block; meta.exists && blk <= meta.last_block; blk++)
	{
		Buffer		buffer;
		Page		page;

		el_vacuum_delay_point();
		buffer = ReadBufferExtended(rel, MAIN_FORKNUM, blk, RBM_NORMAL, bstrategy);
		LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buffer);
		scanned++;
		if (el_page_is_data(page))
		{
			bool		all_frozen = el_freeze_page(rel, buffer, freeze_limit, &live, &dead);
			bool		sealed = (ElPageGetOpaque(page)->flags & EL_PAGE_SEALED) != 0;

			/* A sealed, fully frozen page never needs another look. */
			if (prefix && all_frozen && sealed)
				frozen_block = blk + 1;
			else
				prefix = false;
		}
		else
			prefix = false;
		UnlockReleaseBuffer(buffer);
	}

	if (meta.exists && frozen_block > meta.frozen_block)
		el_set_frozen_block(rel, frozen_block);

	/* The metapage and the pages scanned were seen; the frozen prefix not. */
	reltuples = vac_estimate_reltuples(rel, nblocks, scanned + 1, live);
	if (rel->rd_rel->relhasindex)
		el_vacuum_indexes(rel, reltuples, bstrategy);

	/* Every xid older than freeze_limit is now frozen: relfrozenxid moves up. */
	el_vac_update_relstats(rel, nblocks, reltuples, rel->rd_rel->relhasindex,
						   freeze_limit, multi_cutoff);

	/*
	 * The new relfrozenxid is written in place, and VACUUM's transaction has
	 * no xid, so its commit flushes nothing: an immediate shutdown right
	 * after VACUUM could bring back the older value (seen on 17 and 18).
	 * Flush it now; the freezing it stands for was logged before it.
	 */
	if (XactLastRecEnd != InvalidXLogRecPtr)
		XLogFlush(XactLastRecEnd);
	el_pgstat_report_vacuum(RelationGetRelid(rel), rel->rd_rel->relisshared,
							(PgStat_Counter) reltuples, (PgStat_Counter) dead, starttime);
}
